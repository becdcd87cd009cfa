// `dmarcd fetch --once` against a private Dovecot while the database cannot
// take a commit (hostile/README.md: "nothing is marked processed until
// committed"): with the write lock held by another process, or at
// [database] max_size, every message stays in the INBOX, unfiled and
// stored nowhere; the next run after the fault is gone files them all
// and stores each report once.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <string>

#include "test_dovecot.hpp"
#include "tests/faults/fault_harness.hpp"

namespace dmarcd::faults {
namespace {

test::TestDovecot* shared_dovecot = nullptr;

class ImapDeferTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared_dovecot = new test::TestDovecot(); }
  static void TearDownTestSuite() {
    delete shared_dovecot;
    shared_dovecot = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(shared_dovecot->IsRunning()) << shared_dovecot->Failure();
    user_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& ch : user_) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    db_ = dir_.Path() / "dmarcd.db";
    ASSERT_EQ(RunDmarcd({"migrate", "--db", db_.string()}, dir_.Path()).exit_code, 0);
    // 400 records a report: more than the empty schema's 16 KiB pages hold,
    // so that a database that may not grow is full (FullDatabase... below).
    ASSERT_TRUE(GenerateReports(dir_.Path() / "mail", 3, 400, "eml", "imap-" + user_));
    for (const auto& entry : fs::directory_iterator(dir_.Path() / "mail")) {
      shared_dovecot->Deliver(user_, ReadFile(entry.path()));
    }
  }

  RunResult Fetch(const std::string& database_settings) {
    const fs::path config = dir_.Path() / "dmarcd.toml";
    std::ofstream file(config, std::ios::trunc);
    file << "[database]\npath = \"" << db_.string() << "\"\n"
         << database_settings << "\n[[imap]]\nname = \"reports\"\nhost = \"127.0.0.1\"\nport = "
         << shared_dovecot->ImapPort() << "\ntls = \"none\"\nuser = \"" << user_
         << "\"\npassword = \"secret\"\ninterval = \"1h\"\ntimeout = \"10s\"\n";
    file.close();
    return RunDmarcd({"fetch", "--once", "--config", config.string()}, dir_.Path());
  }

  size_t Folder(const std::string& mailbox) const {
    return shared_dovecot->Messages(user_, mailbox).size();
  }

  int64_t Reports() {
    Sqlite sqlite(db_);
    return sqlite.Int("SELECT COUNT(*) FROM reports").value_or(-1);
  }

  TempDir dir_{"dmarcd-imap-defer"};
  std::string user_;
  fs::path db_;
};

TEST_F(ImapDeferTest, LockedDatabaseLeavesEveryMessageForTheNextRun) {
  Sqlite locker(db_);
  ASSERT_TRUE(locker.Exec("BEGIN IMMEDIATE"));
  const RunResult locked = Fetch("busy_timeout = 100");
  ASSERT_TRUE(locker.Exec("COMMIT"));
  EXPECT_EQ(locked.exit_code, 3) << locked.out << locked.err;
  EXPECT_NE(locked.out.find("seen=3 stored=0 duplicate=0 rejected=0 deferred=3"), std::string::npos)
      << locked.out;
  EXPECT_EQ(Folder("INBOX"), 3u);
  EXPECT_EQ(Folder("Archive/Aggregate"), 0u);
  EXPECT_EQ(Folder("Archive/Invalid"), 0u);
  EXPECT_EQ(Reports(), 0);

  const RunResult next = Fetch("busy_timeout = 100");
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_NE(next.out.find("seen=3 stored=3 duplicate=0 rejected=0 deferred=0"), std::string::npos)
      << next.out;
  EXPECT_EQ(Folder("INBOX"), 0u);
  EXPECT_EQ(Folder("Archive/Aggregate"), 3u);
  EXPECT_EQ(Reports(), 3);
}

// The value of `key=` in fetch's summary line, or -1.
int Count(const std::string& out, const std::string& key) {
  const size_t at = out.find(" " + key + "=");
  return at == std::string::npos ? -1 : std::stoi(out.substr(at + key.size() + 2));
}

TEST_F(ImapDeferTest, FullDatabaseLeavesMessagesUntilTheLimitIsRaised) {
  // One byte: the database may not grow past the empty schema; what fits
  // in the pages it has free is stored and filed, the rest stays.
  const RunResult full = Fetch("max_size = 1");
  EXPECT_EQ(full.exit_code, 3) << full.out << full.err;
  const int stored = Count(full.out, "stored");
  const int deferred = Count(full.out, "deferred");
  EXPECT_EQ(stored + deferred, 3) << full.out;
  EXPECT_GE(deferred, 1) << full.out;
  EXPECT_NE(full.err.find("full"), std::string::npos) << full.err;
  EXPECT_EQ(Folder("INBOX"), static_cast<size_t>(deferred));
  EXPECT_EQ(Folder("Archive/Aggregate"), static_cast<size_t>(stored));
  EXPECT_EQ(Folder("Archive/Invalid"), 0u);
  EXPECT_EQ(Reports(), stored);
  EXPECT_EQ(IntegrityCheck(db_), "ok");
  {
    Sqlite sqlite(db_);
    EXPECT_EQ(sqlite.Int("SELECT COUNT(*) FROM rejected"), 0);
    EXPECT_EQ(sqlite.Int("SELECT COUNT(*) FROM raw_inputs"), stored);
  }

  const RunResult raised = Fetch("max_size = 0");
  EXPECT_EQ(raised.exit_code, 0) << raised.err;
  EXPECT_EQ(Count(raised.out, "stored"), deferred) << raised.out;
  EXPECT_EQ(Folder("INBOX"), 0u);
  EXPECT_EQ(Folder("Archive/Aggregate"), 3u);
  EXPECT_EQ(Reports(), 3);
}

}  // namespace
}  // namespace dmarcd::faults
