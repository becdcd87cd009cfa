// Real reports through ParseEnvelope into the database and back out.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "storage/reader.hpp"
#include "storage/tokens.hpp"
#include "storage/writer.hpp"
#include "temp_database.hpp"

namespace dmarcd::storage {
namespace {

using testing::QueryInt;
using testing::QueryText;
using testing::TempFolder;

std::string ReadData(const std::string& name) {
  const std::filesystem::path path = std::filesystem::path(DMARCD_TEST_DATA_DIR) / "storage" / name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

parser::Envelope FileEnvelope(const std::string& name) {
  return parser::Envelope{ReadData(name), "file:" + name};
}

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Database::Open(path_);
    ASSERT_TRUE(opened) << opened.error().ToString();
    db_ = std::move(*opened);
    writer_ = std::make_unique<Writer>(*db_, parser::Limits{});
  }

  EnvelopeOutcome Ingest(const std::string& name) {
    auto outcome = writer_->Ingest(FileEnvelope(name));
    EXPECT_TRUE(outcome) << name << ": " << outcome.error().ToString();
    return outcome ? *outcome : EnvelopeOutcome{};
  }

  int64_t Count(const std::string& table) {
    return QueryInt(*db_, "SELECT COUNT(*) FROM " + table);
  }

  TempFolder folder_;
  std::string path_ = folder_.File("dmarcd.db");
  std::unique_ptr<Database> db_;
  std::unique_ptr<Writer> writer_;
};

// Record counts and message totals read from the files themselves.
struct Expected {
  const char* file;
  const char* domain;
  uint64_t records;
  uint64_t messages;
  const char* sha256;
};

constexpr Expected kReports[] = {
    {"google_20-records_parsedmarc.xml.gz", "example.com", 20, 3047,
     "fecbc1aace22250948a9df8a47b90a8f45aaa84d091d7006a5fc2d3915033dab"},
    {"fastmail_four-records-multi-dkim_stalwart.xml", "stalw.art", 4, 9,
     "d964235a532ff0923862fba17d2e3c83f74a994af55221dffaace1f19be08e36"},
    {"outlook-enterprise_zip_avvertix.zip", "a-domain.localhost", 2, 2,
     "8dd283c590a68b324798bdb00f88e093fb43b1f3a692fae49591af156706b8d7"},
    {"accurateplastics_large-2286-records_parsedmarc.xml", "example.com", 2286, 2286,
     "5f08ce8093b6265c7094198a3b61a6f68b50267fec879cb68cfc47477c6fde27"},
};

TEST_F(EndToEndTest, StoresRealReportsWithTheirCountsAndTotals) {
  for (const Expected& want : kReports) {
    SCOPED_TRACE(want.file);
    const EnvelopeOutcome outcome = Ingest(want.file);
    ASSERT_EQ(outcome.parts.size(), 1u);
    const PartOutcome& part = outcome.parts[0];
    EXPECT_EQ(part.status, PartStatus::kStored) << (part.error ? part.error->ToString() : "");
    EXPECT_EQ(part.domain, want.domain);
    EXPECT_EQ(part.records, want.records);
    EXPECT_EQ(part.messages, want.messages);
    EXPECT_EQ(outcome.Records(), want.records);

    const std::string report = std::to_string(part.report_pk);
    EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM records WHERE report_id = " + report),
              static_cast<int64_t>(want.records));
    EXPECT_EQ(QueryInt(*db_, "SELECT SUM(count) FROM records WHERE report_id = " + report),
              static_cast<int64_t>(want.messages));
    EXPECT_EQ(QueryInt(*db_, "SELECT SUM(messages) FROM report_days WHERE report_id = " + report),
              static_cast<int64_t>(want.messages));
    EXPECT_EQ(QueryText(*db_, "SELECT sha256 FROM raw_inputs WHERE id = " +
                                  std::to_string(outcome.raw_pk)),
              want.sha256);
  }

  Reader reader(*db_);
  auto summary = reader.Summary({});
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->messages, 3047u + 9u + 2u + 2286u);
  auto example = reader.Reports({"example.com", std::nullopt, std::nullopt}, {});
  ASSERT_TRUE(example);
  EXPECT_EQ(example->total, 2);
}

TEST_F(EndToEndTest, RawBytesAreKeptCompressedOnlyWhenTheyArrivedPlain) {
  const EnvelopeOutcome gz = Ingest("google_20-records_parsedmarc.xml.gz");
  const EnvelopeOutcome zip = Ingest("outlook-enterprise_zip_avvertix.zip");
  const EnvelopeOutcome xml = Ingest("fastmail_four-records-multi-dkim_stalwart.xml");
  auto column = [this](const char* name, int64_t id) {
    return QueryText(
        *db_, std::string("SELECT ") + name + " FROM raw_inputs WHERE id = " + std::to_string(id));
  };
  EXPECT_EQ(column("compression", gz.raw_pk), "none");
  EXPECT_EQ(column("bytes", gz.raw_pk), ReadData("google_20-records_parsedmarc.xml.gz"));
  EXPECT_EQ(column("compression", zip.raw_pk), "none");
  EXPECT_EQ(column("compression", xml.raw_pk), "gzip");
  EXPECT_LT(column("bytes", xml.raw_pk).size(), 3699u);
  EXPECT_EQ(QueryInt(*db_, "SELECT size FROM raw_inputs WHERE id = " + std::to_string(xml.raw_pk)),
            3699);
}

TEST_F(EndToEndTest, SecondIngestIsADuplicateAndArchivedOnce) {
  const EnvelopeOutcome first = Ingest("google_20-records_parsedmarc.xml.gz");
  ASSERT_EQ(first.Overall(), PartStatus::kStored);
  const int64_t records = Count("records");

  const EnvelopeOutcome second = Ingest("google_20-records_parsedmarc.xml.gz");
  ASSERT_EQ(second.parts.size(), 1u);
  EXPECT_EQ(second.parts[0].status, PartStatus::kDuplicate);
  EXPECT_EQ(second.parts[0].report_pk, first.parts[0].report_pk);
  EXPECT_EQ(second.parts[0].records, 20u);
  EXPECT_EQ(second.parts[0].messages, 3047u);
  EXPECT_EQ(second.raw_pk, first.raw_pk);
  EXPECT_EQ(second.Overall(), PartStatus::kDuplicate);

  EXPECT_EQ(Count("reports"), 1);
  EXPECT_EQ(Count("records"), records);
  EXPECT_EQ(Count("raw_inputs"), 1);
}

TEST_F(EndToEndTest, ReportReadsBackInDocumentOrder) {
  const EnvelopeOutcome outcome = Ingest("fastmail_four-records-multi-dkim_stalwart.xml");
  ASSERT_EQ(outcome.Overall(), PartStatus::kStored);
  Reader reader(*db_);
  auto detail = reader.Report(outcome.parts.at(0).report_pk);
  ASSERT_TRUE(detail) << detail.error().ToString();
  EXPECT_EQ(detail->report.org_name, "Fastmail Pty Ltd");
  EXPECT_EQ(detail->report.report_id, "758848224");
  EXPECT_EQ(detail->header.begin, 1667347200);
  EXPECT_EQ(detail->header.end, 1667433599);
  EXPECT_EQ(detail->header.policy.domain, "stalw.art");
  ASSERT_EQ(detail->records.size(), 4u);
  uint64_t messages = 0;
  size_t dkim = 0;
  for (const auto& record : detail->records) {
    messages += record.count;
    dkim += record.dkim.size();
  }
  EXPECT_EQ(messages, 9u);
  EXPECT_GT(dkim, 4u);  // several DKIM results per record
}

TEST_F(EndToEndTest, EmailEnvelopeIsStoredAndArchivedCompressed) {
  const EnvelopeOutcome outcome = Ingest("case01_uncompressed-xml-attachment.eml");
  ASSERT_EQ(outcome.parts.size(), 1u);
  EXPECT_EQ(outcome.parts[0].status, PartStatus::kStored);
  EXPECT_EQ(outcome.parts[0].report_id, "filter-20250101-0001");
  EXPECT_EQ(outcome.parts[0].records, 2u);
  EXPECT_EQ(outcome.parts[0].messages, 15u);
  EXPECT_EQ(QueryText(*db_, "SELECT compression FROM raw_inputs"), "gzip");
}

TEST_F(EndToEndTest, NotAReportIsRejectedOnceWithItsCode) {
  const std::string bytes = ReadData("synthetic_not-a-report_kimon.xml");
  const EnvelopeOutcome first = Ingest("synthetic_not-a-report_kimon.xml");
  ASSERT_EQ(first.parts.size(), 1u);
  const PartOutcome& part = first.parts[0];
  EXPECT_EQ(part.status, PartStatus::kRejected);
  ASSERT_TRUE(part.error.has_value());
  EXPECT_EQ(part.error->code, ErrorCode::kNotAReport);
  EXPECT_NE(part.rejected_pk, 0);
  EXPECT_EQ(first.Overall(), PartStatus::kRejected);

  EXPECT_EQ(Count("rejected"), 1);
  EXPECT_EQ(Count("reports"), 0);
  EXPECT_EQ(QueryText(*db_, "SELECT code FROM rejected"), "not_a_report");
  EXPECT_EQ(QueryText(*db_, "SELECT bytes FROM rejected"), bytes);
  EXPECT_EQ(QueryText(*db_, "SELECT sha256 FROM rejected"), Sha256Hex(bytes));
  EXPECT_EQ(QueryInt(*db_, "SELECT raw_input_id FROM rejected"), first.raw_pk);

  const EnvelopeOutcome second = Ingest("synthetic_not-a-report_kimon.xml");
  ASSERT_EQ(second.parts.size(), 1u);
  EXPECT_EQ(second.parts[0].status, PartStatus::kRejected);
  EXPECT_EQ(second.parts[0].rejected_pk, part.rejected_pk);
  EXPECT_EQ(Count("rejected"), 1);
  EXPECT_EQ(Count("raw_inputs"), 1);
}

TEST_F(EndToEndTest, MalformedReportLeavesNoRows) {
  const EnvelopeOutcome outcome = Ingest("synthetic_unclosed-element-malformed_kimon.xml");
  ASSERT_EQ(outcome.parts.size(), 1u);
  EXPECT_EQ(outcome.parts[0].status, PartStatus::kRejected);
  ASSERT_TRUE(outcome.parts[0].error.has_value());
  EXPECT_FALSE(IsTransient(outcome.parts[0].error->code));
  EXPECT_EQ(Count("reports"), 0);
  EXPECT_EQ(Count("records"), 0);
  EXPECT_EQ(Count("rejected"), 1);
  EXPECT_EQ(QueryText(*db_, "SELECT code FROM rejected"),
            ErrorCodeName(outcome.parts[0].error->code));
}

TEST_F(EndToEndTest, ReparseRecoversWhatALimitRejected) {
  // A record cap far below the report's 2286 records rejects it whole.
  parser::Limits tight;
  tight.max_records = 100;
  Writer strict(*db_, tight);
  auto rejected = strict.Ingest(FileEnvelope("accurateplastics_large-2286-records_parsedmarc.xml"));
  ASSERT_TRUE(rejected) << rejected.error().ToString();
  ASSERT_EQ(rejected->parts.size(), 1u);
  ASSERT_EQ(rejected->parts[0].status, PartStatus::kRejected);
  EXPECT_EQ(rejected->parts[0].error->code, ErrorCode::kTooManyEntries);
  EXPECT_EQ(Count("records"), 0);
  const int64_t rejected_pk = rejected->parts[0].rejected_pk;

  // The same input that is still no report stays rejected.
  Ingest("synthetic_not-a-report_kimon.xml");
  ASSERT_EQ(Count("rejected"), 2);

  // With the default limits it parses.
  auto reparsed = writer_->Reparse(std::nullopt);
  ASSERT_TRUE(reparsed) << reparsed.error().ToString();
  EXPECT_EQ(reparsed->tried, 2);
  EXPECT_EQ(reparsed->recovered, 1);
  EXPECT_EQ(reparsed->still_rejected, 1);
  EXPECT_EQ(Count("records"), 2286);
  EXPECT_EQ(Count("rejected"), 2);
  const std::string where = " FROM rejected WHERE id = " + std::to_string(rejected_pk);
  EXPECT_NE(QueryInt(*db_, "SELECT recovered_at" + where), 0);
  EXPECT_EQ(QueryText(*db_, "SELECT origin FROM reports"),
            "reparse:" + std::to_string(rejected_pk));
  EXPECT_EQ(QueryInt(*db_, "SELECT report_id FROM rejected_recoveries WHERE rejected_id = " +
                               std::to_string(rejected_pk)),
            QueryInt(*db_, "SELECT id FROM reports"));
  EXPECT_EQ(QueryInt(*db_, "SELECT raw_input_id FROM reports"), rejected->raw_pk);

  Reader reader(*db_);
  auto page = reader.Rejected({});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 2u);
  int recovered = 0;
  for (const RejectedRow& row : page->items) {
    recovered += row.recovered ? 1 : 0;
  }
  EXPECT_EQ(recovered, 1);

  // A recovered row is not parsed again; the other one is tried again.
  auto again = writer_->Reparse(std::nullopt);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->tried, 1);
  EXPECT_EQ(again->recovered, 0);
  auto by_id = writer_->Reparse(rejected_pk);
  ASSERT_TRUE(by_id);
  EXPECT_EQ(by_id->tried, 0);
  EXPECT_EQ(Count("reports"), 1);

  auto missing = writer_->Reparse(int64_t{999});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_F(EndToEndTest, BusyDatabaseIsTransientAndStoresNothing) {
  auto other = Database::Open(path_);
  ASSERT_TRUE(other);
  auto impatient_db = Database::Open(path_, OpenOptions{.busy_timeout_ms = 10});
  ASSERT_TRUE(impatient_db);
  Writer impatient(**impatient_db, parser::Limits{});

  ASSERT_TRUE((*other)->Exec("BEGIN IMMEDIATE"));
  auto blocked = impatient.Ingest(FileEnvelope("google_20-records_parsedmarc.xml.gz"));
  ASSERT_TRUE((*other)->Exec("ROLLBACK"));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, ErrorCode::kDatabaseBusy);
  EXPECT_TRUE(IsTransient(blocked.error().code));
  EXPECT_EQ(Count("raw_inputs"), 0);

  auto retried = impatient.Ingest(FileEnvelope("google_20-records_parsedmarc.xml.gz"));
  ASSERT_TRUE(retried) << retried.error().ToString();
  EXPECT_EQ(retried->Overall(), PartStatus::kStored);
}

}  // namespace
}  // namespace dmarcd::storage
