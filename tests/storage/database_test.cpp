#include "storage/database.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

#include "storage/migrations.hpp"
#include "temp_database.hpp"

namespace dmarcd::storage {
namespace {

using testing::QueryInt;
using testing::QueryText;
using testing::TempFolder;

class DatabaseTest : public ::testing::Test {
 protected:
  TempFolder folder_;
  std::string path_ = folder_.File("dmarcd.db");
};

TEST_F(DatabaseTest, MigrationsAreNumberedWithoutGaps) {
  const auto migrations = Migrations();
  ASSERT_FALSE(migrations.empty());
  for (size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, static_cast<int>(i) + 1);
    EXPECT_FALSE(migrations[i].sql.empty());
  }
  EXPECT_EQ(migrations[0].name, "0001_initial.sql");
  EXPECT_EQ(Database::LatestSchemaVersion(), static_cast<int>(migrations.size()));
}

TEST_F(DatabaseTest, FreshDatabaseReachesLatestVersion) {
  auto db = Database::Open(path_);
  ASSERT_TRUE(db) << db.error().ToString();
  auto version = (*db)->SchemaVersion();
  ASSERT_TRUE(version);
  EXPECT_EQ(*version, Database::LatestSchemaVersion());
  EXPECT_EQ(QueryInt(**db,
                     "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                     "('raw_inputs', 'reports', 'records', 'record_reasons', "
                     "'dkim_results', 'spf_results', 'report_days', 'rejected', "
                     "'api_tokens')"),
            9);
}

TEST_F(DatabaseTest, ReopeningAppliesNothing) {
  ASSERT_TRUE(Database::Open(path_));
  auto db = Database::Open(path_);
  ASSERT_TRUE(db) << db.error().ToString();
  auto applied = (*db)->Migrate();
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ(*applied, 0);
  EXPECT_EQ((*db)->SchemaVersion().value(), Database::LatestSchemaVersion());
}

TEST_F(DatabaseTest, MigrateOnEmptyFileAppliesEveryMigration) {
  auto db = Database::Open(path_, OpenOptions{.read_only = false, .migrate = false});
  // An empty file is behind; without migrate it is refused.
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, ErrorCode::kConfig);

  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  sqlite3_close(raw);
  auto opened = Database::Open(path_);
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_EQ(QueryInt(**opened, "PRAGMA user_version"), Database::LatestSchemaVersion());
}

TEST_F(DatabaseTest, RefusesNewerSchemaNamingBothVersions) {
  ASSERT_TRUE(Database::Open(path_));
  const int newer = Database::LatestSchemaVersion() + 1;
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  const std::string set = "PRAGMA user_version = " + std::to_string(newer);
  ASSERT_EQ(sqlite3_exec(raw, set.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);

  for (bool read_only : {false, true}) {
    auto db = Database::Open(path_, OpenOptions{.read_only = read_only});
    ASSERT_FALSE(db);
    EXPECT_EQ(db.error().code, ErrorCode::kConfig);
    EXPECT_EQ(db.error().message, "database schema version " + std::to_string(newer) +
                                      " is newer than this dmarcd (knows up to " +
                                      std::to_string(Database::LatestSchemaVersion()) +
                                      "); upgrade dmarcd");
  }
}

TEST_F(DatabaseTest, WalModeAndForeignKeysAreOn) {
  auto db = Database::Open(path_);
  ASSERT_TRUE(db);
  EXPECT_EQ(QueryText(**db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(QueryInt(**db, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(QueryInt(**db, "PRAGMA synchronous"), 1);  // NORMAL

  auto reader = Database::Open(path_, OpenOptions{.read_only = true});
  ASSERT_TRUE(reader) << reader.error().ToString();
  EXPECT_EQ(QueryText(**reader, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(QueryInt(**reader, "PRAGMA foreign_keys"), 1);
}

TEST_F(DatabaseTest, ReadOnlyOpenNeverMigratesOrWrites) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  sqlite3_close(raw);
  auto behind = Database::Open(path_, OpenOptions{.read_only = true});
  ASSERT_FALSE(behind);
  EXPECT_EQ(behind.error().code, ErrorCode::kConfig);

  ASSERT_TRUE(Database::Open(path_));
  auto reader = Database::Open(path_, OpenOptions{.read_only = true});
  ASSERT_TRUE(reader) << reader.error().ToString();
  auto write = (*reader)->Exec("DELETE FROM reports");
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code, ErrorCode::kDatabase);
}

TEST_F(DatabaseTest, MissingFileIsAnErrorForReadOnly) {
  auto db = Database::Open(folder_.File("absent.db"), OpenOptions{.read_only = true});
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, ErrorCode::kDatabase);
  EXPECT_NE(db.error().message.find("absent.db"), std::string::npos);
}

TEST_F(DatabaseTest, LockHeldElsewhereIsBusy) {
  auto first = Database::Open(path_);
  auto second = Database::Open(path_, OpenOptions{.busy_timeout_ms = 10});
  ASSERT_TRUE(first && second);
  ASSERT_TRUE((*first)->Exec("BEGIN IMMEDIATE"));
  auto blocked = (*second)->Exec("BEGIN IMMEDIATE");
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, ErrorCode::kDatabaseBusy);
  EXPECT_TRUE(IsTransient(blocked.error().code));
  ASSERT_TRUE((*first)->Exec("ROLLBACK"));
}

TEST_F(DatabaseTest, ReadersReadWhileTheWriterWrites) {
  auto writer = Database::Open(path_);
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->Exec(
      "INSERT INTO api_tokens (name, scope, secret_sha256, created_at) VALUES ('a', 'read', "
      "'00', 1)"));
  auto reader = Database::Open(path_, OpenOptions{.read_only = true, .busy_timeout_ms = 10});
  ASSERT_TRUE(reader);

  ASSERT_TRUE((*writer)->Exec("BEGIN IMMEDIATE"));
  ASSERT_TRUE((*writer)->Exec(
      "INSERT INTO api_tokens (name, scope, secret_sha256, created_at) VALUES ('b', 'read', "
      "'01', 1)"));
  // WAL: the reader neither waits nor sees the open transaction.
  EXPECT_EQ(QueryInt(**reader, "SELECT COUNT(*) FROM api_tokens"), 1);
  ASSERT_TRUE((*writer)->Exec("COMMIT"));
  EXPECT_EQ(QueryInt(**reader, "SELECT COUNT(*) FROM api_tokens"), 2);
}

TEST(SqliteErrorTest, MapsResultCodes) {
  EXPECT_EQ(SqliteError(nullptr, SQLITE_BUSY, "x").code, ErrorCode::kDatabaseBusy);
  EXPECT_EQ(SqliteError(nullptr, SQLITE_LOCKED, "x").code, ErrorCode::kDatabaseBusy);
  EXPECT_EQ(SqliteError(nullptr, SQLITE_FULL, "x").code, ErrorCode::kDatabase);
  EXPECT_EQ(SqliteError(nullptr, SQLITE_IOERR_WRITE, "x").code, ErrorCode::kDatabase);
  EXPECT_EQ(SqliteError(nullptr, SQLITE_CONSTRAINT, "x").code, ErrorCode::kInternal);
  EXPECT_EQ(SqliteError(nullptr, SQLITE_FULL, "storing").message,
            "storing: database or disk is full");
}

}  // namespace
}  // namespace dmarcd::storage
