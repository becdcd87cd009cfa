// The error type every layer of dmarcd shares.
//
// Expected failures (bad input, a limit hit, a busy database, a network
// fault) are values, never exceptions: functions return Result<T>. The
// ErrorCode's name (ErrorCodeName) is what the rejected-input table and the
// REST API store and show as the machine-readable reason; the message is the
// human-readable detail (element names, byte offsets, limits).
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace dmarcd {

enum class ErrorCode {
  // Input that is itself bad: kept in the rejected table, never retried.
  kTooLarge,        // a size cap (raw, inflated, upload) was exceeded
  kRatioExceeded,   // inflated / compressed bytes above the cap: a bomb
  kTooManyEntries,  // zip entries, MIME parts, records
  kTooDeep,         // MIME nesting, XML element depth
  kBadArchive,      // gzip or zip that cannot be read
  kBadMime,         // an email that cannot be parsed
  kNoReport,        // an email or archive without any report in it
  kNotXml,          // payload is not XML at all
  kMalformedXml,    // XML that is not well-formed
  kDoctypeRefused,  // a DTD or entity declaration (XXE, billion laughs)
  kNotAReport,      // well-formed XML that is not a DMARC aggregate report
  kMissingElement,  // a required element (report_id, date_range, ...) absent
  kInvalidValue,    // a required element with an unusable value
  kBadDateRange,    // end before begin
  kUnsupported,     // a kind of report dmarcd cannot store yet
  // Faults of the environment: the input is fine, try again later.
  kIo,
  kDatabaseBusy,
  kDatabase,
  kNetwork,
  // Requests and configuration.
  kNotFound,
  kInvalidArgument,
  kUnauthorized,
  kForbidden,
  kConfig,
  kInternal,
};

// Stable snake_case name of the code ("too_large", "malformed_xml"); stored
// in the database and served by the API, so never rename one.
std::string_view ErrorCodeName(ErrorCode code);

// True for faults where the same input may succeed later (I/O, busy or
// failing database, network): callers defer instead of rejecting.
bool IsTransient(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;

  Error() = default;
  Error(ErrorCode c, std::string m) : code(c), message(std::move(m)) {}

  // "malformed_xml: line 3, column 7: ..." for logs and CLI output.
  std::string ToString() const;
};

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> MakeError(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error(code, std::move(message)));
}

}  // namespace dmarcd
