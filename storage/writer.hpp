// Stores envelopes: the one writer of the database.
//
// Ingest runs one envelope through the parser (parser/pipeline.hpp) and
// stores everything it produced in one transaction: the raw envelope
// (compressed when it arrived uncompressed, with its SHA-256), each report
// that parsed, and for each part that did not, a row in the rejected table
// with the part kept whole and the reason. Each document gets its own
// savepoint, so a bad sibling never spoils a good report.
//
// A report already stored (same reporter, report id, policy domain and date
// range) is counted as a duplicate and not stored again; rejected input is
// recognised again by the SHA-256 of its bytes.
//
// Not thread-safe: one Writer, owned by one thread, per database.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parser/envelope.hpp"
#include "parser/error.hpp"
#include "parser/limits.hpp"
#include "storage/database.hpp"
#include "storage/failure_store.hpp"
#include "storage/prepared_envelope.hpp"

namespace dmarcd::storage {

enum class PartStatus { kStored, kDuplicate, kRejected };

std::string_view PartStatusName(PartStatus status);  // "stored", "duplicate", "rejected"

struct PartOutcome {
  PartStatus status = PartStatus::kRejected;
  // A failure report (failure_reports row in report_pk; begin and end are
  // its arrival time) rather than an aggregate report.
  bool failure = false;
  std::string name;  // DocumentInfo::name, or the rejected part's name
  // kStored and kDuplicate: the report (its row id, existing row for a duplicate).
  int64_t report_pk = 0;
  std::string org_name;
  std::string report_id;
  std::string domain;
  int64_t begin = 0;  // the report's date range, Unix seconds UTC
  int64_t end = 0;
  uint64_t records = 0;
  uint64_t messages = 0;
  std::vector<std::string> warnings;
  // kRejected: why, and the rejected row (the existing one when the same bytes
  // were already there; the row parsed again, during Reparse).
  std::optional<Error> error;
  int64_t rejected_pk = 0;
};

struct EnvelopeOutcome {
  int64_t raw_pk = 0;  // the archived envelope
  std::vector<PartOutcome> parts;

  int Count(PartStatus status) const;
  uint64_t Records() const;  // records stored (not duplicates)
  // kStored if anything was stored, else kDuplicate if anything was a
  // duplicate, else kRejected.
  PartStatus Overall() const;
};

class Writer {
 public:
  Writer(Database& db, const parser::Limits& limits);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // What is kept of failure reports from now on (see failure_store.hpp);
  // the default keeps the returned message's headers, not its body.
  void SetFailurePrivacy(const FailurePrivacy& privacy);

  // Returns an error only for transient faults (kDatabaseBusy, kDatabase,
  // kIo): then nothing of the envelope was committed and it may be retried.
  // Bad input is an outcome, not an error.
  //
  // Inside a batch (BeginBatch) the envelope gets a savepoint of its own
  // instead of a transaction, and nothing of it is durable, nor may it be
  // acknowledged, until CommitBatch succeeds.
  //
  // With `prepared` (PrepareEnvelope of this very envelope, with the
  // writer's limits), its recording is played instead of parsing the
  // envelope again, and its archive copy stored instead of making one.
  Result<EnvelopeOutcome> Ingest(const parser::Envelope& envelope,
                                 const PreparedEnvelope* prepared = nullptr);

  // As Ingest, for a bare gzip or XML payload too large to hold in memory
  // (parser::ParseEnvelopeSource; EnvelopeStore::BeginEnvelopeSource): the
  // source is read once for its SHA-256, once for the archive copy (unless
  // it is already archived) and once for the parser, in chunks, so memory
  // stays flat whatever its size. Failure reports are not read this way.
  Result<EnvelopeOutcome> IngestSource(parser::EnvelopeSource& source);

  // Group commit: every Ingest until CommitBatch shares one transaction,
  // which saves the per-transaction cost of SQLite (the WAL frames of the
  // pages every envelope touches, written once instead of once per
  // envelope). An envelope that fails inside the batch is undone alone; a
  // fault that spoils the whole transaction (SQLite rolled it back, or the
  // COMMIT failed) makes CommitBatch fail, and then none of the batch's
  // envelopes is stored: the caller must ingest them again. Errors:
  // kDatabaseBusy when the write lock cannot be had, kInternal when a batch
  // is already open.
  Result<void> BeginBatch();
  Result<void> CommitBatch();
  // Undoes the open batch, if any.
  void AbandonBatch();

  // Runs rejected input through the current parser again: one row by id, or
  // every row not yet recovered. Rows that now parse are stored and marked
  // recovered; the others keep their row, with the new reason.
  struct ReparseOutcome {
    int tried = 0;
    int recovered = 0;
    int still_rejected = 0;
    std::vector<EnvelopeOutcome> outcomes;
  };
  Result<ReparseOutcome> Reparse(std::optional<int64_t> rejected_pk);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmarcd::storage
