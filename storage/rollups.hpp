// The daily roll-ups of migrations/0004_rollups.sql, in the shape 0005 gave
// them, kept up to date by the writer inside the ingest transaction.
//
// EnvelopeStore feeds one report at a time: BeginReport, AddRecord for
// every record, then EndReport once the report row exists. Records are
// added up per source IP in memory (a report names few distinct sources),
// and EndReport splits each source's figures over the UTC days the report
// covers with SplitOverDays. A domain's day is the sum of its sources'
// shares, so per-source figures add up to the domain's, and summary == sum
// of the daily series.
//
// The rows are held in memory until Flush, which merges those of the same
// key and writes them in key order: the roll-up keys start with the source
// IP or the day, so report by report they land all over their tables, and
// one sorted pass over many reports touches each page once (issue #7).
// Flush must run in the transaction that stored the reports, before its
// commit. Held() and RollBackTo() follow the caller's savepoints: what a
// rolled-back savepoint held must go with it.
//
// Flush writes through the caller's connection and transaction. Errors are
// the database's (kDatabaseBusy, kDatabase); after one the rows are partly
// written, and the caller must roll the transaction back. Not thread-safe:
// one per write connection, like EnvelopeStore.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "parser/aggregate_model.hpp"
#include "parser/error.hpp"
#include "storage/database.hpp"
#include "storage/reader.hpp"
#include "storage/statement.hpp"

namespace dmarcd::storage {

// The held source rows at which a writer that holds rows over many
// envelopes (a group commit) flushes them before going on: enough for one
// sorted pass to find pages shared, few enough to keep the memory small.
inline constexpr size_t kRollupFlushSources = 32768;

// The distinct sources of one report of one UTC day at which they are
// written at once, inside the report's savepoint, and forgotten: a report
// of millions of records then takes the memory of this many sources. 4,096
// rather than 16,384 keeps the 150,000-record report of
// bench/ingest_bench.sh about 6 MiB lower at its peak, for about 1 % more
// time (issue #7).
inline constexpr size_t kRollupReportSources = 4096;

// The report a roll-up belongs to, as stored in the reports table.
struct RollupReport {
  int64_t report_pk = 0;
  std::string domain;  // lower case
  std::string reporter_key;
  int64_t begin = 0;
  int64_t end = 0;  // >= begin
};

class RollupWriter {
 public:
  // `db` must outlive the writer.
  explicit RollupWriter(Database& db);
  ~RollupWriter();
  RollupWriter(const RollupWriter&) = delete;
  RollupWriter& operator=(const RollupWriter&) = delete;

  // Starts the roll-ups of `report`, whose row exists; forgets whatever a
  // report before it added and did not end.
  void BeginReport(const RollupReport& report);
  // Adds a record of the report. A report of one UTC day writes its
  // sources when they reach kRollupReportSources, through the caller's
  // connection and savepoint: a failure then means the report must be
  // rolled back.
  Result<void> AddRecord(const parser::AggregateRecord& record);
  // Computes the report's rows and holds them until Flush.
  void EndReport();

  // The reports held, as a mark for RollBackTo.
  size_t Held() const { return held_.size(); }
  // The source rows held over all reports: what Flush has to write.
  size_t HeldSources() const { return held_sources_; }
  // Drops the reports ended after Held() returned `mark`.
  void RollBackTo(size_t mark);
  void Clear() { RollBackTo(0); }
  // Writes every held row and holds none, whatever the outcome.
  Result<void> Flush();

 private:
  // What one report holds for one source IP.
  struct Source {
    Figures figures;
    uint64_t records = 0;
    std::vector<uint32_t> names;  // ids in names_, ascending, each once
  };
  // The report being added to finds its sources by hash; a held report
  // keeps them sorted by IP, so that the apportionment and the rows come
  // out the same whatever order the records came in.
  using Sources = std::unordered_map<std::string, Source>;
  using SortedSources = std::vector<std::pair<std::string, Source>>;
  static SortedSources Sorted(Sources& sources);
  struct HeldReport;

  Result<void> Prepare();
  // Adds `name`, lower-cased, to the source's names under `kind`
  // ("header_from", "dkim" or "spf").
  void AddName(Source& source, std::string_view kind, std::string_view name);
  Result<void> Write(const std::vector<const HeldReport*>& reports);
  // The names column of migration 0005 for a source-day with these names.
  void NamesJson(const std::vector<const std::vector<uint32_t>*>& ids, std::string& out) const;

  Database& db_;
  bool prepared_ = false;
  RollupReport report_;  // the report being added to
  Figures report_totals_;
  Sources sources_;
  std::vector<std::unique_ptr<HeldReport>> held_;
  size_t held_sources_ = 0;
  // "kind:name" of every name held or being added, numbered in order of
  // arrival; emptied when nothing refers to them.
  std::unordered_map<std::string, uint32_t> name_ids_;
  std::vector<const std::string*> names_;
  std::string entry_;  // AddName's buffer

  Statement upsert_domain_day_;
  Statement upsert_reporter_day_;
  MultiRowInsert upsert_source_days_;
  MultiRowInsert upsert_source_reports_;
};

// Empties the roll-up tables and builds them again from the stored reports
// and records, through RollupWriter, so they are exactly what the writer
// would have written. Runs in the caller's transaction; errors are the
// database's. Nothing deletes aggregate reports today; code that does (a
// retention rule) must run this in the same transaction, since only
// source_reports follows a deleted report by itself (ON DELETE CASCADE).
// It reads every record: seconds for millions.
Result<void> RebuildRollups(Database& db);

// What a migration needs beyond its SQL, run by Database::Migrate in the
// migration's transaction after its SQL: version 5 (the roll-up tables'
// present shape) builds the roll-ups of the reports already stored.
// Nothing for others.
Result<void> AfterMigration(Database& db, int version);

}  // namespace dmarcd::storage
