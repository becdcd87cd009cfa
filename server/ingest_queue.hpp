// The one writer of a running server: every channel hands its envelopes to
// this queue, and one thread, which owns the only storage::Writer (and its
// read-write connection), stores them in arrival order.
//
// Thread safety: Submit may be called from any thread. Callbacks run on the
// writer thread, one at a time: they must be quick and must not call Submit
// and wait for it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "parser/envelope.hpp"
#include "parser/error.hpp"
#include "parser/limits.hpp"
#include "server/config.hpp"
#include "storage/database.hpp"
#include "storage/failure_store.hpp"
#include "storage/writer.hpp"

namespace dmarcd::server {

// How often and how patiently a busy database (kDatabaseBusy: another
// process holds the write lock) is tried again before it is reported. Other
// transient faults (a full disk, an I/O error) are reported at once: they
// do not clear within a second, and the channel defers the envelope.
struct RetryPolicy {
  int attempts = 4;
  std::chrono::milliseconds first_delay{100};  // doubled after each attempt
};

// Writer::Ingest with retries of transient errors; logs one line per
// envelope (outcome, counts, duration) on the "storage" logger: info, or
// warn with the reason of each rejected part when any part was rejected.
// `prepared`, when given, is handed to Writer::Ingest.
Result<storage::EnvelopeOutcome> IngestWithRetry(
    storage::Writer& writer, const parser::Envelope& envelope, const RetryPolicy& retry = {},
    const storage::PreparedEnvelope* prepared = nullptr);

// What the writer thread does about failure reports besides storing them.
struct FailureSettings {
  storage::FailurePrivacy privacy;  // given to the Writer
  // Failure reports received more than this many seconds ago are deleted
  // (storage::DeleteFailureReportsBefore) when the writer thread starts and
  // every 24 hours after, between envelopes; nullopt keeps them.
  std::optional<int64_t> retention_seconds;
};

// [privacy] and [retention] of a validated configuration.
FailureSettings FailureSettingsOf(const Config& config);

class Metrics;

class IngestQueue {
 public:
  using Callback = std::function<void(Result<storage::EnvelopeOutcome>)>;

  // Takes the read-write connection and starts the writer thread. Every
  // outcome is counted in `metrics` when given (it must outlive the queue).
  IngestQueue(std::unique_ptr<storage::Database> db, const parser::Limits& limits,
              RetryPolicy retry = {}, FailureSettings failure = {}, Metrics* metrics = nullptr);
  // Stops (see Stop).
  ~IngestQueue();
  IngestQueue(const IngestQueue&) = delete;
  IngestQueue& operator=(const IngestQueue&) = delete;

  // Queues an envelope; `done` is called once with its outcome, or with
  // kInternal ("shutting down") when submitted after Stop.
  void Submit(parser::Envelope envelope, Callback done);

  // Refuses new envelopes, stores everything already queued, joins the
  // writer thread and closes the connection. Idempotent.
  void Stop();

  // Why the last envelope could not be committed (a busy, full or failing
  // database, after the retries), or nullopt when it was committed or none
  // was tried yet. The writer is not stuck in that state: the next envelope
  // is tried afresh, and its commit clears the fault. Thread-safe.
  std::optional<Error> WriterFault() const;

 private:
  struct Item {
    parser::Envelope envelope;
    Callback done;
    std::chrono::steady_clock::time_point submitted;
  };

  void Run();
  void DeleteOldFailureReports();

  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<storage::Writer> writer_;
  RetryPolicy retry_;
  FailureSettings failure_;
  Metrics* metrics_;
  mutable std::mutex mutex_;
  std::optional<Error> writer_fault_;
  std::condition_variable wake_;
  std::deque<Item> items_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dmarcd::server
