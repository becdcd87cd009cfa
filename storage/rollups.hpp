// The daily roll-ups of migrations/0004_rollups.sql, kept up to date by the
// writer inside the ingest transaction.
//
// EnvelopeStore feeds one report at a time: BeginReport, AddRecord for
// every record, then EndReport once the report row exists. Records are
// added up per source IP in memory (a report names few distinct sources),
// and EndReport splits each source's figures over the UTC days the report
// covers with SplitOverDays, then writes a few UPSERTs. A domain's day is
// the sum of its sources' shares, so per-source figures add up to the
// domain's, and summary == sum of the daily series.
//
// EndReport writes through the caller's connection and transaction: the
// caller's savepoint undoes the roll-up rows with the report. Errors are
// the database's (kDatabaseBusy, kDatabase). Not thread-safe: one per write
// connection, like EnvelopeStore.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "parser/aggregate_model.hpp"
#include "parser/error.hpp"
#include "storage/database.hpp"
#include "storage/reader.hpp"
#include "storage/statement.hpp"

namespace dmarcd::storage {

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

  // Forgets whatever the previous report added.
  void BeginReport();
  void AddRecord(const parser::AggregateRecord& record);
  Result<void> EndReport(const RollupReport& report);

 private:
  // What one report holds for one source IP.
  struct Source {
    Figures figures;
    uint64_t records = 0;
    std::set<std::pair<std::string, std::string>> names;  // (kind, lower-case name)
  };

  Result<void> Prepare();

  Database& db_;
  bool prepared_ = false;
  std::map<std::string, Source> sources_;

  Statement upsert_domain_day_;
  Statement upsert_source_day_;
  Statement upsert_reporter_day_;
  Statement insert_source_report_;
  Statement insert_source_name_;
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
// migration's transaction after its SQL: version 4 (the roll-up tables)
// builds the roll-ups of the reports already stored. Nothing for others.
Result<void> AfterMigration(Database& db, int version);

}  // namespace dmarcd::storage
