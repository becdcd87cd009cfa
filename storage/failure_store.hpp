// Storing failure reports (RFC 6591, RFC 9991) and what the privacy
// settings allow of them.
//
// Failure reports carry personal data: the headers (and maybe the body) of
// a real message, with the addresses of real people. The [privacy]
// settings are applied to the envelope BEFORE anything of it is written
// (ApplyFailurePrivacy): the raw archive, the failure_reports row and, for a
// failure report that cannot be stored, the rejected-table copy all hold
// only what the settings keep. This is the one place where dmarcd, on the
// user's explicit choice, does not keep input whole. ARF reports of other
// feedback types (abuse, fraud) are not failure reports and are kept whole.
//
// Not thread-safe: use on the writer's connection, inside its transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "parser/envelope.hpp"
#include "parser/error.hpp"
#include "parser/failure_model.hpp"
#include "storage/database.hpp"
#include "storage/statement.hpp"

namespace dmarcd::storage {

enum class SampleMode {
  kFull,     // the returned message whole
  kHeaders,  // its header block only (the default)
  kNone,     // nothing of it
};

// "full", "headers", "none"; ParseSampleMode returns kConfig for others.
std::string_view SampleModeName(SampleMode mode);
Result<SampleMode> ParseSampleMode(std::string_view name);

struct FailurePrivacy {
  SampleMode store_samples = SampleMode::kHeaders;
  // Replace the local part of every address with "h-" and the first 12 hex
  // digits of HMAC-SHA-256(per-database key, lower-cased local part): the
  // same sender stays recognisable, the name is gone.
  bool redact_local_parts = false;
};

// Whether `bytes` may be a failure report (ARF or not), by a quick look:
// false means ApplyFailurePrivacy leaves the envelope as it is.
bool MayBeFailureReport(std::string_view bytes);

// The envelope to store in place of `envelope`: when it is a failure report
// and the settings keep less than all of it, a new ARF email holding only
// what they keep (parser::WriteFailureReport), with local parts redacted.
// nullopt: store `envelope` as it is (any other input). Reads (and on first
// use creates) the key in privacy_key, so it runs inside the writer's
// transaction.
Result<std::optional<parser::Envelope>> ApplyFailurePrivacy(Database& db,
                                                            const parser::Envelope& envelope,
                                                            const FailurePrivacy& privacy);

// Replaces every local part in `text` (see FailurePrivacy); a local part
// that already is a hash is left alone, so redacting twice changes nothing.
std::string RedactLocalParts(std::string_view text, std::string_view key);

// One stored failure report, or the row it duplicates.
struct FailureStoreOutcome {
  bool duplicate = false;
  int64_t id = 0;
  std::string domain;
  int64_t arrived_at = 0;
};

class FailureStore {
 public:
  // `db` must outlive the store.
  explicit FailureStore(Database& db) : db_(db) {}

  // Stores `report` unless a report with the same digest (feedback-report
  // fields and returned headers) is there. Errors: database faults only.
  Result<FailureStoreOutcome> Store(const parser::FailureReport& report, bool redacted,
                                    int64_t raw_pk, std::string_view origin, int64_t received_at);

 private:
  Database& db_;
  bool prepared_ = false;
  Statement find_;
  Statement insert_;
};

// Retention ([retention] failure_retention): deletes failure reports
// received before `cutoff` (Unix seconds) and their raw archive copies
// (those no other row refers to). Returns how many reports were deleted.
Result<int64_t> DeleteFailureReportsBefore(Database& db, int64_t cutoff);

// "90d", "12w", "36h" in seconds; kConfig for anything else. "0" or ""
// means keep forever (nullopt).
Result<std::optional<int64_t>> ParseRetention(std::string_view text);

}  // namespace dmarcd::storage
