#include "server/serve_command.hpp"

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include "server/access.hpp"
#include "server/api.hpp"
#include "server/http_server.hpp"
#include "server/imap_poller.hpp"
#include "server/ingest_queue.hpp"
#include "server/logging.hpp"
#include "server/metrics.hpp"
#include "server/reader_pool.hpp"
#include "storage/tokens.hpp"

namespace dmarcd::server {
namespace {

Result<void> WritePortFile(const std::string& path, uint16_t port) {
  const std::string partial = path + ".partial";
  {
    std::ofstream file(partial, std::ios::trunc);
    file << port << "\n";
    if (!file) return MakeError(ErrorCode::kIo, "cannot write " + partial);
  }
  std::error_code ec;
  std::filesystem::rename(partial, path, ec);
  if (ec) return MakeError(ErrorCode::kIo, "cannot rename " + partial + ": " + ec.message());
  return {};
}

// The IMAP pollers wait for each envelope's outcome: a message may leave
// its mailbox only after its commit.
Result<storage::EnvelopeOutcome> SubmitAndWait(IngestQueue& queue,
                                               const parser::Envelope& envelope) {
  auto promise = std::make_shared<std::promise<Result<storage::EnvelopeOutcome>>>();
  auto outcome = promise->get_future();
  queue.Submit(envelope, [promise](Result<storage::EnvelopeOutcome> result) {
    promise->set_value(std::move(result));
  });
  return outcome.get();
}

int ExitFor(const Error& error) { return error.code == ErrorCode::kConfig ? 2 : 3; }

}  // namespace

int RunServe(const Config& config, const ServeOptions& options) {
  auto log = Log("server");

  // Signals are taken by sigwait on this thread: block them before any
  // other thread starts, so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto listen = SplitListen(config.http.listen);
  if (!listen) {
    log->critical("error=\"{}\"", listen.error().ToString());
    return 2;
  }
  // Issue #5: open read access only on loopback.
  if (auto allowed = CheckListenAccess(config.http, listen->first); !allowed) {
    log->critical("error=\"{}\"", allowed.error().ToString());
    return 2;
  }

  storage::OpenOptions write_options;
  write_options.busy_timeout_ms = config.database.busy_timeout;
  write_options.max_size_bytes = config.database.max_size;
  auto writer_db = storage::Database::Open(config.database.path, write_options);
  if (!writer_db) {
    log->critical("database={} error=\"{}\"", config.database.path, writer_db.error().ToString());
    return ExitFor(writer_db.error());
  }
  auto schema = (*writer_db)->SchemaVersion();
  log->info("database={} schema={}", config.database.path, schema ? *schema : -1);

  // Token checks write last-use times, so they get their own read-write
  // connection rather than one of the read-only ones.
  write_options.migrate = false;
  auto token_db = storage::Database::Open(config.database.path, write_options);
  if (!token_db) {
    log->critical("database={} error=\"{}\"", config.database.path, token_db.error().ToString());
    return ExitFor(token_db.error());
  }
  std::mutex token_mutex;
  TokenCheck tokens = [&](std::string_view secret) {
    std::lock_guard lock(token_mutex);
    return storage::VerifyToken(**token_db, secret);
  };
  auto access = AccessPolicy::Make(config.http, tokens, &Api::ErrorResponse);
  if (!access) {
    log->critical("error=\"{}\"", access.error().ToString());
    return 2;
  }

  auto readers = ReaderPool::Open(config.database.path, std::max(2, config.http.threads),
                                  config.database.busy_timeout);
  if (!readers) {
    log->critical("database={} error=\"{}\"", config.database.path, readers.error().ToString());
    return ExitFor(readers.error());
  }

  // Declared before everything it counts for, so that it outlives them.
  Metrics metrics;
  metrics.SetDatabasePath(config.database.path);
  IngestQueue queue(std::move(*writer_db), config.limits, RetryPolicy{}, FailureSettingsOf(config),
                    &metrics);
  ImapHealth imap_health;
  metrics.SetImapHealth(&imap_health);
  ApiOptions api_options{config.http.max_upload_bytes};
  api_options.imap_health = &imap_health;
  api_options.metrics_text = [&metrics] { return metrics.Render(); };
  Api api(**readers, &queue, tokens, api_options);

  HttpServerOptions http_options;
  http_options.address = listen->first;
  http_options.port = listen->second;
  http_options.max_body_bytes = config.http.max_upload_bytes;
  http_options.max_header_bytes = static_cast<uint32_t>(config.http.max_header_bytes);
  http_options.threads = config.http.threads;
  http_options.header_timeout = std::chrono::seconds(config.http.header_timeout);
  http_options.request_timeout = std::chrono::seconds(config.http.request_timeout);
  http_options.idle_timeout = std::chrono::seconds(config.http.idle_timeout);
  http_options.max_connections = config.http.max_connections;
  http_options.max_connections_per_client = config.http.max_connections_per_client;
  http_options.tls_cert = config.http.tls_cert;
  http_options.tls_key = config.http.tls_key;
  http_options.gate = [policy = *access](const HttpRequest& request) {
    return policy->Check(request);
  };
  HttpServer server(
      http_options,
      [&api, &metrics](const HttpRequest& request, std::function<void(HttpResponse)> respond) {
        // Every answer is counted by route and status, the upload's too,
        // whose answer comes later from the writer thread.
        auto counted = [&metrics, route = Api::RouteName(request.method, request.target),
                        respond = std::move(respond)](HttpResponse response) {
          metrics.RecordHttpRequest(route, response.status);
          respond(std::move(response));
        };
        api.Handle(request, std::move(counted));
      },
      &Api::ErrorResponse);

  auto port = server.Start();
  if (!port) {
    log->critical("error=\"{}\"", port.error().ToString());
    queue.Stop();
    return ExitFor(port.error());
  }
  log->info("listening address={} port={} tls={} read_access={}", listen->first, *port,
            config.http.tls_cert.empty() ? "off" : "on", (*access)->Mode());
  if (options.port_file) {
    if (auto written = WritePortFile(*options.port_file, *port); !written) {
      log->critical("error=\"{}\"", written.error().ToString());
      server.Stop();
      queue.Stop();
      return 3;
    }
  }

  // One poller thread per [[imap]] account, feeding the same queue.
  ImapService imap(
      config.imap,
      [&queue](const parser::Envelope& envelope) { return SubmitAndWait(queue, envelope); },
      config.database.path, config.database.busy_timeout, &imap_health);
  imap.Start();

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  log->info("stopping signal={}", signal_number == SIGINT ? "SIGINT" : "SIGTERM");

  // Order matters: no new polls or requests, then store everything already
  // queued (its responses are dropped with the connections), then close.
  imap.Stop();
  server.Stop();
  queue.Stop();
  log->info("stopped");
  return 0;
}

}  // namespace dmarcd::server
