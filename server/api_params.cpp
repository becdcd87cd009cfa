#include "server/api_params.hpp"

#include <cctype>
#include <charconv>

#include "parser/report_values.hpp"
#include "server/iso_time.hpp"

namespace dmarcd::server {

Result<bool> AcceptParam(const std::string& key, const std::string& value,
                         const std::set<std::string>& allowed, std::set<std::string>& seen) {
  if (key.empty() && value.empty()) return false;
  if (allowed.count(key) == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "unknown parameter '" + key + "'");
  }
  if (value.empty()) return false;
  if (!seen.insert(key).second) {
    return MakeError(ErrorCode::kInvalidArgument, "parameter '" + key + "' given twice");
  }
  return true;
}

Result<std::string> ParseIpParam(const std::string& name, const std::string& text) {
  auto ip = parser::CanonicalIp(text);
  if (ip) return *ip;
  return MakeError(ErrorCode::kInvalidArgument,
                   "parameter '" + name + "': expected an IPv4 or IPv6 address");
}

Result<int64_t> ParseIntegerParam(const std::string& name, const std::string& text, int64_t min,
                                  int64_t max) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < min || value > max) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "parameter '" + name + "': expected an integer from " + std::to_string(min) +
                         " to " + std::to_string(max));
  }
  return value;
}

Result<int64_t> ParseTimeParam(const std::string& name, const std::string& text) {
  auto time = ParseIsoTime(text);
  if (time) return *time;

  // Built step by step: one long operator+ chain trips g++ 12's -Wrestrict
  // false positive at -O2.
  std::string message = "parameter '";
  message += name;
  message += "': expected an ISO 8601 date (2025-01-01) or UTC date-time ";
  message += "(2025-01-01T06:00:00Z), got '";
  message += text;
  message += "'";
  return MakeError(ErrorCode::kInvalidArgument, std::move(message));
}

std::string LowerDomain(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

boost::json::value OptString(const std::optional<std::string>& value) {
  if (!value) return nullptr;
  return boost::json::string(*value);
}

boost::json::array StringArray(const std::vector<std::string>& values) {
  boost::json::array out;
  for (const std::string& v : values) out.emplace_back(boost::json::string(v));
  return out;
}

}  // namespace dmarcd::server
