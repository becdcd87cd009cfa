// The poller against a scripted IMAP server (fake_imap_server.hpp) playing
// each fault of imap_hostile_responses.txt (issue #6): dmarcd survives it,
// gives up on the connection within the configured timeout, reconnects on
// the next poll and, once the fault is gone, stores every message exactly
// once (lost 0, duplicates 0).
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fake_imap_server.hpp"
#include "server/imap_poller.hpp"
#include "server/ingest_queue.hpp"
#include "storage/database.hpp"
#include "storage/writer.hpp"
#include "test_dovecot.hpp"

namespace dmarcd::server {
namespace {

namespace fs = std::filesystem;
using test::FakeImapServer;
using test::ImapFault;

const fs::path kData = DMARCD_TEST_DATA_DIR;
constexpr std::chrono::seconds kTimeout{2};

// Three emails with three different reports.
std::vector<std::string> Mails() {
  std::vector<std::string> mails;
  for (const char* name :
       {"corpus/mail/google_single-part-zip_mox.eml", "corpus/mail/mailru_gzip-base64-text_mox.eml",
        "cases/01-uncompressed-xml-attachment/report.eml"}) {
    mails.push_back(test::ReadFile(kData / name));
  }
  return mails;
}

int64_t QueryInt(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* statement = nullptr;
  int64_t value = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
      sqlite3_step(statement) == SQLITE_ROW) {
    value = sqlite3_column_int64(statement, 0);
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return value;
}

class ImapFaultTest : public ::testing::TestWithParam<ImapFault> {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "dmarcd-imap-fault-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    db_path_ = (dir_ / "dmarcd.db").string();
    auto db = storage::Database::Open(db_path_);
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
    writer_ = std::make_unique<storage::Writer>(*db_, parser::Limits{});
    auto state = ImapStateStore::Open(db_path_, 5000);
    ASSERT_TRUE(state) << state.error().ToString();
    state_ = std::move(*state);

    account_.name = "reports";
    account_.host = "127.0.0.1";
    account_.tls = ImapTls::kNone;
    account_.user = "dmarc";
    account_.password = "secret";
    account_.timeout = kTimeout;
    account_.interval = std::chrono::seconds(1);
  }

  void TearDown() override {
    state_.reset();
    writer_.reset();
    db_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  IngestFunction Ingest() {
    return [this](const parser::Envelope& envelope) {
      std::lock_guard lock(mutex_);
      return IngestWithRetry(*writer_, envelope);
    };
  }

  int64_t Count(const std::string& sql) const { return QueryInt(db_path_, sql); }

  fs::path dir_;
  std::string db_path_;
  ImapAccount account_;
  std::mutex mutex_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<storage::Writer> writer_;
  std::unique_ptr<ImapStateStore> state_;
};

bool FaultsAFetch(ImapFault fault) {
  return fault == ImapFault::kDisconnectMidLiteral || fault == ImapFault::kUntaggedGarbage ||
         fault == ImapFault::kTaggedNo || fault == ImapFault::kWrongTag;
}

TEST_P(ImapFaultTest, SurvivesReconnectsAndStoresEverythingOnce) {
  const ImapFault fault = GetParam();
  FakeImapServer server(Mails(), fault);
  ASSERT_NE(server.Port(), 0);
  account_.port = server.Port();
  ImapPoller poller(account_, Ingest(), *state_);

  // The poller of `serve` reuses one client, and so one libcurl handle, for
  // every poll: the same here.
  PollStats totals;
  std::vector<PollStats> polls;
  while (polls.size() < 4 && !server.Inbox().empty()) {
    const auto start = std::chrono::steady_clock::now();
    const PollStats stats = poller.Poll();
    const auto took = std::chrono::steady_clock::now() - start;
    // ImapClient's bound: the stalled answer, then the LOGOUT on closing.
    EXPECT_LT(took, 2 * kTimeout + std::chrono::seconds(3)) << "poll " << polls.size() + 1;
    totals.stored += stats.stored;
    totals.duplicate += stats.duplicate;
    totals.rejected += stats.rejected;
    polls.push_back(stats);
  }

  EXPECT_TRUE(server.Faulted());
  ASSERT_GE(polls.size(), 2u) << "the fault went unnoticed";
  // The first poll met the fault: it reports an error and marks nothing
  // it did not commit.
  ASSERT_TRUE(polls[0].error);
  EXPECT_EQ(polls[0].error->code, ErrorCode::kNetwork) << polls[0].error->ToString();
  EXPECT_EQ(polls[0].stored, 0u);
  EXPECT_EQ(polls[0].rejected, 0u);
  EXPECT_EQ(polls[0].deferred, FaultsAFetch(fault) ? 3u : 0u);
  EXPECT_FALSE(polls.back().error) << polls.back().error->ToString();

  // Lost 0, duplicates 0.
  EXPECT_TRUE(server.Inbox().empty());
  EXPECT_EQ(server.Folder("Archive/Aggregate"), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_TRUE(server.Folder("Archive/Invalid").empty());
  EXPECT_EQ(totals.stored, 3u);
  EXPECT_EQ(totals.duplicate, 0u);
  EXPECT_EQ(totals.rejected, 0u);
  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM rejected"), 0);

  // Only the message whose download met the fault was asked for twice.
  EXPECT_EQ(server.BodyFetches(1), FaultsAFetch(fault) ? 2 : 1);
  EXPECT_EQ(server.BodyFetches(2), 1);
  EXPECT_EQ(server.BodyFetches(3), 1);
  EXPECT_GE(server.Connections(), 2);
}

INSTANTIATE_TEST_SUITE_P(Scripts, ImapFaultTest,
                         ::testing::Values(ImapFault::kGreetingGarbage,
                                           ImapFault::kDisconnectAfterLogin,
                                           ImapFault::kDisconnectMidLiteral,
                                           ImapFault::kUntaggedGarbage, ImapFault::kTaggedNo,
                                           ImapFault::kStall, ImapFault::kWrongTag),
                         [](const ::testing::TestParamInfo<ImapFault>& param_info) {
                           std::string name = test::ImapFaultName(param_info.param);
                           for (char& ch : name) {
                             if (ch == '_') ch = 'X';
                           }
                           return name;
                         });

TEST_F(ImapFaultTest, ServiceBacksOffAndRecoversByItself) {
  FakeImapServer server(Mails(), ImapFault::kStall);
  account_.port = server.Port();
  ImapHealth health;
  ImapService service({account_}, Ingest(), db_path_, 5000, &health);

  const auto start = std::chrono::steady_clock::now();
  service.Start();
  while (!server.Inbox().empty() &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto took = std::chrono::steady_clock::now() - start;
  service.Stop();

  // A stalled poll gives up after the timeout, the next comes after the
  // first back-off step (the interval, 1 s, here) over a new connection.
  EXPECT_TRUE(server.Inbox().empty());
  EXPECT_GE(took, kTimeout + std::chrono::seconds(1));
  EXPECT_GE(server.Connections(), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 3);
  const std::vector<ImapHealth::Account> accounts = health.Snapshot();
  ASSERT_EQ(accounts.size(), 1u);
  EXPECT_GE(accounts[0].failed_polls, 1u);
  EXPECT_TRUE(accounts[0].ok);
}

}  // namespace
}  // namespace dmarcd::server
