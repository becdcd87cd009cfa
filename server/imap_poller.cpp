#include "server/imap_poller.hpp"

#include <algorithm>
#include <chrono>

#include "server/logging.hpp"
#include "storage/statement.hpp"

namespace dmarcd::server {
namespace {

// What is kept of a message too large to download: its header section, cut
// here, as Postfix's header_size_limit does at 100 KiB.
constexpr uint64_t kMaxKeptHeaderBytes = uint64_t{256} << 10;

constexpr std::array<ArchiveFolder, 3> kFolders = {
    ArchiveFolder::kAggregate, ArchiveFolder::kFailure, ArchiveFolder::kInvalid};

// RFC 5092 section 3 names a message by mailbox, UIDVALIDITY and UID; the
// account name comes first because several accounts may share a mailbox name.
std::string Origin(const ImapAccount& account, uint32_t uidvalidity, uint32_t uid) {
  return "imap:" + account.name + "/" + account.mailbox +
         ";UIDVALIDITY=" + std::to_string(uidvalidity) + "/;UID=" + std::to_string(uid);
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string_view ArchiveFolderName(ArchiveFolder folder) {
  switch (folder) {
    case ArchiveFolder::kAggregate:
      return "Aggregate";
    case ArchiveFolder::kFailure:
      return "Failure";
    case ArchiveFolder::kInvalid:
      return "Invalid";
  }
  return "Invalid";
}

ArchiveFolder FolderFor(const storage::EnvelopeOutcome& outcome) {
  bool failure = false;
  for (const storage::PartOutcome& part : outcome.parts) {
    const bool kept = part.status != storage::PartStatus::kRejected;
    if (kept && !part.failure) return ArchiveFolder::kAggregate;
    // A failure report is stored as one, or, by a dmarcd that cannot read
    // it, rejected as kUnsupported until `dmarcd reparse`.
    if (kept || (part.error && part.error->code == ErrorCode::kUnsupported)) failure = true;
  }
  return failure ? ArchiveFolder::kFailure : ArchiveFolder::kInvalid;
}

Result<std::unique_ptr<ImapStateStore>> ImapStateStore::Open(const std::string& path,
                                                             int busy_timeout_ms) {
  storage::OpenOptions options;
  options.migrate = false;
  options.busy_timeout_ms = busy_timeout_ms;
  auto db = storage::Database::Open(path, options);
  if (!db) return tl::unexpected(db.error());
  return std::unique_ptr<ImapStateStore>(new ImapStateStore(std::move(*db)));
}

Result<std::optional<ImapStateStore::State>> ImapStateStore::Load(const std::string& account,
                                                                  const std::string& mailbox) {
  auto statement = storage::Statement::Prepare(
      db_->Handle(),
      "SELECT uidvalidity, last_uid FROM imap_state WHERE account = ?1 AND mailbox = ?2");
  if (!statement) return tl::unexpected(statement.error());
  statement->Bind(1, std::string_view(account)).Bind(2, std::string_view(mailbox));
  auto row = statement->Step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return std::optional<State>();
  return std::optional<State>(
      State{static_cast<uint32_t>(statement->Int(0)), static_cast<uint32_t>(statement->Int(1))});
}

Result<void> ImapStateStore::Save(const std::string& account, const std::string& mailbox,
                                  const State& state) {
  auto statement = storage::Statement::Prepare(
      db_->Handle(),
      "INSERT INTO imap_state (account, mailbox, uidvalidity, last_uid, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account, mailbox) DO UPDATE SET "
      "uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, "
      "updated_at = excluded.updated_at");
  if (!statement) return tl::unexpected(statement.error());
  statement->Bind(1, std::string_view(account))
      .Bind(2, std::string_view(mailbox))
      .Bind(3, int64_t{state.uidvalidity})
      .Bind(4, int64_t{state.last_uid})
      .Bind(5, UnixNow());
  return statement->Run();
}

ImapPoller::ImapPoller(const ImapAccount& account, IngestFunction ingest, ImapStateStore& state)
    : account_(account), ingest_(std::move(ingest)), state_(state), client_(account) {}

std::string ImapPoller::FolderPath(ArchiveFolder folder) const {
  return account_.archive + delimiter_.value_or('/') + std::string(ArchiveFolderName(folder));
}

Result<void> ImapPoller::EnsureFolders() {
  if (folders_ready_) return {};
  if (!delimiter_) {
    auto delimiter = client_.Delimiter();
    if (!delimiter) return tl::unexpected(delimiter.error());
    delimiter_ = *delimiter;
  }
  auto existing = client_.List(account_.archive + *delimiter_ + "*");
  if (!existing) return tl::unexpected(existing.error());
  for (ArchiveFolder folder : kFolders) {
    const std::string path = FolderPath(folder);
    if (std::find(existing->begin(), existing->end(), path) != existing->end()) continue;
    if (auto created = client_.Create(path); !created) {
      return MakeError(created.error().code,
                       "cannot create " + path + ": " + created.error().message);
    }
    Log("imap")->info("account={} created={}", account_.name, path);
  }
  folders_ready_ = true;
  return {};
}

Result<void> ImapPoller::Dispose(const std::map<ArchiveFolder, std::vector<uint32_t>>& handled) {
  for (const auto& [folder, uids] : handled) {
    if (uids.empty()) continue;
    Result<void> done = account_.after == AfterFetch::kDelete
                            ? client_.Delete(account_.mailbox, uids)
                            : client_.Move(account_.mailbox, uids, FolderPath(folder));
    if (!done) {
      // The folder may have gone away since it was checked.
      folders_ready_ = false;
      return MakeError(done.error().code, std::string(AfterFetchName(account_.after)) + " to " +
                                              FolderPath(folder) + ": " + done.error().message);
    }
  }
  return {};
}

PollStats ImapPoller::Poll() {
  const auto start = std::chrono::steady_clock::now();
  PollStats stats;
  auto log = Log("imap");
  auto finish = [&]() {
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto level = stats.error ? spdlog::level::err : spdlog::level::info;
    log->log(level,
             "account={} mailbox={} seen={} stored={} duplicate={} rejected={} deferred={} "
             "seconds={:.2f}{}",
             account_.name, account_.mailbox, stats.seen, stats.stored, stats.duplicate,
             stats.rejected, stats.deferred, stats.seconds,
             stats.error ? " error=\"" + stats.error->ToString() + "\"" : std::string());
    return stats;
  };

  // STATUS first: it logs in, tells a missing mailbox apart from a refused
  // login (libcurl reports a failed SELECT as a login failure) and gives
  // the UIDVALIDITY the remembered UIDs belong to.
  auto status = client_.Status(account_.mailbox);
  if (!status) {
    stats.error = status.error();
    return finish();
  }
  auto remembered = state_.Load(account_.name, account_.mailbox);
  if (!remembered) {
    stats.error = remembered.error();
    return finish();
  }
  ImapStateStore::State state{status->uidvalidity, 0};
  if (*remembered && (*remembered)->uidvalidity == status->uidvalidity) {
    state.last_uid = (*remembered)->last_uid;
  } else if (*remembered) {
    log->warn("account={} mailbox={} uidvalidity={} was={}: UIDs start again", account_.name,
              account_.mailbox, status->uidvalidity, (*remembered)->uidvalidity);
  }

  if (account_.after == AfterFetch::kMove) {
    if (auto ready = EnsureFolders(); !ready) {
      stats.error = ready.error();
      return finish();
    }
  }

  // Moved or deleted messages leave the mailbox, so everything still in it
  // is due; with "keep" only what lies above the remembered UID.
  const uint32_t first_uid = account_.after == AfterFetch::kKeep ? state.last_uid + 1 : 1;
  auto uids = client_.Search(account_.mailbox, first_uid);
  if (!uids) {
    stats.error = uids.error();
    return finish();
  }

  const size_t batch = static_cast<size_t>(account_.batch);
  for (size_t begin = 0; begin < uids->size() && !stats.error; begin += batch) {
    const size_t end = std::min(uids->size(), begin + batch);
    std::map<ArchiveFolder, std::vector<uint32_t>> handled;
    // With "keep", the remembered UID may only pass messages that have an
    // outcome, so one deferred message holds it back.
    bool contiguous = true;
    uint32_t last_handled = state.last_uid;

    // Sizes first, so a message above the limit is never downloaded whole
    // (issue #6): a hostile sender can make one of any size.
    const std::vector<uint32_t> chunk(uids->begin() + static_cast<std::ptrdiff_t>(begin),
                                      uids->begin() + static_cast<std::ptrdiff_t>(end));
    auto sizes = client_.Sizes(account_.mailbox, chunk);
    if (!sizes) {
      stats.error = sizes.error();
      stats.deferred += uids->size() - begin;
      break;
    }

    for (size_t i = begin; i < end; ++i) {
      const uint32_t uid = (*uids)[i];
      ++stats.seen;
      const auto size = sizes->find(uid);
      const bool too_large = size != sizes->end() && size->second > account_.max_message_bytes;
      auto bytes = too_large ? client_.FetchHeader(account_.mailbox, uid, kMaxKeptHeaderBytes)
                             : client_.Fetch(account_.mailbox, uid);
      if (!bytes && bytes.error().code == ErrorCode::kNotFound) {
        log->debug("account={} uid={} gone before it was fetched", account_.name, uid);
        continue;
      }
      if (!bytes) {
        // The connection is gone or the server refused: what is left waits
        // for the next poll.
        stats.error = bytes.error();
        stats.deferred += uids->size() - i;
        break;
      }

      parser::Envelope envelope{std::move(*bytes), Origin(account_, status->uidvalidity, uid)};
      if (too_large) {
        envelope.refused =
            Error(ErrorCode::kTooLarge, "message of " + std::to_string(size->second) +
                                            " bytes (RFC822.SIZE) is larger than " +
                                            std::to_string(account_.max_message_bytes) +
                                            "; only its header section was fetched");
        log->warn("account={} uid={} size={} not downloaded: above max_message_bytes={}",
                  account_.name, uid, size->second, account_.max_message_bytes);
      }
      auto outcome = ingest_(std::move(envelope));
      if (!outcome) {
        log->warn("account={} uid={} deferred error=\"{}\"", account_.name, uid,
                  outcome.error().ToString());
        ++stats.deferred;
        contiguous = false;
        if (!stats.error) stats.error = outcome.error();
        continue;
      }
      switch (outcome->Overall()) {
        case storage::PartStatus::kStored:
          ++stats.stored;
          break;
        case storage::PartStatus::kDuplicate:
          ++stats.duplicate;
          break;
        case storage::PartStatus::kRejected:
          ++stats.rejected;
          break;
      }
      handled[FolderFor(*outcome)].push_back(uid);
      if (contiguous) last_handled = uid;
    }

    // Only now, after the commits, may the messages leave the mailbox.
    if (account_.after != AfterFetch::kKeep) {
      if (auto disposed = Dispose(handled); !disposed) {
        stats.error = disposed.error();
        break;
      }
    }
    state.last_uid = last_handled;
    if (auto saved = state_.Save(account_.name, account_.mailbox, state); !saved) {
      stats.error = saved.error();
      break;
    }
    if (!contiguous && account_.after == AfterFetch::kKeep) break;
  }
  return finish();
}

void ImapHealth::Record(const std::string& name, const PollStats& stats) {
  std::lock_guard lock(mutex_);
  Account& account = accounts_[name];
  account.name = name;
  account.ok = !stats.error && stats.deferred == 0;
  ++account.polls;
  account.failed_polls += account.ok ? 0 : 1;
  if (account.ok) {
    account.last_good_poll = UnixNow();
    account.error.clear();
  } else {
    account.error = stats.error ? stats.error->ToString()
                                : std::to_string(stats.deferred) + " message(s) deferred";
  }
}

std::vector<ImapHealth::Account> ImapHealth::Snapshot() const {
  std::lock_guard lock(mutex_);
  std::vector<Account> out;
  for (const auto& [name, account] : accounts_) out.push_back(account);
  return out;
}

std::chrono::seconds NextPollDelay(std::chrono::seconds interval, int failures) {
  if (failures <= 0) return interval;
  const std::chrono::seconds first = std::min(interval, std::chrono::seconds(30));
  const std::chrono::seconds ceiling = std::max(interval, std::chrono::seconds(3600));
  std::chrono::seconds delay = first;
  for (int i = 1; i < failures && delay < ceiling; ++i) delay *= 2;
  return std::min(delay, ceiling);
}

ImapService::ImapService(std::vector<ImapAccount> accounts, IngestFunction ingest,
                         std::string database_path, int busy_timeout_ms, ImapHealth* health)
    : accounts_(std::move(accounts)),
      ingest_(std::move(ingest)),
      database_path_(std::move(database_path)),
      busy_timeout_ms_(busy_timeout_ms),
      health_(health) {}

ImapService::~ImapService() { Stop(); }

void ImapService::Start() {
  for (const ImapAccount& account : accounts_) {
    threads_.emplace_back([this, &account] { Run(account); });
  }
}

void ImapService::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (ImapPoller* poller : running_) poller->Stop();
  }
  wake_.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

void ImapService::Run(const ImapAccount& account) {
  auto log = Log("imap");
  auto state = ImapStateStore::Open(database_path_, busy_timeout_ms_);
  if (!state) {
    log->error("account={} error=\"{}\"", account.name, state.error().ToString());
    PollStats failed;
    failed.error = state.error();
    health_->Record(account.name, failed);
    return;
  }
  ImapPoller poller(account, ingest_, **state);
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    running_.push_back(&poller);
  }
  log->info("account={} host={} port={} tls={} mailbox={} after={} interval={}s", account.name,
            account.host, account.port, ImapTlsName(account.tls), account.mailbox,
            AfterFetchName(account.after), account.interval.count());

  int failures = 0;
  for (;;) {
    const PollStats stats = poller.Poll();
    health_->Record(account.name, stats);
    failures = stats.error || stats.deferred > 0 ? failures + 1 : 0;

    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, NextPollDelay(account.interval, failures), [this] { return stopping_; });
    if (stopping_) break;
  }
  std::lock_guard lock(mutex_);
  running_.erase(std::find(running_.begin(), running_.end(), &poller));
}

}  // namespace dmarcd::server
