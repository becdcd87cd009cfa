#include "server/fetch_command.hpp"

#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <ostream>

#include "server/imap_poller.hpp"
#include "server/ingest_queue.hpp"
#include "server/logging.hpp"

namespace dmarcd::server {
namespace {

std::string SummaryLine(const std::string& name, const PollStats& stats) {
  char line[256];
  std::snprintf(line, sizeof line,
                "seen=%llu stored=%llu duplicate=%llu rejected=%llu deferred=%llu seconds=%.2f",
                static_cast<unsigned long long>(stats.seen),
                static_cast<unsigned long long>(stats.stored),
                static_cast<unsigned long long>(stats.duplicate),
                static_cast<unsigned long long>(stats.rejected),
                static_cast<unsigned long long>(stats.deferred), stats.seconds);
  return "fetch: account=" + name + " " + line;
}

FetchExit RunLoop(const Config& config, const std::vector<ImapAccount>& accounts,
                  storage::Writer& writer) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The pollers share the one writer; the mutex makes them take turns, as
  // the ingest queue does for `serve`.
  std::mutex writer_mutex;
  ImapHealth health;
  ImapService service(
      accounts,
      [&](const parser::Envelope& envelope) {
        std::lock_guard lock(writer_mutex);
        return IngestWithRetry(writer, envelope);
      },
      config.database.path, config.database.busy_timeout, &health);
  service.Start();

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log("imap")->info("stopping signal={}", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  service.Stop();
  return FetchExit::kOk;
}

}  // namespace

FetchExit RunFetch(const Config& config, const std::vector<ImapAccount>& configured,
                   const FetchOptions& options, std::ostream& out, std::ostream& err) {
  std::vector<ImapAccount> accounts;
  for (const ImapAccount& account : configured) {
    if (!options.account || *options.account == account.name) accounts.push_back(account);
  }
  // A message the pipeline would refuse as too large is not downloaded.
  for (ImapAccount& account : accounts) {
    account.max_message_bytes =
        std::min(account.max_message_bytes, config.limits.max_envelope_bytes);
  }
  if (accounts.empty()) {
    err << "dmarcd fetch: "
        << (options.account ? "no [[imap]] account named " + *options.account
                            : std::string("no [[imap]] account in the configuration"))
        << "\n";
    return FetchExit::kUsage;
  }

  storage::OpenOptions open_options;
  open_options.busy_timeout_ms = config.database.busy_timeout;
  open_options.max_size_bytes = config.database.max_size;
  auto db = storage::Database::Open(config.database.path, open_options);
  if (!db) {
    err << "dmarcd fetch: " << config.database.path << ": " << db.error().ToString() << "\n";
    return IsTransient(db.error().code) ? FetchExit::kFailed : FetchExit::kUsage;
  }
  storage::Writer writer(**db, config.limits);
  writer.SetFailurePrivacy(FailurePrivacyOf(config));
  if (!options.once) return RunLoop(config, accounts, writer);

  auto state = ImapStateStore::Open(config.database.path, config.database.busy_timeout);
  if (!state) {
    err << "dmarcd fetch: " << config.database.path << ": " << state.error().ToString() << "\n";
    return FetchExit::kFailed;
  }

  FetchExit exit = FetchExit::kOk;
  for (const ImapAccount& account : accounts) {
    ImapPoller poller(
        account,
        [&](const parser::Envelope& envelope) { return IngestWithRetry(writer, envelope); },
        **state);
    const PollStats stats = poller.Poll();
    out << SummaryLine(account.name, stats) << "\n" << std::flush;
    if (stats.error) {
      err << "dmarcd fetch: account=" << account.name << ": " << stats.error->ToString() << "\n";
    }
    if (stats.error || stats.deferred > 0) {
      exit = FetchExit::kFailed;
    } else if (stats.rejected > 0 && exit == FetchExit::kOk) {
      exit = FetchExit::kRejected;
    }
  }
  return exit;
}

}  // namespace dmarcd::server
