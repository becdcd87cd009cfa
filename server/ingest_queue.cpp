#include "server/ingest_queue.hpp"

#include <exception>

#include "server/logging.hpp"

namespace dmarcd::server {

Result<storage::EnvelopeOutcome> IngestWithRetry(storage::Writer& writer,
                                                 const parser::Envelope& envelope,
                                                 const RetryPolicy& retry) {
  static std::atomic<uint64_t> next_envelope{1};
  const uint64_t envelope_no = next_envelope++;
  auto log = Log("storage");
  auto delay = retry.first_delay;
  const auto start = std::chrono::steady_clock::now();

  for (int attempt = 1;; ++attempt) {
    Result<storage::EnvelopeOutcome> outcome = writer.Ingest(envelope);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    if (outcome) {
      log->info("envelope={} origin={} outcome={} reports={} records={} ms={}", envelope_no,
                envelope.origin, storage::PartStatusName(outcome->Overall()),
                outcome->Count(storage::PartStatus::kStored), outcome->Records(), ms);
      return outcome;
    }

    // Writer::Ingest only fails for faults of the environment; anything
    // else would be a bug in it, and retrying would not help.
    if (!IsTransient(outcome.error().code) || attempt >= retry.attempts) {
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

IngestQueue::IngestQueue(std::unique_ptr<storage::Database> db, const parser::Limits& limits,
                         RetryPolicy retry)
    : db_(std::move(db)),
      writer_(std::make_unique<storage::Writer>(*db_, limits)),
      retry_(retry),
      thread_([this] { Run(); }) {}

IngestQueue::~IngestQueue() { Stop(); }

void IngestQueue::Submit(parser::Envelope envelope, Callback done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      items_.push_back(Item{std::move(envelope), std::move(done)});
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

void IngestQueue::Run() {
  for (;;) {
    Item item;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !items_.empty(); });
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
    item.done(std::move(outcome));
  }
}

}  // namespace dmarcd::server
