#include "server/ingest_command.hpp"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "parser/pipeline.hpp"
#include "server/ingest_queue.hpp"
#include "server/inputs.hpp"
#include "server/logging.hpp"
#include "storage/failure_store.hpp"

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
  // Read in one piece of the file's size where it has one, rather than
  // grown by doubling, which held up to twice the file in memory.
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  std::string bytes;
  if (!ec && size > 0) {
    bytes.resize(size);
    file.read(bytes.data(), static_cast<std::streamsize>(size));
    bytes.resize(static_cast<size_t>(file.gcount()));
  }
  // Whatever the size did not say (a file that grew, or a pipe).
  if (!file.eof()) {
    bytes.append(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
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

// Inputs above this size that are a bare gzip or XML payload are read as a
// stream (storage::Writer::IngestSource) rather than whole, so a report of
// a gigabyte ingests in the memory of a small one. 1 MiB: the gzip of the
// 150,000-record report of bench/ingest_bench.sh (2.9 MB) read whole held
// 4 MiB more at the peak and was no faster (issue #7).
constexpr uint64_t kStreamBytes = uint64_t{1} << 20;

// A large file holding a bare gzip or XML payload, opened for streaming;
// nullopt for anything else (it is read whole).
std::optional<std::unique_ptr<FileSource>> OpenLarge(const std::string& path) {
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

// One input as Lookahead made it ready.
struct PreparedInput {
  bool large = false;                        // OpenLarge's kind: left to the writer to stream
  Result<std::string> read = std::string();  // an error when it could not be read
  std::vector<parser::Envelope> envelopes;
  // One per envelope: what the writer needs of it worked out ahead, when it
  // could be (storage::PrepareEnvelope).
  std::vector<std::optional<storage::PreparedEnvelope>> prepared;
  uint64_t size = 0;
  uint64_t weight = 0;  // its memory, roughly: Lookahead's measure
};

// Reads and prepares the inputs a few ahead of the writer, on a thread of
// its own (storage::PrepareEnvelope: parsed, hashed, the archive copy
// compressed), so that this work overlaps storing the envelope before, and
// frees what the writer is done with (issue #7). The parsing libraries are
// never used by two threads at once: whoever parses holds ParseMutex(), the
// writer's thread included when it parses an input itself (a large one, a
// retry, one that could not be prepared).
class Lookahead {
 public:
  Lookahead(const std::vector<std::string>& paths, const parser::Limits& limits)
      : paths_(paths), limits_(limits), thread_([this] { Run(); }) {}

  ~Lookahead() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  Lookahead(const Lookahead&) = delete;
  Lookahead& operator=(const Lookahead&) = delete;

  // Hands back an input the writer is done with, to be freed on the
  // look-ahead's thread rather than the writer's.
  void Recycle(PreparedInput input) {
    std::lock_guard lock(mutex_);
    done_.push_back(std::move(input));
  }

  // The next input, in the order of the paths.
  PreparedInput Next() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !ready_.empty(); });
    PreparedInput input = std::move(ready_.front());
    ready_.pop_front();
    ready_bytes_ -= input.weight;
    changed_.notify_all();
    return input;
  }

  std::mutex& ParseMutex() { return parse_mutex_; }

 private:
  // Enough to keep the writer fed after a group commit, during which the
  // look-ahead goes on preparing (4 left the writer waiting 0.04 s of 0.5 on
  // bench/ingest_bench.sh's .xml.gz set), few enough to keep the memory
  // small: at most kAhead inputs of at most kAheadBytes together, counting
  // each recorded record as kRecordedRecordBytes (issue #7).
  static constexpr size_t kAhead = 32;
  static constexpr uint64_t kAheadBytes = uint64_t{16} << 20;
  static constexpr uint64_t kRecordedRecordBytes = 512;
  // Envelopes larger than this, or reports of more records, are parsed by
  // the writer's thread: their recording would cost more memory than the
  // overlap is worth.
  static constexpr uint64_t kRecordBytes = uint64_t{256} << 10;
  static constexpr size_t kRecordRecords = 5000;

  void Run() {
    std::vector<PreparedInput> done;
    for (const std::string& path : paths_) {
      PreparedInput input = Prepare(path);
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] {
        return stop_ || ready_.empty() || (ready_.size() < kAhead && ready_bytes_ < kAheadBytes);
      });
      if (stop_) return;
      ready_bytes_ += input.weight;
      ready_.push_back(std::move(input));
      done.swap(done_);
      changed_.notify_all();
      lock.unlock();
      done.clear();
    }
  }

  PreparedInput Prepare(const std::string& path) {
    PreparedInput input;
    if (OpenLarge(path)) {
      input.large = true;
      return input;
    }
    input.read = ReadInput(path);
    if (!input.read) return input;
    input.size = input.read->size();
    input.weight = input.size;
    input.envelopes = EnvelopesOf(path, std::move(*input.read));
    input.prepared.resize(input.envelopes.size());
    for (size_t i = 0; i < input.envelopes.size(); ++i) {
      const parser::Envelope& envelope = input.envelopes[i];
      if (envelope.bytes.size() > kRecordBytes) continue;
      std::lock_guard parsing(parse_mutex_);
      input.prepared[i] = storage::PrepareEnvelope(envelope, limits_, kRecordRecords);
      if (input.prepared[i] && input.prepared[i]->recorded.document) {
        const size_t records = input.prepared[i]->recorded.document->records.size();
        input.weight += records * kRecordedRecordBytes;
      }
    }
    return input;
  }

  const std::vector<std::string>& paths_;
  const parser::Limits limits_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<PreparedInput> ready_;
  uint64_t ready_bytes_ = 0;         // the weight of ready_
  std::vector<PreparedInput> done_;  // Recycle's, freed by Run
  bool stop_ = false;
  std::mutex parse_mutex_;
  std::thread thread_;  // last: it starts once the rest is made
};

// Stores the inputs with group commit (storage::Writer::BeginBatch): many
// files share one transaction, which is most of the speed of a bulk import
// (issue #7). Nothing is counted or printed for an input before the commit
// that holds it succeeded, so the summary and the exit status never claim
// what a later fault undid; when a group commit fails, its inputs are read
// again and stored one transaction each, with retries.
class BatchIngest {
 public:
  BatchIngest(storage::Writer& writer, std::mutex& parse_mutex, Totals& totals, bool verbose,
              std::ostream& out, std::ostream& err)
      : writer_(writer),
        parse_mutex_(parse_mutex),
        totals_(totals),
        verbose_(verbose),
        out_(out),
        err_(err) {}

  ~BatchIngest() { writer_.AbandonBatch(); }
  BatchIngest(const BatchIngest&) = delete;
  BatchIngest& operator=(const BatchIngest&) = delete;

  // Stores `input`, which stays the caller's: it may be freed elsewhere.
  void Add(const std::string& path, PreparedInput& input) {
    if (input.large) {
      if (auto source = OpenLarge(path)) {
        std::lock_guard parsing(parse_mutex_);
        Begin();
        pending_.push_back({(*source)->Origin(), IngestStreamed(writer_, **source)});
        AddedInBatch(path, (*source)->Size());
        return;
      }
      // No longer large: read whole, as anything else.
      input.read = ReadInput(path);
      if (input.read) {
        input.size = input.read->size();
        input.envelopes = EnvelopesOf(path, std::move(*input.read));
      }
    }
    if (!input.read) {
      err_ << "dmarcd ingest: " << input.read.error().ToString() << "\n";
      ++totals_.unstored;
      return;
    }
    input.prepared.resize(input.envelopes.size());
    // stdin cannot be read twice, so it is never part of a batch that might
    // have to be stored again.
    if (path == "-" || !Begin()) {
      for (size_t i = 0; i < input.envelopes.size(); ++i) {
        Account(input.envelopes[i].origin, Store(input.envelopes[i], input.prepared[i]));
      }
      return;
    }
    for (size_t i = 0; i < input.envelopes.size(); ++i) {
      // Logged as it is stored, like any envelope; counted and printed only
      // once the batch committed.
      pending_.push_back({input.envelopes[i].origin, Store(input.envelopes[i], input.prepared[i])});
    }
    AddedInBatch(path, input.size);
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
          std::lock_guard parsing(parse_mutex_);
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

  // IngestWithRetry, from the envelope's preparation when there is one,
  // else parsing it here.
  Result<storage::EnvelopeOutcome> Store(const parser::Envelope& envelope,
                                         const std::optional<storage::PreparedEnvelope>& prepared) {
    if (prepared) return IngestWithRetry(writer_, envelope, {}, &*prepared);
    std::lock_guard parsing(parse_mutex_);
    return IngestWithRetry(writer_, envelope);
  }

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

  void StoreAlone(const std::vector<parser::Envelope>& envelopes) {
    for (const parser::Envelope& envelope : envelopes) {
      Account(envelope.origin, Store(envelope, std::nullopt));
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
  std::mutex& parse_mutex_;
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
  Lookahead lookahead(*inputs, config.limits);
  BatchIngest batch(writer, lookahead.ParseMutex(), totals, options.verbose, out, err);
  for (const std::string& path : *inputs) {
    ++totals.files;
    if (progress) {
      std::fprintf(stderr, "\ringest: %llu/%zu", static_cast<unsigned long long>(totals.files),
                   inputs->size());
    }
    PreparedInput input = lookahead.Next();
    batch.Add(path, input);
    lookahead.Recycle(std::move(input));
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
