// dmarcd's settings: defaults, then one TOML file, then DMARCD_<SECTION>_<KEY>
// environment variables, then command-line flags; each later source wins.
//
// Every key of the file has an environment variable of the same name in
// upper case: [http] listen is DMARCD_HTTP_LISTEN, [limits]
// max_inflated_bytes is DMARCD_LIMITS_MAX_INFLATED_BYTES. An unknown section
// or key in the file, or a value of the wrong type, is a kConfig error that
// names it; the same holds for an unusable environment value.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "parser/error.hpp"
#include "parser/limits.hpp"
#include "server/imap_account.hpp"
#include "storage/failure_store.hpp"

namespace dmarcd::server {

struct Config {
  struct Database {
    std::string path = "./dmarcd.db";
    int busy_timeout = 5000;  // milliseconds a statement waits for a lock
    // Largest size in bytes the database may grow to (PRAGMA
    // max_page_count on the writing connection), 0 for no limit. At the
    // limit an envelope is not committed, and waits (IMAP) or gets a 503
    // (upload) until rows are deleted or the limit raised.
    uint64_t max_size = 0;
  } database;
  struct Http {
    std::string listen = "127.0.0.1:8080";  // ADDRESS:PORT; port 0 picks a free one
    uint64_t max_upload_bytes = uint64_t{64} << 20;
    // Bytes of a request's header block (request line and fields); above
    // it: 431 and the connection closed. 1024 to 1 MiB.
    uint64_t max_header_bytes = uint64_t{16} << 10;
    int threads = 2;  // io threads of the HTTP server
    // HTTPS: PEM files of the certificate chain and of its private key; both
    // or neither. Empty: plain HTTP.
    std::string tls_cert;
    std::string tls_key;
    // Slow clients (seconds). A new connection, or a request's first byte,
    // starts the header deadline and the request deadline (header and
    // body); a kept-alive connection waits idle_timeout for the next request.
    int header_timeout = 10;
    int request_timeout = 30;
    int idle_timeout = 60;
    // Open connections in total and from one client address; above either,
    // a new connection is closed at once.
    int max_connections = 4096;
    int max_connections_per_client = 32;
    // Read access (server/access.hpp). Each user is "NAME:HASH" with HASH
    // "pbkdf2-sha256$ITERATIONS$SALT_HEX$KEY_HEX"; users log in with HTTP
    // Basic auth to the dashboard and the API.
    std::vector<std::string> users;
    // The API needs a bearer token (any scope) or a user's Basic auth.
    bool require_read_token = false;
    // A proxy in front authenticates every request: dmarcd checks nothing
    // for reads, but may then listen on a non-loopback address.
    bool trusted_proxy_auth = false;
    // Origins ("https://portal.example.com") besides dmarcd's own from which
    // a browser may send a POST; every other Origin is refused (CSRF).
    std::vector<std::string> allowed_origins;
  } http;
  parser::Limits limits;
  struct Log {
    std::string level = "info";  // trace, debug, info, warn, error, critical, off
  } log;
  // The [[imap]] tables: accounts polled by `serve` and `fetch`
  // (server/imap_account.hpp). Only in the file: an array of tables has no
  // DMARCD_<SECTION>_<KEY> form; password_env names a variable instead.
  std::vector<ImapAccount> imap;
  // What is kept of failure reports (storage/failure_store.hpp).
  struct Privacy {
    std::string store_samples = "headers";  // "headers" | "full" | "none"
    bool redact_local_parts = false;
  } privacy;
  struct Retention {
    // Failure reports older than this ("90d", "12w", "36h") are deleted at
    // serve start-up and daily; "" keeps them.
    std::string failure_retention;
  } retention;
};

// The [privacy] settings as the Writer takes them (validated by LoadConfig).
storage::FailurePrivacy FailurePrivacyOf(const Config& config);

// What the command line sets; unset fields leave the lower sources alone.
struct ConfigFlags {
  std::optional<std::string> config_file;
  std::optional<std::string> database_path;  // --db
  std::optional<std::string> log_level;      // --log-level
  std::optional<std::string> listen;         // serve --listen
  // The command's own default log level, below the file and environment:
  // one-shot commands such as ingest print a summary and log only warnings.
  std::optional<std::string> default_log_level;
};

// Looks up an environment variable; the default reads the process
// environment, tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
std::optional<std::string> ProcessEnv(const std::string& name);

// Builds the configuration. Errors (kConfig): the file cannot be read or is
// not TOML, an unknown key, a wrong type or range, a bad log level or
// listen address.
Result<Config> LoadConfig(const ConfigFlags& flags, const EnvLookup& env = ProcessEnv);

// Splits "127.0.0.1:8080" (or "[::1]:8080") into address and port.
Result<std::pair<std::string, uint16_t>> SplitListen(const std::string& listen);

}  // namespace dmarcd::server
