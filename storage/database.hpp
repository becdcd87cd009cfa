// Opening the SQLite database and bringing its schema up to date.
//
// The schema is the numbered SQL files in migrations/, compiled into the
// binary and applied in order inside one transaction each; the version
// reached is kept in the database (PRAGMA user_version). A database whose
// version is newer than this program knows is refused.
//
// One Database is one connection: use it from one thread at a time. The
// writer owns a read-write one; readers each own a read-only one. WAL mode
// lets readers read while the writer writes.
#pragma once

#include <memory>
#include <string>

#include "parser/error.hpp"

struct sqlite3;

namespace dmarcd::storage {

struct OpenOptions {
  bool read_only = false;
  // Apply pending migrations when opening read-write. When false, a
  // database that is behind is refused (kConfig) instead.
  bool migrate = true;
  // How long a statement waits for another connection's lock before it
  // fails with kDatabaseBusy.
  int busy_timeout_ms = 5000;
  // Read-write only: the largest size in bytes the file may grow to (PRAGMA
  // max_page_count, rounded down to whole pages, never below the size it
  // already has), 0 for no limit. A write past it fails with kDatabase
  // (SQLITE_FULL) and its transaction is rolled back.
  uint64_t max_size_bytes = 0;
};

class Database {
 public:
  // Creates the file when missing (read-write only).
  static Result<std::unique_ptr<Database>> Open(const std::string& path,
                                                const OpenOptions& options = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  sqlite3* Handle() const { return db_; }
  const std::string& Path() const { return path_; }

  // Version of the schema in the file, and the newest this program has.
  Result<int> SchemaVersion() const;
  static int LatestSchemaVersion();

  // Applies every pending migration; returns how many were applied.
  Result<int> Migrate();

  // Runs SQL that returns no rows (BEGIN, COMMIT, SAVEPOINT ...).
  Result<void> Exec(const char* sql);

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
};

// Maps a SQLite result code to an Error: SQLITE_BUSY and SQLITE_LOCKED
// become kDatabaseBusy, SQLITE_FULL and I/O errors kDatabase.
Error SqliteError(sqlite3* db, int rc, const char* what);

}  // namespace dmarcd::storage
