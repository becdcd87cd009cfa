// Failure reports through the Writer: stored with their values, other
// feedback types rejected whole, duplicates recognised across channels,
// the privacy settings applied to everything written, and retention.
#include "storage/failure_store.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "storage/failure_reader.hpp"
#include "storage/writer.hpp"
#include "tests/storage/temp_database.hpp"

namespace dmarcd::storage::testing {
namespace {

std::filesystem::path FailureData() {
  return std::filesystem::path(DMARCD_TEST_DATA_DIR) / "failure";
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Gunzip(const std::string& gz) {
  z_stream stream{};
  EXPECT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
  std::string out(1 << 20, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  stream.avail_in = static_cast<uInt>(gz.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return out;
}

// Every BLOB of a column, as stored.
std::vector<std::string> Blobs(Database& db, const std::string& sql) {
  std::vector<std::string> out;
  sqlite3_stmt* statement = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db.Handle(), sql.c_str(), -1, &statement, nullptr), SQLITE_OK);
  while (sqlite3_step(statement) == SQLITE_ROW) {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(statement, 0));
    out.emplace_back(data == nullptr ? "" : std::string(data, sqlite3_column_bytes(statement, 0)));
  }
  sqlite3_finalize(statement);
  return out;
}

class FailureStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Database::Open(folder_.File("dmarcd.db"));
    ASSERT_TRUE(opened) << opened.error().ToString();
    db_ = std::move(*opened);
    writer_ = std::make_unique<Writer>(*db_, parser::Limits());
  }

  EnvelopeOutcome Ingest(const std::string& bytes, const std::string& origin = "test") {
    auto outcome = writer_->Ingest(parser::Envelope{bytes, origin});
    EXPECT_TRUE(outcome) << outcome.error().ToString();
    return outcome ? *outcome : EnvelopeOutcome{};
  }

  EnvelopeOutcome IngestFile(const std::string& path) {
    return Ingest(ReadFile(FailureData() / path), "file:" + path);
  }

  TempFolder folder_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Writer> writer_;
};

TEST_F(FailureStoreTest, StoresEveryCorpusFailureReportAndRejectsOtherFeedbackTypes) {
  int stored = 0;
  int rejected = 0;
  for (const auto& entry : std::filesystem::directory_iterator(FailureData() / "corpus")) {
    EnvelopeOutcome outcome = Ingest(ReadFile(entry.path()), entry.path().filename().string());
    ASSERT_EQ(outcome.parts.size(), 1U) << entry.path();
    const PartOutcome& part = outcome.parts[0];
    if (part.status == PartStatus::kStored) {
      EXPECT_TRUE(part.failure);
      ++stored;
    } else {
      ASSERT_EQ(part.status, PartStatus::kRejected) << entry.path();
      ASSERT_TRUE(part.error.has_value());
      EXPECT_EQ(part.error->code, ErrorCode::kNotAReport);
      EXPECT_EQ(part.error->message, "not a DMARC failure report (feedback type abuse)");
      ++rejected;
    }
  }
  EXPECT_EQ(stored, 7);
  EXPECT_EQ(rejected, 7);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM failure_reports"), 7);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM rejected WHERE code = 'not_a_report'"), 7);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM reports"), 0);

  // Other feedback types are kept whole.
  const std::string abuse = ReadFile(FailureData() / "corpus" / "yahoo_abuse-fbl_sisimai.eml");
  EXPECT_EQ(
      QueryInt(*db_, "SELECT COUNT(*) FROM rejected WHERE size = " + std::to_string(abuse.size())),
      1);
}

TEST_F(FailureStoreTest, ReadsBackStoredValues) {
  EnvelopeOutcome outcome = IngestFile("written/rfc9991_folded_multi.eml");
  ASSERT_EQ(outcome.Count(PartStatus::kStored), 1);
  FailureReader reader(*db_);
  auto row = reader.Get(outcome.parts[0].report_pk);
  ASSERT_TRUE(row) << row.error().ToString();
  EXPECT_EQ(row->domain, "example.com");
  EXPECT_EQ(row->arrived_at, 1735905487);
  EXPECT_EQ(row->sample_kept, "headers");
  EXPECT_FALSE(row->local_parts_redacted);
  const parser::FailureReport& r = row->report;
  EXPECT_EQ(r.source_ip, "2001:db8::25");
  EXPECT_EQ(r.auth_failure, (std::vector<std::string>{"dmarc", "signature", "spf"}));
  EXPECT_EQ(r.identity_alignment, std::vector<std::string>{"none"});
  EXPECT_EQ(r.original_rcpt_to.size(), 2U);
  EXPECT_EQ(r.incidents, 3U);
  EXPECT_EQ(r.subject, "Your invoice \xE2\x82\xAC 42");
  EXPECT_TRUE(r.headers.starts_with("Received: from relay.spoof.example.org"));
  EXPECT_FALSE(r.body.has_value());  // store_samples = "headers" by default
  EXPECT_EQ(r.fields.size(), 21U);

  auto page = reader.List(FailureFilter{"example.com", 1735900000, 1735910000, "2001:db8::25"},
                          PageRequest{});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->total, 1);
  auto none = reader.List(FailureFilter{"example.com", std::nullopt, 1735900000, std::nullopt},
                          PageRequest{});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->total, 0);
  EXPECT_EQ(reader.Get(999).error().code, ErrorCode::kNotFound);
}

TEST_F(FailureStoreTest, SameReportFromAnotherChannelIsADuplicate) {
  const std::string email = ReadFile(FailureData() / "written" / "rfc9991_folded_multi.eml");
  EnvelopeOutcome first = Ingest(email, "imap:INBOX/1");
  EnvelopeOutcome second = Ingest(
      "Received: from upload by dmarcd; Sat, 04 Jan 2025 00:00:00 +0000\n" + email, "http:upload");
  ASSERT_EQ(first.Count(PartStatus::kStored), 1);
  ASSERT_EQ(second.Count(PartStatus::kDuplicate), 1);
  EXPECT_EQ(second.parts[0].report_pk, first.parts[0].report_pk);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM failure_reports"), 1);
}

TEST_F(FailureStoreTest, SameEmailTwiceKeepsOneArchiveCopy) {
  // The copy kept under the privacy settings is written anew each time;
  // it must come out the same bytes, or every repeat of the email would
  // leave another copy behind.
  for (const char* path : {"corpus/linkedin_ruf_parsedmarc.eml",
                           "corpus/opendmarc_auth-failure-rfc822-headers_stalwart.eml"}) {
    const std::string email = ReadFile(FailureData() / path);
    EnvelopeOutcome first = Ingest(email, "imap:INBOX/1");
    EnvelopeOutcome second = Ingest(email, "imap:INBOX/2");
    ASSERT_EQ(first.Count(PartStatus::kStored), 1) << path;
    EXPECT_EQ(second.Count(PartStatus::kDuplicate), 1) << path;
    EXPECT_EQ(second.raw_pk, first.raw_pk) << path;
  }
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM raw_inputs"), 2);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM failure_reports"), 2);
}

TEST_F(FailureStoreTest, FullSamplesKeepTheBodyAndNoneKeepsNoHeaders) {
  writer_->SetFailurePrivacy(FailurePrivacy{SampleMode::kFull, false});
  EnvelopeOutcome full = IngestFile("written/rfc9991_folded_multi.eml");
  ASSERT_EQ(full.Count(PartStatus::kStored), 1);
  EXPECT_EQ(QueryText(*db_, "SELECT sample_kept FROM failure_reports"), "full");
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM failure_reports WHERE body IS NOT NULL"), 1);

  writer_->SetFailurePrivacy(FailurePrivacy{SampleMode::kNone, false});
  EnvelopeOutcome none = IngestFile("written/returned_as_text_plain.eml");
  ASSERT_EQ(none.Count(PartStatus::kStored), 1);
  EXPECT_EQ(QueryText(*db_, "SELECT sample_kept FROM failure_reports WHERE id = " +
                                std::to_string(none.parts[0].report_pk)),
            "none");
  EXPECT_EQ(QueryText(*db_, "SELECT headers FROM failure_reports WHERE id = " +
                                std::to_string(none.parts[0].report_pk)),
            "");
  // Nor does the raw archive hold the returned message.
  for (const std::string& raw :
       Blobs(*db_, "SELECT bytes FROM raw_inputs ORDER BY id DESC LIMIT 1")) {
    EXPECT_EQ(Gunzip(raw).find("Overdue"), std::string::npos);
  }
}

// A failure report too broken to store keeps, with store_samples =
// "headers", only its own header block in the rejected table.
TEST_F(FailureStoreTest, BrokenFailureReportKeepsOnlyItsHeaderBlockWhenRejected) {
  const std::string broken =
      "From: ruf-sender@mx.receiver.example.net\nSubject: DMARC failure\n"
      "Content-Type: multipart/report; report-type=feedback-report; boundary=\"x\"\n\n"
      "--x\nContent-Type: message/feedback-report\n\nUser-Agent: x\n--x\n"
      "Content-Type: text/plain\n\nthe failing message's secret body\n--x--\n";
  EnvelopeOutcome outcome = Ingest(broken);
  ASSERT_EQ(outcome.Count(PartStatus::kRejected), 1);
  EXPECT_EQ(outcome.parts[0].error->code, ErrorCode::kMissingElement);
  const std::vector<std::string> kept = Blobs(*db_, "SELECT bytes FROM rejected");
  ASSERT_EQ(kept.size(), 1U);
  EXPECT_TRUE(kept[0].starts_with("From: ruf-sender@mx.receiver.example.net\n")) << kept[0];
  EXPECT_EQ(kept[0].find("secret body"), std::string::npos);
  for (const std::string& raw : Blobs(*db_, "SELECT bytes FROM raw_inputs")) {
    EXPECT_EQ(Gunzip(raw).find("secret body"), std::string::npos);
  }
}

TEST_F(FailureStoreTest, NonArfReportIsStoredAsNonStandard) {
  EnvelopeOutcome outcome = IngestFile("written/non_arf_text_and_headers.eml");
  ASSERT_EQ(outcome.Count(PartStatus::kStored), 1);
  EXPECT_EQ(QueryText(*db_, "SELECT format FROM failure_reports"), "non_standard");
  EXPECT_EQ(QueryText(*db_, "SELECT source_ip FROM failure_reports"), "192.0.2.77");
}

TEST_F(FailureStoreTest, RedactedLocalPartsAppearNowhere) {
  writer_->SetFailurePrivacy(FailurePrivacy{SampleMode::kFull, true});
  IngestFile("written/rfc9991_folded_multi.eml");
  IngestFile("written/non_arf_text_and_headers.eml");
  Ingest(ReadFile(std::filesystem::path(DMARCD_TEST_DATA_DIR) / "cases" /
                  "22-arf-source-ip-with-comment" / "failure.eml"));
  // A failure report too broken to store lands in the rejected table:
  // redacted all the same.
  Ingest(
      "From: ruf-sender@mx.receiver.example.net\nSubject: DMARC failure\n"
      "Content-Type: multipart/report; report-type=feedback-report; boundary=\"x\"\n\n"
      "--x\nContent-Type: message/feedback-report\n\nUser-Agent: x\n"
      "Original-Mail-From: <gina.secret@example.com>\n--x--\n");
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM failure_reports"), 3);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM rejected"), 1);

  const std::vector<std::string> local_parts = {
      "alice.wonder", "bob.builder", "carol.singer", "erin.helpdesk", "frank.user",
      "bounce-4411",  "ruf-sender",  "gina.secret",  "news@",         "user@"};
  std::string everything;
  for (const std::string& raw : Blobs(*db_, "SELECT bytes FROM raw_inputs")) {
    everything += Gunzip(raw);
  }
  for (const std::string& bytes : Blobs(*db_, "SELECT bytes FROM rejected")) everything += bytes;
  ASSERT_EQ(db_->Exec("PRAGMA wal_checkpoint(PASSIVE)").has_value(), true);
  everything += ReadFile(folder_.File("dmarcd.db"));
  everything += ReadFile(folder_.File("dmarcd.db-wal"));
  for (const std::string& local : local_parts) {
    EXPECT_EQ(everything.find(local), std::string::npos) << local;
  }

  // The same sender stays recognisable: one stable hash per local part.
  const std::string from = QueryText(*db_,
                                     "SELECT mail_from FROM failure_reports WHERE "
                                     "subject LIKE 'Your invoice%'");
  EXPECT_TRUE(from.ends_with("@example.com>")) << from;
  EXPECT_NE(from.find("<h-"), std::string::npos) << from;
  const std::string hash = from.substr(from.find("<h-") + 1, 14);
  EXPECT_NE(QueryText(*db_, "SELECT headers FROM failure_reports").find(hash), std::string::npos);
  EXPECT_EQ(QueryInt(*db_, "SELECT local_parts_redacted FROM failure_reports LIMIT 1"), 1);
}

// The control for the test above: without redaction the same search finds
// the local parts, so its silence means something.
TEST_F(FailureStoreTest, WithoutRedactionLocalPartsAreFound) {
  writer_->SetFailurePrivacy(FailurePrivacy{SampleMode::kFull, false});
  IngestFile("written/rfc9991_folded_multi.eml");
  ASSERT_EQ(db_->Exec("PRAGMA wal_checkpoint(PASSIVE)").has_value(), true);
  std::string everything = ReadFile(folder_.File("dmarcd.db"));
  everything += ReadFile(folder_.File("dmarcd.db-wal"));
  EXPECT_NE(everything.find("alice.wonder"), std::string::npos);
  EXPECT_NE(everything.find("carol.singer"), std::string::npos);
}

TEST(RedactLocalPartsTest, HashesEveryLocalPartStably) {
  const std::string text =
      "From: Ann <ann.lee@example.com>; smtp.mailfrom=bo@example.net, ANN.LEE@example.com";
  const std::string once = RedactLocalParts(text, "key");
  EXPECT_EQ(once.find("ann.lee"), std::string::npos);
  EXPECT_EQ(once.find("ANN.LEE"), std::string::npos);
  EXPECT_EQ(once.find("=bo@"), std::string::npos);
  EXPECT_NE(once.find("smtp.mailfrom=h-"), std::string::npos) << once;
  EXPECT_EQ(RedactLocalParts(once, "key"), once);  // a hash is not hashed again
  const size_t first = once.find("<h-");
  const size_t last = once.rfind(", h-");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(last, std::string::npos);
  EXPECT_EQ(once.substr(first + 1, 14), once.substr(last + 2, 14));  // case does not matter
  EXPECT_NE(RedactLocalParts(text, "other key"), once);
}

// A failure report filed as rejected before dmarcd read them is stored by
// reparse, as the privacy settings say.
TEST_F(FailureStoreTest, ReparseStoresAFailureReportRejectedEarlier) {
  const std::string email = ReadFile(std::filesystem::path(DMARCD_TEST_DATA_DIR) / "cases" /
                                     "23-forensic-base64-without-padding" / "failure.eml");
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db_->Handle(),
                               "INSERT INTO rejected (received_at, origin, name, code, message, "
                               "size, sha256, bytes) VALUES (1, 'imap:INBOX/1', 'imap:INBOX/1', "
                               "'unsupported', 'not yet', ?, 'abc', ?)",
                               -1, &insert, nullptr),
            SQLITE_OK);
  sqlite3_bind_int64(insert, 1, static_cast<sqlite3_int64>(email.size()));
  sqlite3_bind_blob(insert, 2, email.data(), static_cast<int>(email.size()), SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE);
  sqlite3_finalize(insert);

  auto reparsed = writer_->Reparse(std::nullopt);
  ASSERT_TRUE(reparsed) << reparsed.error().ToString();
  EXPECT_EQ(reparsed->recovered, 1);
  EXPECT_EQ(QueryText(*db_, "SELECT subject FROM failure_reports"), "Salary adjustment form");
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM failure_reports WHERE body IS NULL"), 1);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM rejected WHERE recovered_at IS NOT NULL"), 1);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM rejected_recoveries"), 0);
}

TEST_F(FailureStoreTest, RetentionDeletesOldReportsAndTheirRawCopies) {
  IngestFile("written/rfc9991_folded_multi.eml");
  ASSERT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM raw_inputs"), 1);
  auto kept = DeleteFailureReportsBefore(*db_, UnixNow() - 3600);
  ASSERT_TRUE(kept);
  EXPECT_EQ(*kept, 0);
  auto deleted = DeleteFailureReportsBefore(*db_, UnixNow() + 1);
  ASSERT_TRUE(deleted) << deleted.error().ToString();
  EXPECT_EQ(*deleted, 1);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM failure_reports"), 0);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM raw_inputs"), 0);
}

TEST(ParseRetentionTest, ReadsDaysWeeksHours) {
  EXPECT_EQ(*ParseRetention("90d"), 90 * 86400);
  EXPECT_EQ(*ParseRetention("2w"), 14 * 86400);
  EXPECT_EQ(*ParseRetention("36h"), 36 * 3600);
  EXPECT_FALSE(ParseRetention("0")->has_value());
  EXPECT_FALSE(ParseRetention("90").has_value());
  EXPECT_FALSE(ParseRetention("d").has_value());
  EXPECT_EQ(ParseSampleMode("full").value(), SampleMode::kFull);
  EXPECT_FALSE(ParseSampleMode("some").has_value());
}

}  // namespace
}  // namespace dmarcd::storage::testing
