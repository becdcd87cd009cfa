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
    int threads = 2;  // io threads of the HTTP server
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
