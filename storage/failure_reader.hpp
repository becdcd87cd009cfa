// Read queries over failure reports, behind /api/v1/failure-reports and the
// dashboard's failure report view.
//
// Reports are listed by arrival time (Arrival-Date, or when dmarcd received
// the report if the reporter gave none), newest first; [from, to) filters
// that time. Not thread-safe: one FailureReader per read-only connection,
// one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "parser/error.hpp"
#include "parser/failure_model.hpp"
#include "storage/database.hpp"
#include "storage/reader.hpp"

namespace dmarcd::storage {

struct FailureFilter {
  std::optional<std::string> domain;     // lower case
  std::optional<int64_t> from;           // Unix seconds, inclusive
  std::optional<int64_t> to;             // Unix seconds, exclusive
  std::optional<std::string> source_ip;  // canonical text
};

struct FailureRow {
  int64_t id = 0;
  std::string domain;
  int64_t arrived_at = 0;
  int64_t received_at = 0;
  std::string origin;
  std::string sample_kept;  // "full" | "headers" | "none"
  bool local_parts_redacted = false;
  // Every field as stored. In a list, `fields`, `headers` and `body` are
  // left empty: the detail (FailureReader::Get) has them.
  parser::FailureReport report;
};

class FailureReader {
 public:
  // `db` must outlive the reader.
  explicit FailureReader(Database& db) : db_(db) {}

  Result<Page<FailureRow>> List(const FailureFilter& filter, const PageRequest& page);
  // kNotFound when there is no such report.
  Result<FailureRow> Get(int64_t id);

 private:
  Database& db_;
};

}  // namespace dmarcd::storage
