// Polls one IMAP account: every message of its mailbox goes through the
// ingest pipeline like a file would, and only after its outcome is
// committed is it moved to the archive folder for that outcome (or deleted,
// or remembered by UID). Nothing is lost: a message whose envelope could
// not be committed stays where it is and is fetched again next time; a
// message committed but not yet moved (the process died, the move failed)
// is fetched again, recognised as a duplicate and moved then.
//
// Folders, below ImapAccount::archive ("Archive"):
//   Aggregate  a report was stored, or was already there
//   Failure    a failure (forensic) report, stored or already there (or
//              rejected as kUnsupported by a dmarcd that cannot read it)
//   Invalid    input that is itself bad (kept in the rejected table)
// A transient fault (network, a busy database) never sends anything to
// Invalid.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "parser/envelope.hpp"
#include "parser/error.hpp"
#include "server/imap_account.hpp"
#include "server/imap_client.hpp"
#include "storage/database.hpp"
#include "storage/writer.hpp"

namespace dmarcd::server {

enum class ArchiveFolder { kAggregate, kFailure, kInvalid };

std::string_view ArchiveFolderName(ArchiveFolder folder);  // "Aggregate", "Failure", "Invalid"

// The folder for a committed outcome: Aggregate when an aggregate report
// was stored or was a duplicate, else Failure when a failure report was
// (or was rejected as kUnsupported), else Invalid. A duplicate lands where
// its original did, because the same bytes give the same outcome.
ArchiveFolder FolderFor(const storage::EnvelopeOutcome& outcome);

// The imap_state table (migrations/0002_imap_state.sql) on a connection of
// its own. Not thread-safe: one per poller thread.
class ImapStateStore {
 public:
  struct State {
    uint32_t uidvalidity = 0;
    uint32_t last_uid = 0;
  };

  // Opens a read-write connection to an existing, migrated database.
  static Result<std::unique_ptr<ImapStateStore>> Open(const std::string& path, int busy_timeout_ms);

  Result<std::optional<State>> Load(const std::string& account, const std::string& mailbox);
  Result<void> Save(const std::string& account, const std::string& mailbox, const State& state);

 private:
  explicit ImapStateStore(std::unique_ptr<storage::Database> db) : db_(std::move(db)) {}
  std::unique_ptr<storage::Database> db_;
};

// Stores one envelope and returns its committed outcome; an error means
// nothing was committed and the message must stay (IngestWithRetry's
// contract).
using IngestFunction = std::function<Result<storage::EnvelopeOutcome>(parser::Envelope)>;

struct PollStats {
  uint64_t seen = 0;       // messages fetched or tried
  uint64_t stored = 0;     // messages with at least one report stored
  uint64_t duplicate = 0;  // messages whose reports were all there already
  uint64_t rejected = 0;   // messages without a report (Failure or Invalid)
  uint64_t deferred = 0;   // messages left for the next poll
  double seconds = 0;
  // Why the poll ended early or left messages behind (login, TLS, a
  // missing mailbox, the network, the database); empty when it did not.
  std::optional<Error> error;
};

class ImapPoller {
 public:
  // `ingest` and `state` must outlive the poller.
  ImapPoller(const ImapAccount& account, IngestFunction ingest, ImapStateStore& state);

  // One pass over the mailbox; logs one summary line on the "imap" logger.
  PollStats Poll();

  // Makes a Poll in progress on another thread end soon (thread-safe).
  void Stop() { client_.Stop(); }

 private:
  Result<void> EnsureFolders();
  std::string FolderPath(ArchiveFolder folder) const;
  Result<void> Dispose(const std::map<ArchiveFolder, std::vector<uint32_t>>& handled);

  const ImapAccount& account_;
  IngestFunction ingest_;
  ImapStateStore& state_;
  ImapClient client_;
  std::optional<char> delimiter_;
  bool folders_ready_ = false;
};

// What /healthz says about the accounts. Thread-safe.
class ImapHealth {
 public:
  struct Account {
    std::string name;
    bool ok = true;  // the last poll reached the server and left nothing behind
    std::optional<int64_t> last_good_poll;  // Unix seconds UTC
    std::string error;                      // the last poll's error, when !ok
    uint64_t polls = 0;                     // polls recorded since start
    uint64_t failed_polls = 0;              // of those, the ones that were not ok
  };

  void Record(const std::string& name, const PollStats& stats);
  std::vector<Account> Snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Account> accounts_;
};

// One thread per account polling every ImapAccount::interval; after a poll
// that failed or left messages behind, the next comes sooner at first and
// then with exponential back-off (30 s, 1 min, 2 min, ... up to the
// larger of the interval and one hour).
class ImapService {
 public:
  // `ingest` is called from the poller threads and must be thread-safe;
  // it and `health` must outlive the service.
  ImapService(std::vector<ImapAccount> accounts, IngestFunction ingest, std::string database_path,
              int busy_timeout_ms, ImapHealth* health);
  ~ImapService();
  ImapService(const ImapService&) = delete;
  ImapService& operator=(const ImapService&) = delete;

  void Start();
  // Ends a poll in progress quickly and joins the threads. Idempotent.
  void Stop();

 private:
  void Run(const ImapAccount& account);

  std::vector<ImapAccount> accounts_;
  IngestFunction ingest_;
  std::string database_path_;
  int busy_timeout_ms_;
  ImapHealth* health_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<ImapPoller*> running_;
  std::vector<std::thread> threads_;
};

// The delay before the next poll after `failures` failed polls in a row.
std::chrono::seconds NextPollDelay(std::chrono::seconds interval, int failures);

}  // namespace dmarcd::server
