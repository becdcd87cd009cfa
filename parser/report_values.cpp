#include "parser/report_values.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <span>

namespace dmarcd::parser {

namespace {

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool Contains(std::span<const std::string_view> values, std::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

constexpr std::array<std::string_view, 2> kAlignment = {"r", "s"};
constexpr std::array<std::string_view, 3> kPolicy = {"none", "quarantine", "reject"};
constexpr std::array<std::string_view, 2> kPassFail = {"pass", "fail"};
constexpr std::array<std::string_view, 7> kDkim = {"none",    "pass",      "fail",     "policy",
                                                   "neutral", "temperror", "permerror"};
constexpr std::array<std::string_view, 7> kSpf = {"none",     "neutral",   "pass",     "fail",
                                                  "softfail", "temperror", "permerror"};
constexpr std::array<std::string_view, 2> kScope = {"mfrom", "helo"};
constexpr std::array<std::string_view, 6> kReason = {
    "forwarded", "sampled_out", "trusted_forwarder", "mailing_list", "local_policy", "other"};
constexpr std::array<std::string_view, 2> kYesNo = {"y", "n"};
constexpr std::array<std::string_view, 2> kDiscovery = {"psl", "treewalk"};

std::span<const std::string_view> Allowed(ReportEnum kind) {
  switch (kind) {
    case ReportEnum::kAlignment:
      return kAlignment;
    case ReportEnum::kPolicy:
    case ReportEnum::kDisposition:
      return kPolicy;
    case ReportEnum::kPolicyResult:
      return kPassFail;
    case ReportEnum::kDkimResult:
      return kDkim;
    case ReportEnum::kSpfResult:
      return kSpf;
    case ReportEnum::kSpfScope:
      return kScope;
    case ReportEnum::kReasonType:
      return kReason;
    case ReportEnum::kTesting:
      return kYesNo;
    case ReportEnum::kDiscoveryMethod:
      return kDiscovery;
  }
  return {};
}

bool Has(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// The nearest schema value for spellings reporters are known to send. An
// authentication result that is not a defined value still says whether the
// check passed; anything that is not clearly a pass counts as a failure,
// never as a pass (RFC 7489 section 3.1: only a pass aligns).
std::optional<std::string> Nearest(ReportEnum kind, const std::string& v) {
  switch (kind) {
    case ReportEnum::kAlignment:
      if (v == "relaxed") return "r";
      if (v == "strict") return "s";
      return std::nullopt;
    case ReportEnum::kPolicy:
    case ReportEnum::kDisposition:
      if (v == "pass" || v == "deliver" || v == "delivered") return "none";
      if (Has(v, "quarantin")) return "quarantine";
      if (Has(v, "reject")) return "reject";
      return std::nullopt;
    case ReportEnum::kPolicyResult:
      return std::string(v == "passed" ? "pass" : "fail");
    case ReportEnum::kDkimResult:
    case ReportEnum::kSpfResult:
      if (Has(v, "temp")) return "temperror";
      if (Has(v, "perm")) return "permerror";
      if (kind == ReportEnum::kSpfResult && Has(v, "soft")) return "softfail";
      if (Has(v, "fail")) return "fail";
      if (v == "passed") return "pass";
      if (v == "error") return "temperror";
      return "none";
    case ReportEnum::kSpfScope:
      if (Has(v, "mail") || v == "envelope") return "mfrom";
      if (Has(v, "helo") || Has(v, "ehlo")) return "helo";
      return std::nullopt;
    case ReportEnum::kReasonType:
      return "other";
    case ReportEnum::kTesting:
      if (v == "yes" || v == "true") return "y";
      if (v == "no" || v == "false") return "n";
      return std::nullopt;
    case ReportEnum::kDiscoveryMethod:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::string_view TrimXmlSpace(std::string_view text) {
  while (!text.empty() && IsXmlSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsXmlSpace(text.back())) text.remove_suffix(1);
  return text;
}

std::optional<uint64_t> ParseUint64(std::string_view text) {
  text = TrimXmlSpace(text);
  if (text.empty() || text.front() == '+' || text.front() == '-') return std::nullopt;

  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<int64_t> ParseInt64(std::string_view text) {
  text = TrimXmlSpace(text);
  if (text.empty() || text.front() == '+') return std::nullopt;

  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::string> CanonicalIp(std::string_view text) {
  std::string ip(TrimXmlSpace(text));
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);

  // inet_ntop writes IPv6 as RFC 5952 section 4 recommends: lower case,
  // leading zeros dropped, the longest run of zero groups as "::".
  std::array<unsigned char, 16> binary{};
  std::array<char, INET6_ADDRSTRLEN> out{};
  if (inet_pton(AF_INET, ip.c_str(), binary.data()) == 1) {
    return std::string(inet_ntop(AF_INET, binary.data(), out.data(), out.size()));
  }
  if (inet_pton(AF_INET6, ip.c_str(), binary.data()) == 1) {
    return std::string(inet_ntop(AF_INET6, binary.data(), out.data(), out.size()));
  }
  return std::nullopt;
}

EnumValue NormalizeEnum(ReportEnum kind, std::string_view what, std::string_view text) {
  std::string value = Lower(TrimXmlSpace(text));
  if (value.empty()) return {};
  if (Contains(Allowed(kind), value)) return {value, std::nullopt};

  auto nearest = Nearest(kind, value);
  std::string warning = "unknown " + std::string(what) + " '" + value + "'";
  warning += nearest ? " mapped to '" + *nearest + "'" : " ignored";
  return {nearest, warning};
}

}  // namespace dmarcd::parser
