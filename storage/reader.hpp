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
  // Newest first (begin descending, then id).
  Result<Page<ReportRow>> Reports(const TimeFilter& filter, const PageRequest& page);
  // kNotFound when there is no such report.
  Result<ReportDetail> Report(int64_t id);
  Result<Figures> Summary(const TimeFilter& filter);
  // One entry per UTC day that has data, oldest first.
  Result<std::vector<DayFigures>> Timeseries(const TimeFilter& filter);
  // Newest first.
  Result<Page<RejectedRow>> Rejected(const PageRequest& page);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmarcd::storage
