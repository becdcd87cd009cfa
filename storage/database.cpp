#include "storage/database.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <string>

#include "storage/migrations.hpp"
#include "storage/rollups.hpp"
#include "storage/statement.hpp"

namespace dmarcd::storage {
namespace {

Result<int> ReadUserVersion(sqlite3* db) {
  auto statement = Statement::Prepare(db, "PRAGMA user_version");
  if (!statement) {
    return tl::unexpected(statement.error());
  }
  auto row = statement->Step();
  if (!row) {
    return tl::unexpected(row.error());
  }
  return *row ? static_cast<int>(statement->Int(0)) : 0;
}

Error NewerSchemaError(int version) {
  return Error(ErrorCode::kConfig, "database schema version " + std::to_string(version) +
                                       " is newer than this dmarcd (knows up to " +
                                       std::to_string(Database::LatestSchemaVersion()) +
                                       "); upgrade dmarcd");
}

// The rows whose foreign key points at nothing, as PRAGMA foreign_key_check
// lists them.
Result<int64_t> BrokenForeignKeys(sqlite3* db) {
  auto check = Statement::Prepare(db, "SELECT COUNT(*) FROM pragma_foreign_key_check");
  if (!check) {
    return tl::unexpected(check.error());
  }
  auto row = check->Step();
  if (!row) {
    return tl::unexpected(row.error());
  }
  return *row ? check->Int(0) : 0;
}

// Applies one migration unless another process got there first: the version
// is read again under the write lock that BEGIN IMMEDIATE takes.
Result<bool> ApplyMigration(Database& db, const Migration& migration) {
  if (auto begun = db.Exec("BEGIN IMMEDIATE"); !begun) {
    return tl::unexpected(begun.error());
  }
  auto fail = [&db](Error error) -> Result<bool> {
    sqlite3_exec(db.Handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    return tl::unexpected(std::move(error));
  };

  auto current = ReadUserVersion(db.Handle());
  if (!current) {
    return fail(current.error());
  }
  if (*current >= migration.version) {
    sqlite3_exec(db.Handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    return false;
  }

  auto broken_before = BrokenForeignKeys(db.Handle());
  if (!broken_before) {
    return fail(broken_before.error());
  }

  const std::string sql(migration.sql);
  char* message = nullptr;
  const int rc = sqlite3_exec(db.Handle(), sql.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    Error error = SqliteError(db.Handle(), rc, "applying a migration");
    error.message = "migration " + std::string(migration.name) + ": " +
                    (message != nullptr ? message : error.message);
    sqlite3_free(message);
    return fail(std::move(error));
  }

  // What the SQL cannot do (the roll-ups of stored reports), in the same
  // transaction.
  if (auto after = AfterMigration(db, migration.version); !after) {
    return fail(after.error());
  }

  // Foreign keys are not enforced while migrating (Database::Migrate): a
  // migration that made a table anew must leave every key as it found it.
  auto broken_after = BrokenForeignKeys(db.Handle());
  if (!broken_after) {
    return fail(broken_after.error());
  }
  if (*broken_after > *broken_before) {
    return fail(
        Error(ErrorCode::kInternal, "migration " + std::string(migration.name) +
                                        " leaves rows whose foreign key points at nothing"));
  }

  const std::string set_version = "PRAGMA user_version = " + std::to_string(migration.version);
  if (auto set = db.Exec(set_version.c_str()); !set) {
    return fail(set.error());
  }
  if (auto committed = db.Exec("COMMIT"); !committed) {
    return fail(committed.error());
  }
  return true;
}

// PRAGMA max_page_count holds for this connection only, which is the
// writer's; SQLite keeps it at least at the current page count.
Result<void> LimitSize(sqlite3* db, uint64_t max_bytes) {
  auto page_size = Statement::Prepare(db, "PRAGMA page_size");
  if (!page_size) {
    return tl::unexpected(page_size.error());
  }
  auto row = page_size->Step();
  if (!row) {
    return tl::unexpected(row.error());
  }
  const int64_t bytes_per_page = *row ? page_size->Int(0) : 4096;
  const uint64_t pages = std::max<uint64_t>(1, max_bytes / static_cast<uint64_t>(bytes_per_page));
  const std::string pragma = "PRAGMA max_page_count = " + std::to_string(pages);
  auto limit = Statement::Prepare(db, pragma.c_str());
  if (!limit) {
    return tl::unexpected(limit.error());
  }
  auto set = limit->Step();
  if (!set) {
    return tl::unexpected(set.error());
  }
  return {};
}

}  // namespace

Error SqliteError(sqlite3* db, int rc, const char* what) {
  std::string message = what;
  message += ": ";
  if (db != nullptr && sqlite3_errcode(db) == rc) {
    message += sqlite3_errmsg(db);
  } else {
    message += sqlite3_errstr(rc);
  }

  // The primary code is the low byte; extended codes (SQLITE_IOERR_WRITE ...)
  // share it.
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error(ErrorCode::kDatabaseBusy, std::move(message));
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
      return Error(ErrorCode::kDatabase, std::move(message));
    case SQLITE_TOOBIG:
      return Error(ErrorCode::kTooLarge, std::move(message));
    default:
      // Constraint, misuse, schema: a bug in dmarcd rather than a fault of
      // the environment, so never retried.
      return Error(ErrorCode::kInternal, std::move(message));
  }
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                 const OpenOptions& options) {
  const int flags =
      (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX;
  sqlite3* handle = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &handle, flags, nullptr);
  // sqlite3_open_v2 hands back a handle even on failure; the Database owns
  // it from here so that every early return closes it.
  std::unique_ptr<Database> db(new Database(handle, path));
  if (rc != SQLITE_OK) {
    Error error = SqliteError(handle, rc, "opening the database");
    error.message += " (" + path + ")";
    return tl::unexpected(std::move(error));
  }
  sqlite3_extended_result_codes(handle, 1);
  sqlite3_busy_timeout(handle, options.busy_timeout_ms);

  // WAL lets the read-only connections read while the writer writes; with
  // WAL, synchronous=NORMAL loses at most the last commits on power loss,
  // never consistency. journal_mode is stored in the file, so read-only
  // connections inherit it.
  if (!options.read_only) {
    // 16 KiB pages instead of SQLite's 4 KiB: an ingest writes a quarter as
    // many pages, WAL frames and system calls for the same rows, which made
    // bench/ingest_bench.sh about 10 % faster (issue #7). The size is fixed
    // when the first table is written, so this only shapes a new file; a
    // database made with another page size keeps it. Before WAL, which
    // refuses a change of page size.
    if (auto page = db->Exec("PRAGMA page_size = 16384"); !page) {
      return tl::unexpected(page.error());
    }
    if (auto wal = db->Exec("PRAGMA journal_mode = WAL"); !wal) {
      return tl::unexpected(wal.error());
    }
    if (auto sync = db->Exec("PRAGMA synchronous = NORMAL"); !sync) {
      return tl::unexpected(sync.error());
    }
    // 4 MiB of page cache instead of SQLite's 2 MB: an ingest transaction
    // touches the index pages of a dozen tables, and spilling them to the
    // WAL before the commit costs more writes (measured in bench/). Small
    // enough to keep a big ingest under its memory target (issue #7).
    if (auto cache = db->Exec("PRAGMA cache_size = -4096"); !cache) {
      return tl::unexpected(cache.error());
    }
  }
  if (auto fk = db->Exec("PRAGMA foreign_keys = ON"); !fk) {
    return tl::unexpected(fk.error());
  }

  auto version = db->SchemaVersion();
  if (!version) {
    Error error = version.error();
    error.message += " (" + path + ")";
    return tl::unexpected(std::move(error));
  }
  if (*version > LatestSchemaVersion()) {
    return tl::unexpected(NewerSchemaError(*version));
  }
  if (*version < LatestSchemaVersion()) {
    if (options.read_only || !options.migrate) {
      return MakeError(ErrorCode::kConfig, "database schema version " + std::to_string(*version) +
                                               " is older than this dmarcd (" +
                                               std::to_string(LatestSchemaVersion()) +
                                               "); run `dmarcd migrate`");
    }
    if (auto migrated = db->Migrate(); !migrated) {
      return tl::unexpected(migrated.error());
    }
  }
  // After the migrations, so that a limit below the empty schema's size
  // cannot stop a new database from being created.
  if (!options.read_only && options.max_size_bytes > 0) {
    if (auto limited = LimitSize(db->Handle(), options.max_size_bytes); !limited) {
      return tl::unexpected(limited.error());
    }
  }
  return db;
}

Database::~Database() { sqlite3_close_v2(db_); }

Result<int> Database::SchemaVersion() const { return ReadUserVersion(db_); }

int Database::LatestSchemaVersion() { return static_cast<int>(Migrations().size()); }

Result<int> Database::Migrate() {
  auto version = SchemaVersion();
  if (!version) {
    return tl::unexpected(version.error());
  }
  if (*version > LatestSchemaVersion()) {
    return tl::unexpected(NewerSchemaError(*version));
  }

  // Each migration in its own transaction: a failure leaves the database at
  // the last version that applied whole. Foreign keys are not enforced
  // meanwhile (the pragma does nothing inside a transaction), as SQLite's
  // procedure for remaking a table asks; ApplyMigration checks them all
  // before each commit.
  if (auto off = Exec("PRAGMA foreign_keys = OFF"); !off) {
    return tl::unexpected(off.error());
  }
  int applied = 0;
  Result<int> outcome = 0;
  for (const Migration& migration : Migrations()) {
    if (migration.version <= *version) {
      continue;
    }
    auto done = ApplyMigration(*this, migration);
    if (!done) {
      outcome = tl::unexpected(done.error());
      break;
    }
    applied += *done ? 1 : 0;
  }
  if (auto on = Exec("PRAGMA foreign_keys = ON"); !on && outcome) {
    return tl::unexpected(on.error());
  }
  if (!outcome) {
    return outcome;
  }
  return applied;
}

Result<void> Database::Exec(const char* sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  sqlite3_free(message);
  if (rc != SQLITE_OK) {
    return tl::unexpected(SqliteError(db_, rc, sql));
  }
  return {};
}

}  // namespace dmarcd::storage
