// Conversions from the text of one aggregate report element to the model's
// values: trimming, integers, IP addresses and the enumerations of RFC 7489
// Appendix C and RFC 9990. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dmarcd::parser {

// The text without leading and trailing XML white space (space, tab, CR, LF).
std::string_view TrimXmlSpace(std::string_view text);

// A decimal unsigned 64-bit integer, nothing else; nullopt when the text is
// empty, signed, fractional, has other characters or overflows.
std::optional<uint64_t> ParseUint64(std::string_view text);

// Like ParseUint64 but signed (Unix times before 1970 are nonsense but legal).
std::optional<int64_t> ParseInt64(std::string_view text);

// The canonical text of an IPv4 (dotted quad) or IPv6 address (RFC 5952:
// lower case, longest zero run compressed); nullopt when it is neither.
std::optional<std::string> CanonicalIp(std::string_view text);

// Which enumeration of the schema a value belongs to.
enum class ReportEnum {
  kAlignment,        // adkim, aspf: r | s
  kPolicy,           // p, sp, np: none | quarantine | reject
  kDisposition,      // policy_evaluated/disposition
  kPolicyResult,     // policy_evaluated/dkim and /spf: pass | fail
  kDkimResult,       // auth_results/dkim/result
  kSpfResult,        // auth_results/spf/result
  kSpfScope,         // auth_results/spf/scope: mfrom | helo
  kReasonType,       // policy_evaluated/reason/type
  kTesting,          // RFC 9990 testing: y | n
  kDiscoveryMethod,  // RFC 9990 discovery_method: psl | treewalk
};

struct EnumValue {
  // The schema value, or nullopt when nothing sensible is near.
  std::optional<std::string> value;
  // Set when the reporter's value was not a schema value: what was done.
  std::optional<std::string> warning;
};

// Folds case and maps a value outside the schema to the nearest schema value
// ("hardfail" -> "fail") with a warning. `what` names the element in the
// warning ("SPF result"). Empty text gives nullopt without warning.
EnumValue NormalizeEnum(ReportEnum kind, std::string_view what, std::string_view text);

}  // namespace dmarcd::parser
