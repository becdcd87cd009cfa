// Query-parameter parsing and JSON building shared by every REST route, so
// limits, messages and null handling are the same everywhere (DESIGN.md's
// list shape and error shape).
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "parser/error.hpp"

namespace dmarcd::server {

inline constexpr int64_t kDefaultLimit = 100;
inline constexpr int64_t kMaxLimit = 1000;

// One piece `key=value` of a query string. kInvalidArgument for a name not
// in `allowed`, even without a value, and for one already in `seen`; false
// when the piece counts as absent (an empty piece, or an empty value: what
// a form sends for a field left blank); true when the route reads it, and
// then `key` is added to `seen`.
Result<bool> AcceptParam(const std::string& key, const std::string& value,
                         const std::set<std::string>& allowed, std::set<std::string>& seen);

// An IPv4 or IPv6 address in the canonical text the parser stores
// (parser::CanonicalIp), so that a filter finds it however it is spelt;
// kInvalidArgument naming the parameter otherwise.
Result<std::string> ParseIpParam(const std::string& name, const std::string& text);

// A whole decimal integer within [min, max]; kInvalidArgument naming the
// parameter otherwise.
Result<int64_t> ParseIntegerParam(const std::string& name, const std::string& text, int64_t min,
                                  int64_t max);

// `from` or `to`: an ISO 8601 date or UTC date-time as Unix seconds;
// kInvalidArgument naming the parameter and showing the value otherwise.
Result<int64_t> ParseTimeParam(const std::string& name, const std::string& text);

// A policy domain as stored: lower case (DNS names compare case-insensitively,
// RFC 4343).
std::string LowerDomain(std::string text);

// JSON null for an absent value.
boost::json::value OptString(const std::optional<std::string>& value);
boost::json::array StringArray(const std::vector<std::string>& values);

}  // namespace dmarcd::server
