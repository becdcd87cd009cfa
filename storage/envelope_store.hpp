// The handler that ParseEnvelope drives while the Writer stores an envelope:
// it archives the raw bytes, writes each report as the parser streams it,
// and files whatever did not parse in the rejected table.
//
// It works inside a transaction its caller opened (Writer::Ingest,
// Writer::Reparse) and opens one savepoint per document itself, so a
// document that fails half-way leaves no row behind. After a transient
// fault (busy or failing database) FinishEnvelope returns the error and the
// caller must roll the whole transaction back.
//
// Records go through statements prepared once for the store's lifetime;
// per-report totals and day shares are kept in memory and written at the
// report's end. Not thread-safe: one store per write connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parser/aggregate_parser.hpp"
#include "parser/envelope.hpp"
#include "parser/error.hpp"
#include "parser/pipeline.hpp"
#include "storage/database.hpp"
#include "storage/failure_store.hpp"
#include "storage/prepared_envelope.hpp"
#include "storage/reader.hpp"
#include "storage/rollups.hpp"
#include "storage/statement.hpp"
#include "storage/writer.hpp"

namespace dmarcd::storage {

class EnvelopeStore final : public parser::EnvelopeHandler, public parser::AggregateSink {
 public:
  // `db` must outlive the store.
  explicit EnvelopeStore(Database& db);

  // Starts an envelope: archives its bytes in raw_inputs (once per SHA-256;
  // gzip-compressed unless they arrived as gzip or zip), with the digest and
  // the archive copy of `prepared` when given (PrepareEnvelope of this very
  // envelope).
  Result<void> BeginEnvelope(const parser::Envelope& envelope,
                             const PreparedEnvelope* prepared = nullptr);

  // Starts an envelope read from `source` (parser::ParseEnvelopeSource),
  // which must outlive the envelope: archived like BeginEnvelope, but in
  // chunks through incremental blob I/O, and an input that arrived
  // uncompressed is deflated through a temporary file, so no copy of it is
  // ever whole in memory. A rejection with empty part bytes is filed with
  // the archived bytes, copied the same way.
  Result<void> BeginEnvelopeSource(parser::EnvelopeSource& source);

  // Starts an envelope made of the bytes of rejected row `rejected_pk`:
  // nothing is archived again, reports point at `raw_pk` (0: none), and a
  // part that still fails is reported against the row instead of filed anew.
  Result<void> BeginReparse(const parser::Envelope& envelope, int64_t rejected_pk, int64_t raw_pk);

  // What the envelope produced, or the transient fault that spoilt it.
  // Writes the envelope's roll-ups first, unless they are held.
  Result<EnvelopeOutcome> FinishEnvelope();

  // Roll-up rows (rollups.hpp) are written by FinishEnvelope unless held:
  // a group commit holds them over many envelopes and writes them with
  // FlushRollups before its commit, or when HeldRollupSources() is large.
  // The caller then follows its savepoints with RollupMark and
  // RollBackRollups, and drops them all with RollBackRollups(0) when the
  // transaction is rolled back.
  void HoldRollups(bool hold) { hold_rollups_ = hold; }
  size_t RollupMark() const { return rollups_.Held(); }
  size_t HeldRollupSources() const { return rollups_.HeldSources(); }
  void RollBackRollups(size_t mark) { rollups_.RollBackTo(mark); }
  Result<void> FlushRollups() { return rollups_.Flush(); }

  // parser::EnvelopeHandler
  parser::AggregateSink& OnAggregateBegin(const parser::DocumentInfo& doc) override;
  void OnAggregateEnd(const parser::DocumentInfo& doc, const Result<void>& outcome) override;
  void OnRejected(std::string_view name, std::string_view bytes, const Error& error) override;
  // Stores the report (failure_reports); a report already there (same
  // digest) is a duplicate.
  void OnFailureReport(std::string_view name, std::string_view bytes,
                       const parser::FailureReport& report) override;

  // What the Writer applied to the envelope before it reached the store;
  // recorded with each failure report.
  void SetFailurePrivacy(const FailurePrivacy& privacy) { privacy_ = privacy; }

  // parser::AggregateSink
  Result<parser::SinkAction> OnHeader(const parser::AggregateHeader& header) override;
  Result<parser::SinkAction> OnRecord(const parser::AggregateRecord& record) override;
  Result<void> OnEnd(const std::vector<std::string>& warnings) override;

 private:
  // What the current document has produced so far.
  struct Document {
    bool savepoint = false;  // SAVEPOINT document is open
    bool duplicate = false;
    bool ended = false;  // OnEnd stored the totals
    std::optional<Error> failure;
    PartOutcome part;
    Figures totals;
    std::string reporter_key;
    size_t rollup_mark = 0;  // rollups_.Held() before the document
  };

  Result<void> PrepareStatements();
  void StartEnvelope(const std::string& origin);
  Result<int64_t> ArchiveRaw(const parser::Envelope& envelope, const PreparedEnvelope* prepared);
  Result<int64_t> ArchiveSource(parser::EnvelopeSource& source);
  Result<int64_t> RejectSource(const std::string& name, const Error& error);
  void RecordRejection(std::string name, std::string_view bytes, const Error& error);
  Result<void> InsertNotes(int64_t report_pk, std::string_view kind,
                           const std::vector<std::string>& texts);
  // Inserts the records waiting in pending_records_, with their DKIM and
  // SPF results, through MultiRowInsert.
  Result<void> WriteRecords();

  // Records wait in memory and go in many rows to a statement (issue #7).
  static constexpr size_t kRecordRows = MultiRowInsert::kRows;

  Database& db_;
  bool prepared_ = false;
  FailureStore failure_store_{db_};
  // The daily roll-ups (rollups.hpp), fed record by record.
  RollupWriter rollups_{db_};
  bool hold_rollups_ = false;
  FailurePrivacy privacy_;

  // Per envelope.
  std::string origin_;
  int64_t received_at_ = 0;
  int64_t raw_pk_ = 0;
  std::optional<int64_t> reparsing_;          // the rejected row being parsed again
  parser::EnvelopeSource* source_ = nullptr;  // BeginEnvelopeSource's
  EnvelopeOutcome outcome_;
  std::optional<Error> transient_;
  Document doc_;

  // Prepared once: preparing per record would cost more than the insert.
  Statement find_raw_;
  Statement insert_raw_;
  Statement find_report_;
  Statement insert_report_;
  Statement insert_note_;
  Statement insert_reason_;
  Statement last_record_pk_;
  MultiRowInsert insert_records_{
      "INSERT INTO records (id, report_id, seq, source_ip, count, disposition, policy_dkim, "
      "policy_spf, header_from, envelope_from, envelope_to) VALUES ",
      11};
  MultiRowInsert insert_dkim_{
      "INSERT INTO dkim_results (record_id, seq, domain, selector, result, human_result) VALUES ",
      6};
  MultiRowInsert insert_spf_{
      "INSERT INTO spf_results (record_id, seq, domain, scope, result, human_result) VALUES ", 6};
  // The current document's records not inserted yet, and the id the first
  // of them gets (ids are given here, so the results can point at them).
  std::vector<parser::AggregateRecord> pending_records_;
  int64_t next_record_pk_ = 0;
  Statement finish_report_;
  Statement insert_day_;
  Statement find_rejected_;
  Statement insert_rejected_;
};

}  // namespace dmarcd::storage
