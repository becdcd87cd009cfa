// The poller against a real Dovecot (test_dovecot.hpp), in process: which
// folder each message ends in, what the database holds, and the faults of
// issue #3 (a connection cut mid-fetch, a move that fails after the commit,
// TLS verification, a refused login, a missing mailbox).
#include "server/imap_poller.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "server/ingest_queue.hpp"
#include "storage/database.hpp"
#include "storage/writer.hpp"
#include "test_dovecot.hpp"

namespace dmarcd::server {
namespace {

namespace fs = std::filesystem;
using test::ReadFile;
using test::TestDovecot;

const fs::path kData = DMARCD_TEST_DATA_DIR;

// Reports that store: nine real provider emails and three fault cases.
std::vector<fs::path> AggregateMails() {
  return {kData / "corpus/mail/google_single-part-zip_mox.eml",
          kData / "corpus/mail/google_single-part-zip_stalwart.eml",
          kData / "corpus/mail/google_zip-attachment-borschow_parsedmarc.eml",
          kData / "corpus/mail/google_zip-attachment-twlnet_parsedmarc.eml",
          kData / "corpus/mail/mailru_gzip-base64-text_mox.eml",
          kData / "corpus/mail/mailru_gzip-base64-text_stalwart.eml",
          kData / "corpus/mail/outlook_gzip-related-html_stalwart.eml",
          kData / "corpus/mail/outlook_preview-subject-related-html_mox.eml",
          kData / "corpus/mail/yahoo_gzip-binary-cte_mox.eml",
          kData / "cases/01-uncompressed-xml-attachment/report.eml",
          kData / "cases/02-octet-stream-gzip/report.eml",
          kData / "cases/06-misspelled-content-type-header/report.eml"};
}

std::vector<fs::path> FailureMails() {
  return {kData / "imap/linkedin_ruf_parsedmarc.eml",
          kData / "imap/rfc6591-example_auth-failure-bodyhash_stalwart.eml",
          kData / "cases/22-arf-source-ip-with-comment/failure.eml",
          kData / "cases/23-forensic-base64-without-padding/failure.eml"};
}

std::vector<fs::path> InvalidMails() {
  return {kData / "corpus/mail/synthetic_gzip-attachment-not-a-report_kerrigan.eml",
          kData / "corpus/mail/synthetic_no-attachment_kerrigan.eml",
          kData / "cases/07-gzip-payload-not-xml/report.eml",
          kData / "imap/broken_truncated-gzip.eml"};
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

// Sorted contents, so that folders compare as sets of messages.
std::vector<std::string> Contents(const std::vector<fs::path>& files) {
  std::vector<std::string> out;
  out.reserve(files.size());
  for (const fs::path& file : files) out.push_back(ReadFile(file));
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Sorted(std::vector<std::string> messages) {
  std::sort(messages.begin(), messages.end());
  return messages;
}

void SetWritable(const fs::path& folder, bool writable) {
  for (const fs::path& dir : {folder, folder / "cur", folder / "new", folder / "tmp"}) {
    chmod(dir.c_str(), writable ? 0700 : 0500);
  }
}

// One Dovecot for the whole suite, stopped in TearDownTestSuite.
TestDovecot* shared_dovecot = nullptr;

class ImapPollerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared_dovecot = new TestDovecot(); }
  static void TearDownTestSuite() {
    if (getenv("DMARCD_IMAP_TEST_LOG") != nullptr)
      fprintf(stderr, "%s", shared_dovecot->LogText().c_str());
    delete shared_dovecot;
    shared_dovecot = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(shared_dovecot->IsRunning()) << shared_dovecot->Failure();
    // Every test has its own user, so its own Maildir, and its own database.
    // Dovecot folds user names to lower case (auth_username_format %Lu).
    user_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& ch : user_) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    db_path_ = (shared_dovecot->Dir() / (user_ + ".db")).string();
    account_.name = "reports";
    account_.host = "127.0.0.1";
    account_.port = shared_dovecot->ImapPort();
    account_.tls = ImapTls::kNone;
    account_.user = user_;
    account_.password = "secret";
    account_.timeout = std::chrono::seconds(10);
    auto db = storage::Database::Open(db_path_);
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
    writer_ = std::make_unique<storage::Writer>(*db_, parser::Limits{});
    auto state = ImapStateStore::Open(db_path_, 5000);
    ASSERT_TRUE(state) << state.error().ToString();
    state_ = std::move(*state);
  }

  void Deliver(const std::vector<fs::path>& files) {
    for (const fs::path& file : files) {
      const std::string bytes = ReadFile(file);
      ASSERT_FALSE(bytes.empty()) << file;
      shared_dovecot->Deliver(user_, bytes);
    }
  }

  std::unique_ptr<ImapPoller> MakePoller() {
    return std::make_unique<ImapPoller>(
        account_,
        [this](const parser::Envelope& envelope) { return IngestWithRetry(*writer_, envelope); },
        *state_);
  }

  PollStats PollOnce() { return MakePoller()->Poll(); }

  std::vector<std::string> Folder(const std::string& mailbox) const {
    return Sorted(shared_dovecot->Messages(user_, mailbox));
  }

  int64_t Count(const std::string& sql) const { return QueryInt(db_path_, sql); }

  std::string user_;
  std::string db_path_;
  ImapAccount account_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<storage::Writer> writer_;
  std::unique_ptr<ImapStateStore> state_;
};

TEST_F(ImapPollerTest, FilesEveryMessageInTheFolderForItsOutcome) {
  Deliver(AggregateMails());
  Deliver(FailureMails());
  Deliver(InvalidMails());

  const PollStats stats = PollOnce();
  ASSERT_FALSE(stats.error) << stats.error->ToString() << shared_dovecot->LogText();
  EXPECT_EQ(stats.seen, 20u);
  EXPECT_EQ(stats.stored, 16u);
  EXPECT_EQ(stats.duplicate, 0u);
  EXPECT_EQ(stats.rejected, 4u);
  EXPECT_EQ(stats.deferred, 0u);

  EXPECT_TRUE(Folder("INBOX").empty());
  EXPECT_EQ(Folder("Archive/Aggregate"), Contents(AggregateMails()));
  EXPECT_EQ(Folder("Archive/Failure"), Contents(FailureMails()));
  EXPECT_EQ(Folder("Archive/Invalid"), Contents(InvalidMails()));

  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 12);
  EXPECT_EQ(Count("SELECT count(*) FROM failure_reports"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM rejected"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM raw_inputs WHERE origin LIKE 'imap:reports/INBOX;%'"), 20);
  EXPECT_EQ(Count("SELECT count(*) FROM reports WHERE domain = 'example.com' AND report_id = "
                  "'filter-20250101-0001'"),
            1);

  const PollStats again = PollOnce();
  EXPECT_FALSE(again.error);
  EXPECT_EQ(again.seen, 0u);
  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 12);
}

TEST_F(ImapPollerTest, DuplicateGoesWhereTheOriginalWent) {
  const fs::path report = kData / "cases/01-uncompressed-xml-attachment/report.eml";
  const fs::path failure = kData / "cases/22-arf-source-ip-with-comment/failure.eml";
  Deliver({report, failure, report, failure});

  const PollStats stats = PollOnce();
  ASSERT_FALSE(stats.error) << stats.error->ToString();
  EXPECT_EQ(stats.stored, 2u);
  EXPECT_EQ(stats.duplicate, 2u);
  EXPECT_EQ(stats.rejected, 0u);
  EXPECT_EQ(Folder("Archive/Aggregate"), Contents({report, report}));
  EXPECT_EQ(Folder("Archive/Failure"), Contents({failure, failure}));
  EXPECT_TRUE(Folder("Archive/Invalid").empty());
  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM failure_reports"), 1);
}

TEST_F(ImapPollerTest, KeepLeavesMessagesAndDoesNotFetchThemAgain) {
  account_.after = AfterFetch::kKeep;
  Deliver({AggregateMails()[0], AggregateMails()[1], InvalidMails()[0]});

  const PollStats first = PollOnce();
  ASSERT_FALSE(first.error) << first.error->ToString();
  EXPECT_EQ(first.seen, 3u);
  EXPECT_EQ(first.stored, 2u);
  EXPECT_EQ(first.rejected, 1u);
  EXPECT_EQ(Folder("INBOX").size(), 3u);
  EXPECT_FALSE(fs::exists(shared_dovecot->MailboxDir(user_, "Archive/Aggregate")));
  EXPECT_EQ(Count("SELECT last_uid FROM imap_state WHERE account = 'reports'"), 3);

  EXPECT_EQ(PollOnce().seen, 0u);
  Deliver({AggregateMails()[2]});
  const PollStats third = PollOnce();
  EXPECT_EQ(third.seen, 1u);
  EXPECT_EQ(third.stored, 1u);
  EXPECT_EQ(Count("SELECT last_uid FROM imap_state WHERE account = 'reports'"), 4);
  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 3);
}

TEST_F(ImapPollerTest, DeleteExpungesOnlyAfterTheCommit) {
  account_.after = AfterFetch::kDelete;
  Deliver({AggregateMails()[0], InvalidMails()[0]});

  const PollStats stats = PollOnce();
  ASSERT_FALSE(stats.error) << stats.error->ToString();
  EXPECT_EQ(stats.stored, 1u);
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_TRUE(Folder("INBOX").empty());
  EXPECT_FALSE(fs::exists(shared_dovecot->MailboxDir(user_, "Archive/Aggregate")));
  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM rejected"), 1);
}

TEST_F(ImapPollerTest, ImplicitTlsWithTheTrustedCaWorks) {
  account_.tls = ImapTls::kImplicit;
  account_.port = shared_dovecot->ImapsPort();
  account_.ca_file = shared_dovecot->CaFile().string();
  Deliver({AggregateMails()[0]});

  const PollStats stats = PollOnce();
  ASSERT_FALSE(stats.error) << stats.error->ToString();
  EXPECT_EQ(stats.stored, 1u);
  EXPECT_EQ(Folder("Archive/Aggregate").size(), 1u);
}

TEST_F(ImapPollerTest, StartTlsWithTheTrustedCaWorks) {
  account_.tls = ImapTls::kStartTls;
  account_.host = "localhost";
  account_.ca_file = shared_dovecot->CaFile().string();
  Deliver({AggregateMails()[0]});

  const PollStats stats = PollOnce();
  ASSERT_FALSE(stats.error) << stats.error->ToString();
  EXPECT_EQ(stats.stored, 1u);
}

TEST_F(ImapPollerTest, RefusesACertificateFromAnUntrustedCa) {
  account_.tls = ImapTls::kImplicit;
  account_.port = shared_dovecot->ImapsPort();
  account_.ca_file = shared_dovecot->OtherCaFile().string();
  Deliver({AggregateMails()[0]});

  const PollStats stats = PollOnce();
  ASSERT_TRUE(stats.error);
  EXPECT_EQ(stats.error->code, ErrorCode::kNetwork);
  EXPECT_NE(stats.error->message.find("certificate"), std::string::npos) << stats.error->message;
  EXPECT_EQ(stats.seen, 0u);
  EXPECT_EQ(Folder("INBOX").size(), 1u);
  EXPECT_EQ(Count("SELECT count(*) FROM raw_inputs"), 0);
}

TEST_F(ImapPollerTest, WrongPasswordIsUnauthorizedAndTouchesNothing) {
  account_.password = "not-the-secret";
  Deliver({AggregateMails()[0]});

  const PollStats stats = PollOnce();
  ASSERT_TRUE(stats.error);
  EXPECT_EQ(stats.error->code, ErrorCode::kUnauthorized);
  EXPECT_EQ(Folder("INBOX").size(), 1u);
}

TEST_F(ImapPollerTest, MissingMailboxIsNamed) {
  account_.mailbox = "Reports";
  Deliver({AggregateMails()[0]});

  const PollStats stats = PollOnce();
  ASSERT_TRUE(stats.error);
  EXPECT_EQ(stats.error->code, ErrorCode::kNotFound);
  EXPECT_NE(stats.error->message.find("Reports"), std::string::npos);
}

TEST_F(ImapPollerTest, ConnectionCutMidFetchLosesNothingAndFilesNothingAsInvalid) {
  std::vector<fs::path> mails = AggregateMails();
  mails.resize(5);
  Deliver(mails);
  // The third message's literal is cut 200 bytes in.
  test::CuttingProxy proxy(shared_dovecot->ImapPort(), "BODY[] {", 3, 200);
  account_.port = proxy.Port();
  auto poller = MakePoller();

  const PollStats cut = poller->Poll();
  EXPECT_TRUE(proxy.Cut());
  ASSERT_TRUE(cut.error);
  EXPECT_EQ(cut.error->code, ErrorCode::kNetwork);
  EXPECT_EQ(cut.stored, 2u);
  EXPECT_EQ(cut.deferred, 3u);
  // The two committed ones were moved over a new connection; the rest wait.
  EXPECT_EQ(Folder("INBOX").size(), 3u);
  EXPECT_EQ(Folder("Archive/Aggregate").size(), 2u);

  const PollStats next = poller->Poll();
  ASSERT_FALSE(next.error) << next.error->ToString();
  EXPECT_EQ(next.seen, 3u);
  EXPECT_EQ(next.stored, 3u);
  EXPECT_TRUE(Folder("INBOX").empty());
  EXPECT_EQ(Folder("Archive/Aggregate"), Contents(mails));
  EXPECT_TRUE(Folder("Archive/Invalid").empty());
  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 5);
  EXPECT_EQ(Count("SELECT count(*) FROM rejected"), 0);
}

TEST_F(ImapPollerTest, CommittedButNotMovedIsMovedAsADuplicateNextTime) {
  // A first poll of the empty mailbox creates the archive folders; then
  // Aggregate is made unwritable for Dovecot, so the move after the commit
  // fails, as if dmarcd had died between the two.
  ASSERT_FALSE(PollOnce().error);
  const fs::path aggregate = shared_dovecot->MailboxDir(user_, "Archive/Aggregate");
  ASSERT_TRUE(fs::exists(aggregate));
  std::vector<fs::path> mails = AggregateMails();
  mails.resize(2);
  Deliver(mails);
  SetWritable(aggregate, false);

  const PollStats failed = PollOnce();
  SetWritable(aggregate, true);
  ASSERT_TRUE(failed.error);
  EXPECT_EQ(failed.stored, 2u);
  EXPECT_EQ(Folder("INBOX").size(), 2u);
  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 2);

  const PollStats next = PollOnce();
  ASSERT_FALSE(next.error) << next.error->ToString();
  EXPECT_EQ(next.stored, 0u);
  EXPECT_EQ(next.duplicate, 2u);
  EXPECT_TRUE(Folder("INBOX").empty());
  EXPECT_EQ(Folder("Archive/Aggregate"), Contents(mails));
  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 2);
}

TEST_F(ImapPollerTest, Issue6MessageAboveTheLimitIsNeverDownloadedWhole) {
  // A report with a 1 MiB Subject: above the limit set here, so only its
  // header section, cut at 256 KiB, is fetched and kept as rejected input.
  const fs::path big = kData / "parser/hostile/mime_1mb_header_line.eml";
  const fs::path small = AggregateMails()[0];
  ASSERT_GT(fs::file_size(big), uint64_t{1} << 20);
  account_.max_message_bytes = 512 << 10;
  Deliver({big, small});

  const PollStats stats = PollOnce();
  ASSERT_FALSE(stats.error) << stats.error->ToString();
  EXPECT_EQ(stats.seen, 2u);
  EXPECT_EQ(stats.stored, 1u);
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(Folder("Archive/Invalid"), Contents({big}));
  EXPECT_EQ(Folder("Archive/Aggregate"), Contents({small}));
  EXPECT_EQ(Count("SELECT count(*) FROM reports"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM rejected WHERE code = 'too_large' AND message LIKE "
                  "'%RFC822.SIZE%'"),
            1);
  EXPECT_EQ(Count("SELECT size FROM rejected"), 256 << 10);
  EXPECT_EQ(Count("SELECT instr(CAST(bytes AS TEXT), 'Subject: Report Domain') > 0 FROM rejected"),
            1);
  EXPECT_EQ(Count("SELECT max(size) FROM raw_inputs"), 256 << 10);

  EXPECT_EQ(PollOnce().seen, 0u);
}

TEST(ImapPollDelayTest, BacksOffExponentiallyUpToACeiling) {
  using std::chrono::seconds;
  EXPECT_EQ(NextPollDelay(seconds(300), 0), seconds(300));
  EXPECT_EQ(NextPollDelay(seconds(300), 1), seconds(30));
  EXPECT_EQ(NextPollDelay(seconds(300), 2), seconds(60));
  EXPECT_EQ(NextPollDelay(seconds(300), 4), seconds(240));
  EXPECT_EQ(NextPollDelay(seconds(300), 20), seconds(3600));
  EXPECT_EQ(NextPollDelay(seconds(5), 1), seconds(5));
}

TEST(ImapFolderTest, OutcomeDecidesTheFolder) {
  storage::EnvelopeOutcome outcome;
  storage::PartOutcome rejected;
  rejected.status = storage::PartStatus::kRejected;
  rejected.error = Error(ErrorCode::kMalformedXml, "line 1");
  outcome.parts.push_back(rejected);
  EXPECT_EQ(FolderFor(outcome), ArchiveFolder::kInvalid);

  rejected.error = Error(ErrorCode::kUnsupported, "failure report");
  outcome.parts.push_back(rejected);
  EXPECT_EQ(FolderFor(outcome), ArchiveFolder::kFailure);

  storage::EnvelopeOutcome failure;
  storage::PartOutcome stored_failure;
  stored_failure.status = storage::PartStatus::kStored;
  stored_failure.failure = true;
  failure.parts.push_back(stored_failure);
  EXPECT_EQ(FolderFor(failure), ArchiveFolder::kFailure);

  storage::PartOutcome duplicate;
  duplicate.status = storage::PartStatus::kDuplicate;
  outcome.parts.push_back(duplicate);
  EXPECT_EQ(FolderFor(outcome), ArchiveFolder::kAggregate);
}

}  // namespace
}  // namespace dmarcd::server
