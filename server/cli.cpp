#include "server/cli.hpp"

#include <CLI/CLI.hpp>
#include <charconv>
#include <iostream>
#include <optional>
#include <string>

#include "server/config.hpp"
#include "server/fetch_command.hpp"
#include "server/ingest_command.hpp"
#include "server/ingest_queue.hpp"
#include "server/iso_time.hpp"
#include "server/logging.hpp"
#include "server/serve_command.hpp"
#include "storage/database.hpp"
#include "storage/tokens.hpp"
#include "storage/writer.hpp"

#ifndef DMARCD_VERSION
#define DMARCD_VERSION "0.0.0"
#endif

namespace dmarcd::server {
namespace {

constexpr const char* kIngestFooter = R"(Exit status:
  0  everything was stored or was already there
  1  some input was rejected (kept in the rejected table, see /api/v1/rejected)
  2  bad usage or configuration
  3  a transient or database failure left some input unstored: run again later)";

constexpr const char* kReparseFooter = R"(Exit status:
  0  done; rows that still do not parse stay in the rejected table
  1  no rejected row has that ID
  2  bad usage or configuration
  3  a transient or database failure: run again later)";

constexpr const char* kServeFooter =
    "Stops cleanly on SIGINT or SIGTERM. Exit status: 0 after a clean stop, 2 bad "
    "usage or configuration, 3 the database or port could not be opened.";

constexpr const char* kFetchFooter = R"(Exit status (--once):
  0  every message was handled and nothing was rejected
  1  some messages held no report (filed under Archive/Invalid, kept in the rejected table)
  2  bad usage or configuration (no [[imap]] account)
  3  an account failed (login, TLS, mailbox, network) or messages were left for the next run)";

constexpr const char* kConfigHelp =
    "Settings also come from DMARCD_<SECTION>_<KEY> environment variables "
    "(DMARCD_DATABASE_PATH, DMARCD_HTTP_LISTEN, ...); flags win over the environment, "
    "the environment over the file.";

// A command's own footer replaces the one it would inherit, so the note on
// environment variables is added back.
std::string WithConfigHelp(const char* footer) {
  return std::string(footer) + "\n\n" + kConfigHelp;
}

// Rejected rows are SQLite row ids, which start at 1. Without this check a
// "-1" (which CLI11 takes as a number, not an option) reached the database
// and came back as "not found".
std::string CheckPositiveId(std::string& input) {
  int64_t value = 0;
  const char* end = input.data() + input.size();
  auto [ptr, ec] = std::from_chars(input.data(), end, value);
  if (ec == std::errc() && ptr == end && value > 0) return "";
  return "must be a positive whole number (a row id of /api/v1/rejected), not '" + input + "'";
}

struct Globals {
  std::optional<std::string> config_file;
  std::optional<std::string> database_path;
  std::optional<std::string> log_level;
};

void AddGlobals(CLI::App* app, Globals& globals) {
  app->add_option("--config", globals.config_file, "TOML configuration file")->type_name("FILE");
  app->add_option("--db", globals.database_path, "SQLite database (default ./dmarcd.db)")
      ->type_name("FILE");
  app->add_option("--log-level", globals.log_level,
                  "trace, debug, info, warn, error, critical or off (default: info for serve, "
                  "warn for the other commands)")
      ->type_name("LEVEL");
}

Result<storage::Database*> OpenDatabase(const Config& config,
                                        std::unique_ptr<storage::Database>& holder) {
  storage::OpenOptions options;
  options.busy_timeout_ms = config.database.busy_timeout;
  auto db = storage::Database::Open(config.database.path, options);
  if (!db) return tl::unexpected(db.error());
  holder = std::move(*db);
  return holder.get();
}

int Fail(const std::string& command, const Error& error) {
  std::cerr << "dmarcd " << command << ": " << error.ToString() << "\n";
  if (error.code == ErrorCode::kConfig || error.code == ErrorCode::kInvalidArgument) return 2;
  if (error.code == ErrorCode::kNotFound) return 1;
  return 3;
}

int RunReparse(const Config& config, std::optional<int64_t> id) {
  std::unique_ptr<storage::Database> db;
  auto opened = OpenDatabase(config, db);
  if (!opened) return Fail("reparse", opened.error());
  storage::Writer writer(*db, config.limits);
  auto outcome = writer.Reparse(id);
  if (!outcome) return Fail("reparse", outcome.error());
  std::cout << "reparse: tried=" << outcome->tried << " recovered=" << outcome->recovered
            << " still_rejected=" << outcome->still_rejected << "\n";
  return 0;
}

int RunTokenAdd(const Config& config, const std::string& name, const std::string& scope_name) {
  const auto scope = storage::ParseTokenScope(scope_name);
  if (!scope) {
    return Fail("token add",
                Error(ErrorCode::kInvalidArgument,
                      "scope must be ingest, read or admin, not '" + scope_name + "'"));
  }
  std::unique_ptr<storage::Database> db;
  auto opened = OpenDatabase(config, db);
  if (!opened) return Fail("token add", opened.error());
  auto secret = storage::AddToken(*db, name, *scope);
  if (!secret) return Fail("token add", secret.error());
  // Only the secret on stdout, so `TOKEN=$(dmarcd token add ...)` works.
  std::cout << *secret << "\n";
  std::cerr << "dmarcd: token '" << name << "' with scope " << scope_name
            << " created; the secret above is shown only this once\n";
  return 0;
}

int RunTokenList(const Config& config) {
  std::unique_ptr<storage::Database> db;
  auto opened = OpenDatabase(config, db);
  if (!opened) return Fail("token list", opened.error());
  auto tokens = storage::ListTokens(*db);
  if (!tokens) return Fail("token list", tokens.error());
  std::cout << "name\tscope\tcreated\trevoked\tlast_used\n";
  for (const storage::TokenRow& t : *tokens) {
    std::cout << t.name << "\t" << storage::TokenScopeName(t.scope) << "\t"
              << FormatIsoTime(t.created_at) << "\t"
              << (t.revoked_at ? FormatIsoTime(*t.revoked_at) : "-") << "\t"
              << (t.last_used_at ? FormatIsoTime(*t.last_used_at) : "-") << "\n";
  }
  return 0;
}

int RunTokenRevoke(const Config& config, const std::string& name) {
  std::unique_ptr<storage::Database> db;
  auto opened = OpenDatabase(config, db);
  if (!opened) return Fail("token revoke", opened.error());
  if (auto revoked = storage::RevokeToken(*db, name); !revoked) {
    return Fail("token revoke", revoked.error());
  }
  std::cout << "token '" << name << "' revoked\n";
  return 0;
}

int RunMigrate(const Config& config) {
  std::unique_ptr<storage::Database> db;
  auto opened = OpenDatabase(config, db);
  if (!opened) return Fail("migrate", opened.error());
  auto version = db->SchemaVersion();
  if (!version) return Fail("migrate", version.error());
  std::cout << "database " << config.database.path << " at schema " << *version << "\n";
  return 0;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app{
      "dmarcd: collects DMARC aggregate and failure reports, stores them in SQLite and "
      "serves a REST API and dashboard.",
      "dmarcd"};
  app.footer(kConfigHelp);
  Globals globals;
  AddGlobals(&app, globals);

  CLI::App* serve = app.add_subcommand(
      "serve", "Run the HTTP server: REST API under /api/v1/, uploads, the dashboard at /");
  std::optional<std::string> listen;
  std::optional<std::string> port_file;
  serve
      ->add_option("--listen", listen,
                   "ADDRESS:PORT to listen on (default 127.0.0.1:8080; port "
                   "0 picks a free one)")
      ->type_name("ADDRESS:PORT");
  serve->add_option("--port-file", port_file, "write the bound port number to this file")
      ->type_name("FILE");
  serve->footer(WithConfigHelp(kServeFooter));

  CLI::App* ingest = app.add_subcommand(
      "ingest",
      "Store reports from files, folders (recursively; Maildir too), mbox files or "
      "stdin ('-')");
  IngestOptions ingest_options;
  ingest->add_option("PATH", ingest_options.paths, "file, folder, mbox file, or - for stdin")
      ->required();
  ingest->add_flag("--verbose,-v", ingest_options.verbose,
                   "print one line per report or rejected part with its outcome");
  ingest->footer(WithConfigHelp(kIngestFooter));

  CLI::App* fetch = app.add_subcommand(
      "fetch",
      "Poll the [[imap]] accounts of the configuration: once with --once, else every "
      "interval until SIGINT or SIGTERM");
  FetchOptions fetch_options;
  fetch->add_flag("--once", fetch_options.once, "one pass over every account, then exit");
  fetch->add_option("--account", fetch_options.account, "only the [[imap]] account NAME")
      ->type_name("NAME");
  fetch->footer(kFetchFooter);

  CLI::App* reparse = app.add_subcommand(
      "reparse",
      "Run rejected input through the current parser again (one row by ID, or all "
      "not yet recovered)");
  std::optional<int64_t> reparse_id;
  reparse->add_option("ID", reparse_id, "id of one rejected row (see /api/v1/rejected)")
      ->check(CLI::Validator(CheckPositiveId, "POSITIVE"));
  reparse->footer(WithConfigHelp(kReparseFooter));

  CLI::App* token = app.add_subcommand("token", "Manage API bearer tokens");
  token->require_subcommand(1);
  CLI::App* token_add = token->add_subcommand(
      "add", "Create a token and print its secret (only the secret, on stdout; shown once)");
  std::string token_name;
  std::string token_scope;
  token_add->add_option("NAME", token_name, "name of the token")->required();
  token_add->add_option("--scope", token_scope, "ingest (upload reports), read or admin")
      ->required()
      ->check(CLI::IsMember({"ingest", "read", "admin"}));
  CLI::App* token_list = token->add_subcommand("list", "List tokens (never their secrets)");
  CLI::App* token_revoke = token->add_subcommand("revoke", "Revoke the active token NAME");
  token_revoke->add_option("NAME", token_name, "name of the token")->required();

  CLI::App* migrate = app.add_subcommand(
      "migrate", "Create the database or bring its schema up to date, then print its version");
  CLI::App* version = app.add_subcommand("version", "Print the program and schema version");

  for (CLI::App* command : {serve, ingest, fetch, reparse, token, token_add, token_list,
                            token_revoke, migrate, version}) {
    AddGlobals(command, globals);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (app.get_subcommands().empty()) {
    std::cerr << app.help();
    return 2;
  }
  if (version->parsed()) {
    std::cout << "dmarcd " << DMARCD_VERSION << " (schema "
              << storage::Database::LatestSchemaVersion() << ")\n";
    return 0;
  }

  ConfigFlags flags;
  flags.config_file = globals.config_file;
  flags.database_path = globals.database_path;
  flags.log_level = globals.log_level;
  flags.listen = listen;
  const bool polling = fetch->parsed() && !fetch_options.once;
  if (!serve->parsed() && !polling) flags.default_log_level = "warn";
  auto config = LoadConfig(flags);
  if (!config) {
    std::cerr << "dmarcd: " << config.error().message << "\n";
    return 2;
  }
  if (auto logging = SetupLogging(config->log.level); !logging) {
    std::cerr << "dmarcd: " << logging.error().message << "\n";
    return 2;
  }
  Log("server")->debug("config={} database={}", globals.config_file.value_or("-"),
                       config->database.path);

  if (serve->parsed()) return RunServe(*config, ServeOptions{port_file});
  if (ingest->parsed()) {
    return static_cast<int>(RunIngest(*config, ingest_options, std::cout, std::cerr));
  }
  if (fetch->parsed()) {
    return static_cast<int>(RunFetch(*config, config->imap, fetch_options, std::cout, std::cerr));
  }
  if (reparse->parsed()) return RunReparse(*config, reparse_id);
  if (token_add->parsed()) return RunTokenAdd(*config, token_name, token_scope);
  if (token_list->parsed()) return RunTokenList(*config);
  if (token_revoke->parsed()) return RunTokenRevoke(*config, token_name);
  if (migrate->parsed()) return RunMigrate(*config);
  std::cerr << app.help();
  return 2;
}

}  // namespace dmarcd::server
