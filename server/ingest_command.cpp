#include "server/ingest_command.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "parser/pipeline.hpp"
#include "server/ingest_queue.hpp"
#include "server/inputs.hpp"
#include "server/logging.hpp"

namespace dmarcd::server {
namespace {

constexpr size_t kProgressThreshold = 20;

struct Totals {
  uint64_t files = 0;
  uint64_t envelopes = 0;
  uint64_t stored = 0;
  uint64_t duplicate = 0;
  uint64_t rejected = 0;
  uint64_t records = 0;
  uint64_t unstored = 0;
};

Result<std::string> ReadInput(const std::string& path) {
  if (path == "-") {
    std::ostringstream buffer;
    buffer << std::cin.rdbuf();
    if (std::cin.bad()) return MakeError(ErrorCode::kIo, "cannot read stdin");
    return buffer.str();
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return MakeError(ErrorCode::kIo, "cannot open " + path);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) return MakeError(ErrorCode::kIo, "cannot read " + path);
  return bytes;
}

void Count(const storage::EnvelopeOutcome& outcome, Totals& totals) {
  totals.stored += outcome.Count(storage::PartStatus::kStored);
  totals.duplicate += outcome.Count(storage::PartStatus::kDuplicate);
  totals.rejected += outcome.Count(storage::PartStatus::kRejected);
  totals.records += outcome.Records();
}

void PrintParts(const std::string& origin, const storage::EnvelopeOutcome& outcome,
                std::ostream& out) {
  for (const storage::PartOutcome& part : outcome.parts) {
    out << "origin=" << origin << " part=\"" << part.name
        << "\" outcome=" << storage::PartStatusName(part.status);
    if (part.error) {
      out << " reason=\"" << part.error->ToString() << "\"";
    } else if (part.failure) {
      out << " failure_report=" << part.report_pk << " domain=" << part.domain;
    } else {
      out << " report_id=\"" << part.report_id << "\" domain=" << part.domain
          << " records=" << part.records << " messages=" << part.messages;
    }
    out << "\n";
  }
}

std::vector<parser::Envelope> EnvelopesOf(const std::string& path, std::string bytes) {
  const std::string origin = path == "-" ? "stdin" : "file:" + path;
  std::vector<parser::Envelope> envelopes;
  if (IsMbox(bytes)) {
    std::vector<std::string> messages = SplitMbox(bytes);
    for (size_t i = 0; i < messages.size(); ++i) {
      envelopes.push_back({std::move(messages[i]), origin + "#" + std::to_string(i + 1)});
    }
  } else {
    envelopes.push_back({std::move(bytes), origin});
  }
  return envelopes;
}

// Writer::IngestSource with the log line IngestWithRetry writes for an
// envelope in memory (without retries: a streamed input is large, and the
// batch holds the write lock).
Result<storage::EnvelopeOutcome> IngestStreamed(storage::Writer& writer, FileSource& source) {
  auto outcome = writer.IngestSource(source);
  auto log = Log("storage");
  if (!outcome) {
    log->error("origin={} outcome=deferred streamed=true error=\"{}\"", source.Origin(),
               outcome.error().ToString());
    return outcome;
  }
  const bool rejected = outcome->Count(storage::PartStatus::kRejected) > 0;
  log->log(rejected ? spdlog::level::warn : spdlog::level::info,
           "origin={} outcome={} reports={} records={} streamed=true", source.Origin(),
           storage::PartStatusName(outcome->Overall()),
           outcome->Count(storage::PartStatus::kStored), outcome->Records());
  return outcome;
}

// Stores the inputs with group commit (storage::Writer::BeginBatch): many
// files share one transaction, which is most of the speed of a bulk import
// (issue #7). Nothing is counted or printed for an input before the commit
// that holds it succeeded, so the summary and the exit status never claim
// what a later fault undid; when a group commit fails, its inputs are read
// again and stored one transaction each, with retries.
class BatchIngest {
 public:
  BatchIngest(storage::Writer& writer, Totals& totals, bool verbose, std::ostream& out,
              std::ostream& err)
      : writer_(writer), totals_(totals), verbose_(verbose), out_(out), err_(err) {}

  ~BatchIngest() { writer_.AbandonBatch(); }
  BatchIngest(const BatchIngest&) = delete;
  BatchIngest& operator=(const BatchIngest&) = delete;

  void Add(const std::string& path) {
    if (auto source = OpenLarge(path)) {
      Begin();
      pending_.push_back({(*source)->Origin(), IngestStreamed(writer_, **source)});
      AddedInBatch(path, (*source)->Size());
      return;
    }
    auto bytes = ReadInput(path);
    if (!bytes) {
      err_ << "dmarcd ingest: " << bytes.error().ToString() << "\n";
      ++totals_.unstored;
      return;
    }
    // stdin cannot be read twice, so it is never part of a batch that might
    // have to be stored again.
    if (path == "-" || !Begin()) {
      StoreAlone(EnvelopesOf(path, std::move(*bytes)));
      return;
    }
    const uint64_t size = bytes->size();
    for (const parser::Envelope& envelope : EnvelopesOf(path, std::move(*bytes))) {
      // Logged as it is parsed, like any envelope; counted and printed only
      // once the batch committed.
      pending_.push_back({envelope.origin, IngestWithRetry(writer_, envelope)});
    }
    AddedInBatch(path, size);
  }

  void Flush() {
    if (!open_) return;
    open_ = false;
    auto committed = writer_.CommitBatch();
    if (committed) {
      for (const auto& [origin, outcome] : pending_) {
        Account(origin, outcome);
      }
    } else {
      err_ << "dmarcd ingest: a group commit failed (" << committed.error().ToString()
           << "); storing its " << paths_.size() << " input(s) one by one\n";
      for (const std::string& path : paths_) {
        if (auto source = OpenLarge(path)) {
          Account((*source)->Origin(), IngestStreamed(writer_, **source));
          continue;
        }
        auto bytes = ReadInput(path);
        if (!bytes) {
          err_ << "dmarcd ingest: " << bytes.error().ToString() << "\n";
          ++totals_.unstored;
          continue;
        }
        StoreAlone(EnvelopesOf(path, std::move(*bytes)));
      }
    }
    pending_.clear();
    paths_.clear();
    pending_bytes_ = 0;
  }

 private:
  // Enough to make the commit cost small beside the inserts, few enough
  // that an interrupted import loses little work and the WAL stays small.
  static constexpr size_t kBatchEnvelopes = 512;
  static constexpr uint64_t kBatchBytes = uint64_t{32} << 20;

  // Inputs above this size that are a bare gzip or XML payload are read
  // as a stream (storage::Writer::IngestSource) rather than whole, so a
  // report of a gigabyte ingests in the memory of a small one.
  static constexpr uint64_t kStreamBytes = uint64_t{4} << 20;

  struct Pending {
    std::string origin;
    Result<storage::EnvelopeOutcome> outcome;
  };

  // Opens the batch unless it is open; false when the write lock cannot be
  // had, and then the input is stored on its own, with retries.
  bool Begin() {
    if (!open_) open_ = writer_.BeginBatch().has_value();
    return open_;
  }

  void AddedInBatch(const std::string& path, uint64_t bytes) {
    if (!open_) {
      // Stored on its own (IngestSource without a batch): already final.
      Account(pending_.back().origin, pending_.back().outcome);
      pending_.clear();
      return;
    }
    paths_.push_back(path);
    pending_bytes_ += bytes;
    if (pending_.size() >= kBatchEnvelopes || pending_bytes_ >= kBatchBytes) Flush();
  }

  // A large file holding a bare gzip or XML payload, opened for streaming;
  // nullopt for anything else (it is read whole).
  static std::optional<std::unique_ptr<FileSource>> OpenLarge(const std::string& path) {
    std::error_code ec;
    if (path == "-" || std::filesystem::file_size(path, ec) < kStreamBytes || ec) {
      return std::nullopt;
    }
    auto source = FileSource::Open(path, "file:" + path);
    if (!source) return std::nullopt;
    std::string head(512, '\0');
    auto read = (*source)->Read(head);
    if (!read) return std::nullopt;
    head.resize(*read);
    const parser::PayloadKind kind = parser::SniffPayload(head);
    if (kind != parser::PayloadKind::kGzip && kind != parser::PayloadKind::kXml) {
      return std::nullopt;
    }
    return std::move(*source);
  }

  void StoreAlone(const std::vector<parser::Envelope>& envelopes) {
    for (const parser::Envelope& envelope : envelopes) {
      Account(envelope.origin, IngestWithRetry(writer_, envelope));
    }
  }

  void Account(const std::string& origin, const Result<storage::EnvelopeOutcome>& outcome) {
    ++totals_.envelopes;
    if (!outcome) {
      err_ << "dmarcd ingest: " << origin << ": not stored: " << outcome.error().ToString() << "\n";
      ++totals_.unstored;
      return;
    }
    Count(*outcome, totals_);
    if (verbose_) PrintParts(origin, *outcome, out_);
  }

  storage::Writer& writer_;
  Totals& totals_;
  bool verbose_;
  std::ostream& out_;
  std::ostream& err_;
  bool open_ = false;
  std::vector<std::string> paths_;
  std::vector<Pending> pending_;
  uint64_t pending_bytes_ = 0;
};

}  // namespace

IngestExit RunIngest(const Config& config, const IngestOptions& options, std::ostream& out,
                     std::ostream& err) {
  const auto start = std::chrono::steady_clock::now();
  auto inputs = CollectInputs(options.paths);
  if (!inputs) {
    err << "dmarcd ingest: " << inputs.error().message << "\n";
    return IngestExit::kUsage;
  }

  storage::OpenOptions open_options;
  open_options.busy_timeout_ms = config.database.busy_timeout;
  open_options.max_size_bytes = config.database.max_size;
  auto db = storage::Database::Open(config.database.path, open_options);
  if (!db) {
    err << "dmarcd ingest: " << config.database.path << ": " << db.error().ToString() << "\n";
    return IsTransient(db.error().code) ? IngestExit::kUnstored : IngestExit::kUsage;
  }
  storage::Writer writer(**db, config.limits);
  writer.SetFailurePrivacy(FailurePrivacyOf(config));

  Totals totals;
  const bool progress = isatty(STDERR_FILENO) == 1 && inputs->size() > kProgressThreshold;
  BatchIngest batch(writer, totals, options.verbose, out, err);
  for (const std::string& path : *inputs) {
    ++totals.files;
    if (progress) {
      std::fprintf(stderr, "\ringest: %llu/%zu", static_cast<unsigned long long>(totals.files),
                   inputs->size());
    }
    batch.Add(path);
  }
  batch.Flush();
  if (progress) std::fprintf(stderr, "\n");

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char line[256];
  std::snprintf(line, sizeof line,
                "ingest: files=%llu envelopes=%llu stored=%llu duplicate=%llu rejected=%llu "
                "records=%llu seconds=%.2f\n",
                static_cast<unsigned long long>(totals.files),
                static_cast<unsigned long long>(totals.envelopes),
                static_cast<unsigned long long>(totals.stored),
                static_cast<unsigned long long>(totals.duplicate),
                static_cast<unsigned long long>(totals.rejected),
                static_cast<unsigned long long>(totals.records), seconds);
  out << line << std::flush;

  if (totals.unstored > 0) {
    err << "dmarcd ingest: " << totals.unstored << " input(s) not stored; run again later\n";
    return IngestExit::kUnstored;
  }
  return totals.rejected > 0 ? IngestExit::kRejected : IngestExit::kOk;
}

}  // namespace dmarcd::server
