// The real dmarcd binary against a private Dovecot: `dmarcd fetch --once`
// files a mailbox and stores what it held; a move that fails after the
// commit is finished as a duplicate by the next run; `dmarcd serve` with a
// refused login reports the account on /healthz while HTTP keeps serving.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test_dovecot.hpp"

namespace dmarcd::test {
namespace {

namespace fs = std::filesystem;

const fs::path kData = DMARCD_TEST_DATA_DIR;

TestDovecot* shared_dovecot = nullptr;

struct Finished {
  int status = -1;  // exit status, -1 when killed by a signal or still running
  std::string out;
  std::string err;
};

// Runs dmarcd with stdout and stderr in files of `dir`; returns its pid.
pid_t Start(const std::vector<std::string>& args, const fs::path& dir) {
  const std::string out = (dir / "stdout.txt").string();
  const std::string err = (dir / "stderr.txt").string();
  const pid_t pid = fork();
  if (pid == 0) {
    std::freopen(out.c_str(), "w", stdout);
    std::freopen(err.c_str(), "w", stderr);
    std::vector<std::string> full = {DMARCD_BINARY};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(full.size() + 1);
    for (std::string& arg : full) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(DMARCD_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

Finished Wait(pid_t pid, const fs::path& dir) {
  int status = 0;
  waitpid(pid, &status, 0);
  Finished finished;
  finished.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  finished.out = ReadFile(dir / "stdout.txt");
  finished.err = ReadFile(dir / "stderr.txt");
  return finished;
}

int64_t QueryInt(const fs::path& db_path, const std::string& sql) {
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

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// GET over HTTP; returns the status (0 when the connection failed) and body.
std::pair<long, std::string> Get(const std::string& url) {
  CURL* curl = curl_easy_init();
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  }
  curl_easy_cleanup(curl);
  return {status, body};
}

class FetchCommandTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared_dovecot = new TestDovecot(); }
  static void TearDownTestSuite() {
    delete shared_dovecot;
    shared_dovecot = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(shared_dovecot->IsRunning()) << shared_dovecot->Failure();
    user_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& ch : user_) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    dir_ = shared_dovecot->Dir() / ("run-" + user_);
    fs::create_directories(dir_);
    db_path_ = dir_ / "dmarcd.db";
  }

  // A configuration with one account per (name, password) pair.
  fs::path WriteConfig(const std::vector<std::pair<std::string, std::string>>& accounts) {
    fs::path path = dir_ / "dmarcd.toml";
    std::ofstream config(path);
    config << "[database]\npath = \"" << db_path_.string() << "\"\n";
    for (const auto& [name, password] : accounts) {
      config << "\n[[imap]]\nname = \"" << name
             << "\"\nhost = \"127.0.0.1\"\nport = " << shared_dovecot->ImapPort()
             << "\ntls = \"none\"\nuser = \"" << user_ << "\"\npassword = \"" << password
             << "\"\ninterval = \"1h\"\ntimeout = \"10s\"\n";
    }
    return path;
  }

  void Deliver(const std::vector<fs::path>& files) {
    for (const fs::path& file : files) shared_dovecot->Deliver(user_, ReadFile(file));
  }

  size_t FolderSize(const std::string& mailbox) const {
    return shared_dovecot->Messages(user_, mailbox).size();
  }

  std::string user_;
  fs::path dir_;
  fs::path db_path_;
};

TEST_F(FetchCommandTest, FetchOnceFilesTheMailboxAndStoresItsReports) {
  Deliver({kData / "corpus/mail/google_single-part-zip_mox.eml",
           kData / "corpus/mail/mailru_gzip-base64-text_stalwart.eml",
           kData / "imap/linkedin_ruf_parsedmarc.eml", kData / "imap/broken_truncated-gzip.eml"});
  const fs::path config = WriteConfig({{"reports", "secret"}});

  const Finished run = Wait(Start({"fetch", "--once", "--config", config.string()}, dir_), dir_);
  // Exit 1: something was rejected (the broken email).
  EXPECT_EQ(run.status, 1) << run.err;
  EXPECT_NE(run.out.find("fetch: account=reports seen=4 stored=3 duplicate=0 rejected=1 "
                         "deferred=0"),
            std::string::npos)
      << run.out;
  EXPECT_EQ(FolderSize("INBOX"), 0u);
  EXPECT_EQ(FolderSize("Archive/Aggregate"), 2u);
  EXPECT_EQ(FolderSize("Archive/Failure"), 1u);
  EXPECT_EQ(FolderSize("Archive/Invalid"), 1u);
  EXPECT_EQ(QueryInt(db_path_, "SELECT count(*) FROM reports"), 2);
  EXPECT_EQ(QueryInt(db_path_, "SELECT count(*) FROM rejected WHERE code = 'bad_archive'"), 1);

  const Finished again = Wait(Start({"fetch", "--once", "--config", config.string()}, dir_), dir_);
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.out.find("seen=0 "), std::string::npos) << again.out;
}

TEST_F(FetchCommandTest, MessageCommittedButNotMovedIsMovedAsADuplicateByTheNextRun) {
  const fs::path config = WriteConfig({{"reports", "secret"}});
  // An empty first run creates the archive folders.
  ASSERT_EQ(Wait(Start({"fetch", "--once", "--config", config.string()}, dir_), dir_).status, 0);
  Deliver({kData / "corpus/mail/google_single-part-zip_mox.eml"});
  // Dovecot (running as nobody) cannot write Archive/Aggregate: the move
  // after the commit fails, as when dmarcd dies between the two.
  const fs::path aggregate = shared_dovecot->MailboxDir(user_, "Archive/Aggregate");
  for (const char* sub : {"", "cur", "new", "tmp"}) chmod((aggregate / sub).c_str(), 0500);

  const Finished failed = Wait(Start({"fetch", "--once", "--config", config.string()}, dir_), dir_);
  for (const char* sub : {"", "cur", "new", "tmp"}) chmod((aggregate / sub).c_str(), 0700);
  EXPECT_EQ(failed.status, 3) << failed.err;
  EXPECT_NE(failed.err.find("account=reports"), std::string::npos) << failed.err;
  EXPECT_EQ(FolderSize("INBOX"), 1u);
  EXPECT_EQ(QueryInt(db_path_, "SELECT count(*) FROM reports"), 1);

  const Finished next = Wait(Start({"fetch", "--once", "--config", config.string()}, dir_), dir_);
  EXPECT_EQ(next.status, 0) << next.err;
  EXPECT_NE(next.out.find("seen=1 stored=0 duplicate=1 rejected=0 deferred=0"), std::string::npos)
      << next.out;
  EXPECT_EQ(FolderSize("INBOX"), 0u);
  EXPECT_EQ(FolderSize("Archive/Aggregate"), 1u);
  EXPECT_EQ(QueryInt(db_path_, "SELECT count(*) FROM reports"), 1);
}

TEST_F(FetchCommandTest, ServeNamesAFailingAccountOnHealthzAndKeepsServing) {
  Deliver({kData / "corpus/mail/google_single-part-zip_mox.eml"});
  const fs::path config = WriteConfig({{"good", "secret"}, {"locked", "not-the-secret"}});
  const fs::path port_file = dir_ / "port";
  const pid_t pid = Start({"serve", "--config", config.string(), "--listen", "127.0.0.1:0",
                           "--port-file", port_file.string()},
                          dir_);

  // The good account empties the mailbox; the locked one fails its login.
  std::string base;
  std::pair<long, std::string> health;
  for (int i = 0; i < 300; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (base.empty() && fs::exists(port_file)) {
      base = "http://127.0.0.1:" + ReadFile(port_file).substr(0, ReadFile(port_file).find('\n'));
    }
    if (base.empty()) continue;
    health = Get(base + "/healthz");
    if (health.first == 503 && health.second.find("imap:good") != std::string::npos &&
        FolderSize("INBOX") == 0) {
      break;
    }
  }
  EXPECT_EQ(health.first, 503) << health.second;
  EXPECT_NE(health.second.find("\"imap:locked\""), std::string::npos) << health.second;
  EXPECT_NE(health.second.find("unauthorized"), std::string::npos) << health.second;
  EXPECT_NE(health.second.find("\"imap:good\":\"ok\""), std::string::npos) << health.second;
  const auto domains = Get(base + "/api/v1/domains");
  EXPECT_EQ(domains.first, 200);
  EXPECT_NE(domains.second.find("ueber.net"), std::string::npos) << domains.second;
  EXPECT_EQ(FolderSize("Archive/Aggregate"), 1u);

  kill(pid, SIGTERM);
  const Finished stopped = Wait(pid, dir_);
  EXPECT_EQ(stopped.status, 0) << stopped.err;
  EXPECT_NE(stopped.err.find("account=locked"), std::string::npos) << stopped.err;
  EXPECT_NE(stopped.err.find("unauthorized: STATUS: Login denied"), std::string::npos)
      << stopped.err;
}

}  // namespace
}  // namespace dmarcd::test
