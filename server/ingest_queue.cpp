#include "server/ingest_queue.hpp"

#include <ctime>
#include <exception>
#include <string>

#include "server/logging.hpp"
#include "server/metrics.hpp"

namespace dmarcd::server {
namespace {

// Keeps a reason on its one log line and inside its quotes: the message
// may quote the input it refused.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n' || ch == '\r' || ch == '\t') {
      out += ' ';
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

// Why the envelope's parts were rejected, to append to its log line:
// ` reason="..."` for one part, ` reasons="...; ..."` for several, nothing
// when no part was rejected.
std::string RejectionReasons(const storage::EnvelopeOutcome& outcome) {
  std::string joined;
  int rejected = 0;
  for (const storage::PartOutcome& part : outcome.parts) {
    if (part.status != storage::PartStatus::kRejected) continue;
    if (rejected++ > 0) joined += "; ";
    joined += part.error ? part.error->ToString() : std::string("unknown");
  }
  if (rejected == 0) return "";
  return (rejected == 1 ? " reason=" : " reasons=") + Quote(joined);
}

}  // namespace

Result<storage::EnvelopeOutcome> IngestWithRetry(storage::Writer& writer,
                                                 const parser::Envelope& envelope,
                                                 const RetryPolicy& retry,
                                                 const storage::PreparedEnvelope* prepared) {
  static std::atomic<uint64_t> next_envelope{1};
  const uint64_t envelope_no = next_envelope++;
  auto log = Log("storage");
  auto delay = retry.first_delay;
  const auto start = std::chrono::steady_clock::now();

  for (int attempt = 1;; ++attempt) {
    Result<storage::EnvelopeOutcome> outcome = writer.Ingest(envelope, prepared);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    if (outcome) {
      // Rejected input is a warning (the service goes on, but someone may
      // want to look), and the line says why.
      const std::string reasons = RejectionReasons(*outcome);
      const bool rejected =
          !reasons.empty() || outcome->Overall() == storage::PartStatus::kRejected;
      log->log(rejected ? spdlog::level::warn : spdlog::level::info,
               "envelope={} origin={} outcome={} reports={} records={} ms={}{}", envelope_no,
               envelope.origin, storage::PartStatusName(outcome->Overall()),
               outcome->Count(storage::PartStatus::kStored), outcome->Records(), ms, reasons);
      return outcome;
    }

    // Writer::Ingest only fails for faults of the environment, and of those
    // only a lock held by another writer ends by itself within the retries.
    if (outcome.error().code != ErrorCode::kDatabaseBusy || attempt >= retry.attempts) {
      log->error("envelope={} origin={} outcome=deferred attempts={} error=\"{}\" ms={}",
                 envelope_no, envelope.origin, attempt, outcome.error().ToString(), ms);
      return outcome;
    }
    log->warn("envelope={} origin={} retry={} error=\"{}\"", envelope_no, envelope.origin, attempt,
              outcome.error().ToString());
    std::this_thread::sleep_for(delay);
    delay *= 2;
  }
}

FailureSettings FailureSettingsOf(const Config& config) {
  FailureSettings settings;
  settings.privacy = FailurePrivacyOf(config);
  settings.retention_seconds =
      storage::ParseRetention(config.retention.failure_retention).value_or(std::nullopt);
  return settings;
}

IngestQueue::IngestQueue(std::unique_ptr<storage::Database> db, const parser::Limits& limits,
                         RetryPolicy retry, FailureSettings failure, Metrics* metrics)
    : db_(std::move(db)),
      writer_(std::make_unique<storage::Writer>(*db_, limits)),
      retry_(retry),
      failure_(failure),
      metrics_(metrics),
      thread_([this] { Run(); }) {}

IngestQueue::~IngestQueue() { Stop(); }

void IngestQueue::Submit(parser::Envelope envelope, Callback done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      items_.push_back(
          Item{std::move(envelope), std::move(done), std::chrono::steady_clock::now()});
      wake_.notify_one();
      return;
    }
  }
  done(MakeError(ErrorCode::kInternal, "the server is shutting down"));
}

void IngestQueue::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  writer_.reset();
  db_.reset();
}

// Retention runs on this thread, between envelopes, because it writes and
// this thread owns the only write connection.
void IngestQueue::DeleteOldFailureReports() {
  const int64_t cutoff = static_cast<int64_t>(std::time(nullptr)) - *failure_.retention_seconds;
  auto deleted = storage::DeleteFailureReportsBefore(*db_, cutoff);
  if (!deleted) {
    Log("storage")->warn("retention=failure_reports error=\"{}\"", deleted.error().ToString());
    return;
  }
  Log("storage")->info("retention=failure_reports deleted={}", *deleted);
}

void IngestQueue::Run() {
  constexpr auto kRetentionPeriod = std::chrono::hours(24);
  writer_->SetFailurePrivacy(failure_.privacy);
  auto next_retention = std::chrono::steady_clock::now();
  for (;;) {
    if (failure_.retention_seconds && std::chrono::steady_clock::now() >= next_retention) {
      DeleteOldFailureReports();
      next_retention = std::chrono::steady_clock::now() + kRetentionPeriod;
    }
    Item item;
    {
      std::unique_lock lock(mutex_);
      auto ready = [this] { return stopping_ || !items_.empty(); };
      if (!failure_.retention_seconds) {
        wake_.wait(lock, ready);
      } else if (!wake_.wait_until(lock, next_retention, ready)) {
        continue;  // time for retention
      }
      // Drain before stopping: every queued envelope was promised an answer.
      if (items_.empty()) return;
      item = std::move(items_.front());
      items_.pop_front();
    }

    Result<storage::EnvelopeOutcome> outcome;
    try {
      outcome = IngestWithRetry(*writer_, item.envelope, retry_);
    } catch (const std::exception& e) {
      Log("storage")->error("origin={} outcome=failed exception=\"{}\"", item.envelope.origin,
                            e.what());
      outcome = MakeError(ErrorCode::kInternal, e.what());
    }
    {
      std::lock_guard lock(mutex_);
      writer_fault_ = outcome ? std::nullopt : std::optional<Error>(outcome.error());
    }
    if (metrics_ != nullptr) {
      metrics_->RecordEnvelope(item.envelope.origin, outcome,
                               std::chrono::steady_clock::now() - item.submitted);
    }
    item.done(std::move(outcome));
  }
}

std::optional<Error> IngestQueue::WriterFault() const {
  std::lock_guard lock(mutex_);
  return writer_fault_;
}

}  // namespace dmarcd::server
