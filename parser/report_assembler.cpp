#include "parser/report_assembler.hpp"

#include <cmath>

namespace dmarcd::parser {

namespace {

constexpr size_t kMaxWarnings = 100;
constexpr int64_t kDaySeconds = 86400;

std::optional<std::string> Optional(std::string_view text) {
  text = TrimXmlSpace(text);
  if (text.empty()) return std::nullopt;
  return std::string(text);
}

bool Is(const std::vector<std::string>& path, std::initializer_list<std::string_view> names) {
  if (path.size() != names.size()) return false;
  size_t i = 0;
  for (std::string_view name : names) {
    if (path[i++] != name) return false;
  }
  return true;
}

Result<int64_t> Timestamp(std::string_view name, std::string_view text) {
  auto value = ParseInt64(text);
  if (!value) {
    return MakeError(ErrorCode::kInvalidValue, "report_metadata/date_range/" + std::string(name) +
                                                   " '" + std::string(TrimXmlSpace(text)) +
                                                   "' is not a Unix time");
  }
  return *value;
}

}  // namespace

ReportAssembler::ReportAssembler(AggregateSink& sink, const Limits& limits)
    : sink_(sink), limits_(limits) {}

void ReportAssembler::Warn(std::string warning) {
  if (warnings_.size() >= kMaxWarnings || seen_warnings_.contains(warning)) return;
  seen_warnings_.insert(warning);
  warnings_.push_back(std::move(warning));
}

std::optional<std::string> ReportAssembler::Enum(ReportEnum kind, std::string_view what,
                                                 std::string_view text) {
  EnumValue value = NormalizeEnum(kind, what, text);
  if (value.warning) Warn(*value.warning);
  return value.value;
}

void ReportAssembler::OnStart(const std::vector<std::string>& path) {
  if (Is(path, {"record"})) {
    record_ = AggregateRecord();
    have_source_ip_ = false;
    have_count_ = false;
  } else if (Is(path, {"record", "auth_results", "dkim"})) {
    record_.dkim.emplace_back();
  } else if (Is(path, {"record", "auth_results", "spf"})) {
    record_.spf.emplace_back();
  } else if (Is(path, {"record", "row", "policy_evaluated", "reason"})) {
    record_.reasons.emplace_back();
  }
}

Result<void> ReportAssembler::OnEnd(const std::vector<std::string>& path, std::string_view text) {
  if (stopped_ || path.empty()) return {};

  const std::string& section = path[0];
  if (path.size() == 1) {
    if (section == "version") header_.version = Optional(text);
    if (section == "report_metadata") metadata_done_ = true;
    if (section == "policy_published") policy_done_ = true;
    if (section == "record") return EndRecord();
    return MaybeSendHeader();
  }
  if (section == "report_metadata") {
    if (path.size() == 2) return OnMetadata(path[1], text);
    if (Is(path, {"report_metadata", "date_range", "begin"})) return OnMetadata("begin", text);
    if (Is(path, {"report_metadata", "date_range", "end"})) return OnMetadata("end", text);
    return {};
  }
  if (section == "policy_published" && path.size() == 2) return OnPolicy(path[1], text);
  if (section != "record") return {};

  if (path[1] == "row") return OnRow(path, text);
  if (path[1] == "identifiers" && path.size() == 3) OnIdentifiers(path[2], text);
  if (path[1] == "auth_results" && path.size() == 4) OnAuthResult(path, text);
  return {};
}

Result<void> ReportAssembler::OnMetadata(std::string_view name, std::string_view text) {
  if (name == "org_name") {
    header_.org_name = std::string(TrimXmlSpace(text));
  } else if (name == "email") {
    header_.email = Optional(text);
  } else if (name == "extra_contact_info") {
    header_.extra_contact_info = Optional(text);
  } else if (name == "report_id") {
    header_.report_id = std::string(TrimXmlSpace(text));
  } else if (name == "error") {
    if (auto error = Optional(text)) header_.errors.push_back(*error);
  } else if (name == "generator") {
    header_.generator = Optional(text);
  } else if (name == "begin" || name == "end") {
    auto value = Timestamp(name, text);
    if (!value) return tl::unexpected(value.error());
    (name == "begin" ? header_.begin : header_.end) = *value;
    (name == "begin" ? have_begin_ : have_end_) = true;
  }
  return {};
}

Result<void> ReportAssembler::OnPolicy(std::string_view name, std::string_view text) {
  PolicyPublished& policy = header_.policy;
  if (name == "domain") {
    policy.domain = std::string(TrimXmlSpace(text));
  } else if (name == "adkim") {
    policy.adkim = Enum(ReportEnum::kAlignment, "adkim", text);
  } else if (name == "aspf") {
    policy.aspf = Enum(ReportEnum::kAlignment, "aspf", text);
  } else if (name == "p") {
    policy.p = Enum(ReportEnum::kPolicy, "policy p", text);
  } else if (name == "sp") {
    policy.sp = Enum(ReportEnum::kPolicy, "policy sp", text);
  } else if (name == "np") {
    policy.np = Enum(ReportEnum::kPolicy, "policy np", text);
  } else if (name == "fo") {
    policy.fo = Optional(text);
  } else if (name == "testing") {
    policy.testing = Enum(ReportEnum::kTesting, "testing", text);
  } else if (name == "discovery_method") {
    policy.discovery_method = Enum(ReportEnum::kDiscoveryMethod, "discovery_method", text);
  } else if (name == "pct") {
    // pct is optional (and gone in RFC 9990): a bad one costs the value,
    // not the report.
    auto trimmed = TrimXmlSpace(text);
    auto value = ParseUint64(trimmed);
    if (value && *value <= 100) {
      policy.pct = static_cast<int>(*value);
    } else if (!trimmed.empty()) {
      Warn("policy_published/pct '" + std::string(trimmed) + "' is not a percentage, ignored");
    }
  }
  return {};
}

Result<void> ReportAssembler::OnRow(const std::vector<std::string>& path, std::string_view text) {
  if (Is(path, {"record", "row", "source_ip"})) {
    have_source_ip_ = true;
    if (TrimXmlSpace(text).empty()) {
      // Seen from test tools, never from a real reporter: keep the count.
      Warn("record with an empty source_ip kept without an address");
      return {};
    }
    auto ip = CanonicalIp(text);
    if (!ip) {
      return MakeError(
          ErrorCode::kInvalidValue,
          "record/row/source_ip '" + std::string(TrimXmlSpace(text)) + "' is not an IP address");
    }
    record_.source_ip = *ip;
  } else if (Is(path, {"record", "row", "count"})) {
    auto count = ParseUint64(text);
    if (!count) {
      return MakeError(ErrorCode::kInvalidValue, "record/row/count '" +
                                                     std::string(TrimXmlSpace(text)) +
                                                     "' is not a non-negative integer");
    }
    record_.count = *count;
    have_count_ = true;
  } else if (Is(path, {"record", "row", "policy_evaluated", "disposition"})) {
    record_.disposition = Enum(ReportEnum::kDisposition, "disposition", text);
  } else if (Is(path, {"record", "row", "policy_evaluated", "dkim"})) {
    record_.policy_dkim = Enum(ReportEnum::kPolicyResult, "policy_evaluated DKIM result", text);
  } else if (Is(path, {"record", "row", "policy_evaluated", "spf"})) {
    record_.policy_spf = Enum(ReportEnum::kPolicyResult, "policy_evaluated SPF result", text);
  } else if (Is(path, {"record", "row", "policy_evaluated", "reason", "type"})) {
    if (TrimXmlSpace(text).empty()) Warn("empty policy override reason type taken as unknown");
    record_.reasons.back().type = Enum(ReportEnum::kReasonType, "policy override reason", text);
  } else if (Is(path, {"record", "row", "policy_evaluated", "reason", "comment"})) {
    record_.reasons.back().comment = Optional(text);
  }
  return {};
}

void ReportAssembler::OnIdentifiers(std::string_view name, std::string_view text) {
  if (name == "header_from") record_.header_from = Optional(text);
  if (name == "envelope_from") record_.envelope_from = Optional(text);
  if (name == "envelope_to") record_.envelope_to = Optional(text);
}

void ReportAssembler::OnAuthResult(const std::vector<std::string>& path, std::string_view text) {
  const std::string& name = path[3];
  if (path[2] == "dkim") {
    DkimAuthResult& dkim = record_.dkim.back();
    if (name == "domain") dkim.domain = Optional(text);
    if (name == "selector") dkim.selector = Optional(text);
    if (name == "human_result") dkim.human_result = Optional(text);
    if (name == "result")
      dkim.result = Enum(ReportEnum::kDkimResult, "DKIM result", text).value_or("");
  } else if (path[2] == "spf") {
    SpfAuthResult& spf = record_.spf.back();
    if (name == "domain") spf.domain = Optional(text);
    if (name == "scope") spf.scope = Enum(ReportEnum::kSpfScope, "SPF scope", text);
    if (name == "human_result") spf.human_result = Optional(text);
    if (name == "result")
      spf.result = Enum(ReportEnum::kSpfResult, "SPF result", text).value_or("");
  }
}

Result<void> ReportAssembler::EndRecord() {
  // RFC 7489 Appendix C: a row without source_ip or count cannot be counted
  // anywhere, and dropping it silently would understate the totals.
  if (!have_source_ip_)
    return MakeError(ErrorCode::kMissingElement, "record/row/source_ip missing");
  if (!have_count_) return MakeError(ErrorCode::kMissingElement, "record/row/count missing");

  for (auto& dkim : record_.dkim) {
    if (dkim.result.empty()) {
      Warn("DKIM auth result without a result taken as 'none'");
      dkim.result = "none";
    }
  }
  for (auto& spf : record_.spf) {
    if (spf.result.empty()) {
      Warn("SPF auth result without a result taken as 'none'");
      spf.result = "none";
    }
  }

  if (++records_ > limits_.max_records) {
    return MakeError(ErrorCode::kTooManyEntries,
                     "report holds more than " + std::to_string(limits_.max_records) + " records");
  }
  if (!header_sent_) {
    held_.push_back(std::move(record_));
    return {};
  }
  return SendRecord(record_);
}

Result<void> ReportAssembler::SendRecord(const AggregateRecord& record) {
  auto action = sink_.OnRecord(record);
  if (!action) return tl::unexpected(action.error());
  if (*action == SinkAction::kStop) stopped_ = true;
  return {};
}

Result<void> ReportAssembler::MaybeSendHeader() {
  if (header_sent_ || !metadata_done_ || !policy_done_) return {};
  return SendHeader();
}

Result<void> ReportAssembler::SendHeader() {
  if (header_.report_id.empty()) {
    return MakeError(ErrorCode::kMissingElement, "report_metadata/report_id missing");
  }
  if (!have_begin_) {
    return MakeError(ErrorCode::kMissingElement, "report_metadata/date_range/begin missing");
  }
  if (!have_end_) {
    return MakeError(ErrorCode::kMissingElement, "report_metadata/date_range/end missing");
  }
  if (header_.policy.domain.empty()) {
    return MakeError(ErrorCode::kMissingElement, "policy_published/domain missing");
  }
  if (header_.end < header_.begin) {
    return MakeError(ErrorCode::kBadDateRange, "date range end before begin (begin " +
                                                   std::to_string(header_.begin) + ", end " +
                                                   std::to_string(header_.end) + ")");
  }

  // RFC 7489 section 7.2 asks for daily reports; longer ranges are real
  // (some gateways send weeks) and kept, but worth a word.
  int64_t span = header_.end - header_.begin;
  if (span > kDaySeconds) {
    auto days = std::llround(static_cast<double>(span) / kDaySeconds);
    Warn("date range longer than 24 hours (about " + std::to_string(days) + " days)");
  }

  header_sent_ = true;
  auto action = sink_.OnHeader(header_);
  if (!action) return tl::unexpected(action.error());
  if (*action == SinkAction::kStop) {
    stopped_ = true;
    return {};
  }

  std::vector<AggregateRecord> held = std::move(held_);
  held_.clear();
  for (const auto& record : held) {
    if (stopped_) break;
    auto sent = SendRecord(record);
    if (!sent) return sent;
  }
  return {};
}

Result<void> ReportAssembler::Finish() {
  if (stopped_) return {};
  if (!header_sent_) {
    auto sent = SendHeader();
    if (!sent) return sent;
    if (stopped_) return {};
  }
  return sink_.OnEnd(warnings_);
}

}  // namespace dmarcd::parser
