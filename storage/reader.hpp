// Read queries behind the REST API and the dashboard.
//
// Time: everything is UTC. A report's messages belong to the UTC days its
// date range [begin, end) covers, in proportion to the seconds in each
// (split at ingest with largest remainders, so each report's day shares are
// whole numbers that add up to its count). Summary and Timeseries both read
// those day shares, so a summary always equals the sum of its daily series.
// A day belongs to a [from, to) filter when it overlaps it.
//
// Not thread-safe: one Reader per read-only connection, one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parser/aggregate_model.hpp"
#include "parser/error.hpp"
#include "storage/database.hpp"

namespace dmarcd::storage {

struct TimeFilter {
  std::optional<std::string> domain;  // policy domain, lower case
  std::optional<int64_t> from;        // Unix seconds, inclusive
  std::optional<int64_t> to;          // Unix seconds, exclusive
};

struct PageRequest {
  int64_t limit = 100;
  int64_t offset = 0;
};

template <typename T>
struct Page {
  std::vector<T> items;
  int64_t total = 0;
};

struct DomainRow {
  std::string domain;
  int64_t reports = 0;
  uint64_t messages = 0;
  int64_t first_begin = 0;
  int64_t last_end = 0;
};

struct ReportRow {
  int64_t id = 0;
  std::string org_name;
  std::optional<std::string> org_email;
  std::string report_id;
  std::string domain;
  int64_t begin = 0;
  int64_t end = 0;
  uint64_t records = 0;
  uint64_t messages = 0;
  int64_t received_at = 0;  // Unix seconds
  std::string origin;
  std::vector<std::string> warnings;
};

struct ReportDetail {
  ReportRow report;
  parser::AggregateHeader header;  // metadata and published policy as stored
  std::vector<parser::AggregateRecord> records;
};

// Figures weighted by message count, never by row.
struct Figures {
  uint64_t messages = 0;
  uint64_t dmarc_pass = 0;         // policy_evaluated dkim or spf pass
  uint64_t dkim_aligned_pass = 0;  // policy_evaluated dkim pass
  uint64_t spf_aligned_pass = 0;   // policy_evaluated spf pass
  uint64_t disposition_none = 0;
  uint64_t disposition_quarantine = 0;
  uint64_t disposition_reject = 0;
};

struct DayFigures {
  int64_t day = 0;  // Unix seconds of 00:00 UTC
  Figures figures;
};

// One source IP over a period, from the source_days roll-up.
struct SourceRow {
  std::string source_ip;
  Figures figures;
  std::vector<std::string> header_from;   // lower case, sorted
  std::vector<std::string> dkim_domains;  // lower case, sorted
  std::vector<std::string> spf_domains;   // lower case, sorted
  int64_t reports = 0;     // reports naming the source whose range overlaps the period
  int64_t first_seen = 0;  // earliest begin of those reports (Unix seconds)
  int64_t last_seen = 0;   // latest end
};

enum class SourceResult { kAll, kFail, kPass, kFailBoth };
enum class SourceSort { kFailing, kMessages, kLastSeen, kSourceIp };

struct SourceQuery {
  // kFail: sources with some DMARC failure; kPass: none; kFailBoth: some
  // message aligned with neither DKIM nor SPF. policy_evaluated fails DMARC
  // exactly when neither identifier passed aligned (RFC 7489 section 6.6.2),
  // so kFailBoth selects the same sources as kFail.
  SourceResult result = SourceResult::kAll;
  // kFailing: dmarc_fail descending; kMessages: messages descending;
  // kLastSeen: last_seen descending; each then by source_ip. kSourceIp:
  // source_ip ascending (as text).
  SourceSort sort = SourceSort::kFailing;
};

// One record behind a source, with the report it came from.
struct SourceRecordRow {
  int64_t report_pk = 0;
  std::string report_id;  // the reporter's
  std::string org_name;
  std::string domain;
  int64_t begin = 0;
  int64_t end = 0;
  parser::AggregateRecord record;  // reasons left empty
};

// One reporting organisation over a period.
struct ReporterRow {
  std::string reporter_key;
  std::string org_name;  // as its newest report in the period names it
  int64_t reports = 0;
  uint64_t messages = 0;
  uint64_t dmarc_pass = 0;
  int64_t first_seen = 0;
  int64_t last_seen = 0;
};

// One published policy as reporters saw it (RFC 7489 section 7.2.1.1,
// policy_published); absent values are nullopt.
struct PolicyRow {
  std::optional<std::string> p, sp, np, adkim, aspf;
  std::optional<int64_t> pct;
  std::optional<std::string> fo, testing;
  int64_t reports = 0;
  int64_t first_seen = 0;  // earliest begin
  int64_t last_seen = 0;   // latest end
};

// The envelope a report came from, exactly as received.
struct RawEnvelope {
  std::string bytes;
  std::string origin;
  std::string sha256;  // hex, of bytes
};

struct RejectedRow {
  int64_t id = 0;
  int64_t received_at = 0;
  std::string origin;
  std::string name;  // the part inside the envelope
  std::string code;  // ErrorCodeName
  std::string message;
  uint64_t size = 0;
  std::string sha256;  // hex
  bool recovered = false;
};

class Reader {
 public:
  explicit Reader(Database& db);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  Result<std::vector<DomainRow>> Domains();
  // Newest first (begin descending, then id). With `source_ip`, only the
  // reports that hold a record from it.
  Result<Page<ReportRow>> Reports(const TimeFilter& filter, const PageRequest& page,
                                  const std::optional<std::string>& source_ip = std::nullopt);
  // kNotFound when there is no such report. With `records`, only that page
  // of the records (in document order); report.records stays the total.
  Result<ReportDetail> Report(int64_t id, const std::optional<PageRequest>& records = std::nullopt);
  // The envelope behind report `id`; kNotFound when there is no such report
  // or nothing was archived for it. kBadArchive if the stored copy is
  // corrupt.
  Result<RawEnvelope> Raw(int64_t id);

  // From the domain_days roll-up: a summary is the sum of its daily series.
  Result<Figures> Summary(const TimeFilter& filter);
  // One entry per UTC day that has data, oldest first.
  Result<std::vector<DayFigures>> Timeseries(const TimeFilter& filter);

  // From the source_days roll-up, a page of sources in the order asked.
  Result<Page<SourceRow>> Sources(const TimeFilter& filter, const SourceQuery& query,
                                  const PageRequest& page);
  // The records from `source_ip` in reports that overlap the period, newest
  // report first (begin descending, then id), each report's in document order.
  Result<Page<SourceRecordRow>> SourceRecords(const std::string& source_ip,
                                              const TimeFilter& filter, const PageRequest& page);
  // By messages descending, then reporter_key. reports, first_seen and
  // last_seen count the reporter's reports that overlap the period.
  Result<Page<ReporterRow>> Reporters(const TimeFilter& filter, const PageRequest& page);
  // The distinct published policies of `domain`, in order of first
  // appearance (first_seen, then the first report's id).
  Result<Page<PolicyRow>> Policies(const std::string& domain, const PageRequest& page);
  // Newest first.
  Result<Page<RejectedRow>> Rejected(const PageRequest& page);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmarcd::storage
