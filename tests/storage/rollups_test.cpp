// The daily roll-ups (storage/rollups.hpp, migrations/0004_rollups.sql and
// 0005_source_names_in_days.sql):
// written by the writer inside the ingest transaction, equal to the
// report_days split, sources adding up to their domain, rebuilt by the
// migration for reports already stored, and right after a reparse.
#include "storage/rollups.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "storage/database.hpp"
#include "storage/reader.hpp"
#include "storage/tokens.hpp"
#include "storage/writer.hpp"
#include "temp_database.hpp"

namespace dmarcd::storage {
namespace {

namespace fs = std::filesystem;
using testing::QueryInt;
using testing::QueryText;
using testing::TempFolder;

std::string ReadFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

constexpr int64_t kHour = 3600;
// 2024-03-01T07:00:00Z to 2024-03-04T05:00:00Z: 17, 24, 24 and 5 hours of
// four UTC days.
constexpr int64_t kMultiBegin = 1709251200 + 7 * kHour;
constexpr int64_t kMultiEnd = 1709251200 + 3 * 86400 + 5 * kHour;

std::string Record(const std::string& ip, int count, const std::string& disposition,
                   const std::string& dkim, const std::string& spf) {
  return "<record><row><source_ip>" + ip + "</source_ip><count>" + std::to_string(count) +
         "</count><policy_evaluated><disposition>" + disposition + "</disposition><dkim>" + dkim +
         "</dkim><spf>" + spf +
         "</spf></policy_evaluated></row><identifiers><header_from>Example.COM</header_from>"
         "</identifiers><auth_results><dkim><domain>mail.example.com</domain><result>" +
         dkim + "</result></dkim><spf><domain>bounce.example.com</domain><result>" + spf +
         "</result></spf></auth_results></record>";
}

// A report over four days with awkward counts, a source named twice, and
// sources whose own day shares, rounded alone, would not add up to the
// report's.
std::string MultiDayReport(const std::string& report_id) {
  return "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>Receiver Example</org_name>"
         "<email>dmarc@receiver.example.net</email><report_id>" +
         report_id + "</report_id><date_range><begin>" + std::to_string(kMultiBegin) +
         "</begin><end>" + std::to_string(kMultiEnd) +
         "</end></date_range></report_metadata><policy_published><domain>rollup-test.example.net</"
         "domain>"
         "<adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct>"
         "</policy_published>" +
         Record("192.0.2.1", 1000, "none", "pass", "fail") +
         Record("192.0.2.2", 7, "quarantine", "fail", "fail") +
         Record("192.0.2.3", 3, "reject", "fail", "fail") +
         Record("192.0.2.1", 1, "none", "fail", "pass") +
         Record("2001:db8::5", 2, "none", "fail", "fail") +
         Record("192.0.2.4", 1, "none", "pass", "pass") + "</feedback>";
}

class RollupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = folder_.File("dmarcd.db");
    auto db = Database::Open(path_);
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
  }

  void IngestCorpus() {
    Writer writer(*db_, parser::Limits{});
    const fs::path corpus = fs::path(DMARCD_TEST_DATA_DIR) / "corpus" / "aggregate";
    for (const auto& entry : fs::directory_iterator(corpus)) {
      auto outcome = writer.Ingest(parser::Envelope{ReadFile(entry.path()), "file:test"});
      ASSERT_TRUE(outcome) << outcome.error().ToString();
    }
    auto multi = writer.Ingest(parser::Envelope{MultiDayReport("multi-1"), "file:multi"});
    ASSERT_TRUE(multi) << multi.error().ToString();
    ASSERT_EQ(multi->Overall(), PartStatus::kStored);
  }

  // Rows of `sql` (whole table contents, ordered) as one text.
  std::string Dump(const std::string& sql) {
    return QueryText(*db_, "SELECT group_concat(row, '|') FROM (SELECT " + sql + ")");
  }

  int64_t Mismatches(const std::string& left, const std::string& right) {
    return QueryInt(*db_, "SELECT COUNT(*) FROM (" + left + " EXCEPT " + right + ")") +
           QueryInt(*db_, "SELECT COUNT(*) FROM (" + right + " EXCEPT " + left + ")");
  }

  TempFolder folder_;
  std::string path_;
  std::unique_ptr<Database> db_;
};

constexpr const char* kFigures =
    "messages, dmarc_pass, dkim_aligned_pass, spf_aligned_pass, disposition_none, "
    "disposition_quarantine, disposition_reject";
constexpr const char* kSums =
    "SUM(messages), SUM(dmarc_pass), SUM(dkim_aligned_pass), SUM(spf_aligned_pass), "
    "SUM(disposition_none), SUM(disposition_quarantine), SUM(disposition_reject)";

TEST_F(RollupsTest, DomainDaysEqualReportDaysAndSourcesAddUpToTheirDomain) {
  IngestCorpus();
  ASSERT_GT(QueryInt(*db_, "SELECT COUNT(*) FROM domain_days"), 20);

  EXPECT_EQ(Mismatches(std::string("SELECT domain, day, ") + kSums +
                           " FROM report_days GROUP BY domain, day",
                       std::string("SELECT domain, day, ") + kFigures + " FROM domain_days"),
            0);
  EXPECT_EQ(Mismatches(std::string("SELECT domain, day, ") + kSums +
                           " FROM source_days GROUP BY domain, day HAVING SUM(messages) > 0",
                       std::string("SELECT domain, day, ") + kFigures + " FROM domain_days"),
            0);
  // Each source's days add up to its records.
  EXPECT_EQ(Mismatches("SELECT domain, source_ip, SUM(messages) FROM source_days "
                       "GROUP BY domain, source_ip",
                       "SELECT r.domain, x.source_ip, SUM(x.count) FROM records x "
                       "JOIN reports r ON r.id = x.report_id GROUP BY r.domain, x.source_ip"),
            0);
  EXPECT_EQ(Mismatches("SELECT domain, day, reporter_key, messages, dmarc_pass FROM reporter_days",
                       "SELECT d.domain, d.day, r.reporter_key, SUM(d.messages), "
                       "SUM(d.dmarc_pass) FROM report_days d JOIN reports r ON r.id = d.report_id "
                       "GROUP BY 1, 2, 3"),
            0);
  EXPECT_EQ(Mismatches("SELECT report_id, SUM(records), SUM(messages) FROM source_reports "
                       "GROUP BY report_id",
                       "SELECT id, records, messages FROM reports"),
            0);
}

TEST_F(RollupsTest, MultiDayReportApportionsEverySourceWithinARoundingOfItsShare) {
  IngestCorpus();
  const int64_t days[] = {1709251200, 1709337600, 1709424000, 1709510400};
  const int64_t hours[] = {17, 24, 24, 5};
  const std::map<std::string, int64_t> totals = {{"192.0.2.1", 1001},
                                                 {"192.0.2.2", 7},
                                                 {"192.0.2.3", 3},
                                                 {"2001:db8::5", 2},
                                                 {"192.0.2.4", 1}};
  // The report's own split, as report_days has it: 1014 messages over 70
  // hours.
  EXPECT_EQ(
      QueryInt(*db_,
               "SELECT messages FROM domain_days WHERE domain = 'rollup-test.example.net' AND "
               "day = 1709251200"),
      QueryInt(*db_,
               "SELECT d.messages FROM report_days d JOIN reports r ON "
               "r.id = d.report_id WHERE r.report_id = 'multi-1' AND d.day = 1709251200"));
  for (const auto& [ip, total] : totals) {
    int64_t sum = 0;
    for (int d = 0; d < 4; ++d) {
      const int64_t share = std::max<int64_t>(
          0,
          QueryInt(*db_,
                   "SELECT messages FROM source_days WHERE domain = 'rollup-test.example.net' AND "
                   "source_ip = '" +
                       ip + "' AND day = " + std::to_string(days[d])));
      const double exact = static_cast<double>(total * hours[d]) / 70.0;
      EXPECT_GE(share, static_cast<int64_t>(std::floor(exact))) << ip << " day " << d;
      EXPECT_LE(share, static_cast<int64_t>(std::ceil(exact))) << ip << " day " << d;
      sum += share;
    }
    EXPECT_EQ(sum, total) << ip;
  }
  // 192.0.2.1 came in two records: one row per day, both records' figures.
  EXPECT_EQ(QueryInt(*db_,
                     "SELECT SUM(dkim_aligned_pass) FROM source_days WHERE "
                     "source_ip = '192.0.2.1' AND domain = 'rollup-test.example.net'"),
            1000);
  EXPECT_EQ(QueryInt(*db_,
                     "SELECT records FROM source_reports WHERE source_ip = '192.0.2.1' "
                     "AND domain = 'rollup-test.example.net'"),
            2);
  // Names are kept lower case and sorted, in the source's day rows.
  EXPECT_EQ(QueryText(*db_,
                      "SELECT names FROM source_days WHERE source_ip = '192.0.2.2' AND "
                      "day = 1709251200"),
            "[\"dkim:mail.example.com\",\"header_from:example.com\",\"spf:bounce.example.com\"]");
}

TEST_F(RollupsTest, DuplicatesAndFailedReportsAddNothing) {
  IngestCorpus();
  const std::string before =
      Dump(std::string("domain || day || ") +
           "messages AS row FROM source_days ORDER BY domain, day, source_ip");
  const int64_t domain_rows = QueryInt(*db_, "SELECT SUM(messages) FROM domain_days");
  Writer writer(*db_, parser::Limits{});
  auto again = writer.Ingest(parser::Envelope{MultiDayReport("multi-1"), "file:again"});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->Overall(), PartStatus::kDuplicate);
  // Cut off in the middle of a record: the report is rejected whole.
  const std::string whole = MultiDayReport("multi-2");
  auto cut = writer.Ingest(parser::Envelope{whole.substr(0, whole.size() - 200), "file:cut"});
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->Overall(), PartStatus::kRejected);

  EXPECT_EQ(QueryInt(*db_, "SELECT SUM(messages) FROM domain_days"), domain_rows);
  EXPECT_EQ(Dump(std::string("domain || day || ") +
                 "messages AS row FROM source_days ORDER BY domain, day, source_ip"),
            before);
}

TEST_F(RollupsTest, AGroupCommitWritesTheRollupsOfWhatItKeepsOnly) {
  // In one batch: a report, one cut off half-way (rejected, its savepoint
  // rolled back), a duplicate, then another report; the roll-ups are held
  // until the commit and must match what was stored.
  Writer writer(*db_, parser::Limits{});
  ASSERT_TRUE(writer.BeginBatch());
  const std::string cut = MultiDayReport("batch-cut");
  for (const auto& [bytes, origin] : std::vector<std::pair<std::string, std::string>>{
           {MultiDayReport("batch-1"), "file:1"},
           {cut.substr(0, cut.size() - 200), "file:cut"},
           {MultiDayReport("batch-1"), "file:again"},
           {MultiDayReport("batch-2"), "file:2"}}) {
    auto outcome = writer.Ingest(parser::Envelope{bytes, origin});
    ASSERT_TRUE(outcome) << outcome.error().ToString();
  }
  // Nothing is written before the commit.
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM source_days"), 0);
  ASSERT_TRUE(writer.CommitBatch());

  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM reports"), 2);
  EXPECT_EQ(QueryInt(*db_, "SELECT SUM(messages) FROM domain_days"), 2 * 1014);
  EXPECT_EQ(QueryInt(*db_, "SELECT SUM(messages) FROM source_days"), 2 * 1014);
  EXPECT_EQ(QueryInt(*db_, "SELECT SUM(records) FROM source_reports"), 12);
  EXPECT_EQ(QueryInt(*db_, "SELECT SUM(messages) FROM reporter_days"), 2 * 1014);
  EXPECT_EQ(Mismatches(std::string("SELECT domain, day, ") + kSums +
                           " FROM report_days GROUP BY domain, day",
                       std::string("SELECT domain, day, ") + kFigures + " FROM domain_days"),
            0);

  // An abandoned batch leaves no roll-up behind, held or written.
  ASSERT_TRUE(writer.BeginBatch());
  ASSERT_TRUE(writer.Ingest(parser::Envelope{MultiDayReport("batch-3"), "file:3"}));
  writer.AbandonBatch();
  ASSERT_TRUE(writer.Ingest(parser::Envelope{MultiDayReport("batch-4"), "file:4"}));
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM reports"), 3);
  EXPECT_EQ(QueryInt(*db_, "SELECT SUM(messages) FROM domain_days"), 3 * 1014);
  EXPECT_EQ(QueryInt(*db_, "SELECT SUM(messages) FROM source_days"), 3 * 1014);
}

TEST_F(RollupsTest, AReportOfManySourcesIsWrittenInPartsThatAddUp) {
  // One day, more distinct sources than RollupWriter holds for a report
  // (kRollupReportSources): they are written in parts. The first 300
  // sources come back after the first part with another DKIM domain, so
  // their rows are upserted twice.
  const size_t distinct = kRollupReportSources + 700;
  std::string xml =
      "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>Big</org_name><email>"
      "dmarc@big.example</email><report_id>many</report_id><date_range><begin>1709251200"
      "</begin><end>1709337599</end></date_range></report_metadata><policy_published><domain>"
      "many.example.net</domain><p>none</p></policy_published>";
  auto record = [](size_t i, const std::string& dkim) {
    const std::string ip = "10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) +
                           "." + std::to_string(i % 256);
    return "<record><row><source_ip>" + ip + "</source_ip><count>" + std::to_string(i % 7 + 1) +
           "</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail"
           "</spf></policy_evaluated></row><identifiers><header_from>many.example.net"
           "</header_from></identifiers><auth_results><dkim><domain>" +
           dkim +
           "</domain><result>pass</result></dkim><spf><domain>many.example.net</domain>"
           "<result>fail</result></spf></auth_results></record>";
  };
  uint64_t messages = 0;
  for (size_t i = 0; i < distinct; ++i) {
    xml += record(i, "a.example.net");
    messages += i % 7 + 1;
  }
  for (size_t i = 0; i < 300; ++i) {
    xml += record(i, "b.example.net");
    messages += i % 7 + 1;
  }
  xml += "</feedback>";

  Writer writer(*db_, parser::Limits{});
  auto outcome = writer.Ingest(parser::Envelope{xml, "file:many"});
  ASSERT_TRUE(outcome) << outcome.error().ToString();
  ASSERT_EQ(outcome->Overall(), PartStatus::kStored);

  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM source_days"), static_cast<int64_t>(distinct));
  EXPECT_EQ(QueryInt(*db_, "SELECT SUM(messages) FROM source_days"),
            static_cast<int64_t>(messages));
  EXPECT_EQ(QueryInt(*db_, "SELECT messages FROM domain_days"), static_cast<int64_t>(messages));
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM source_reports"), static_cast<int64_t>(distinct));
  EXPECT_EQ(QueryInt(*db_, "SELECT SUM(records) FROM source_reports"),
            static_cast<int64_t>(distinct + 300));
  // 10.0.0.5 came twice: 6 + 6 messages, both DKIM domains.
  EXPECT_EQ(QueryInt(*db_, "SELECT messages FROM source_days WHERE source_ip = '10.0.0.5'"), 12);
  EXPECT_EQ(QueryInt(*db_, "SELECT records FROM source_reports WHERE source_ip = '10.0.0.5'"), 2);
  EXPECT_EQ(QueryText(*db_, "SELECT names FROM source_days WHERE source_ip = '10.0.0.5'"),
            "[\"dkim:a.example.net\",\"dkim:b.example.net\",\"header_from:many.example.net\","
            "\"spf:many.example.net\"]");
  EXPECT_EQ(QueryText(*db_, "SELECT names FROM source_days WHERE source_ip = '10.0.2.0'"),
            "[\"dkim:a.example.net\",\"header_from:many.example.net\","
            "\"spf:many.example.net\"]");

  // The parts are undone with the report: cut off, nothing of it stays.
  std::string cut_xml = xml.substr(0, xml.size() - 2000);
  cut_xml.replace(cut_xml.find("<report_id>many"), 15, "<report_id>cut");
  auto cut = writer.Ingest(parser::Envelope{cut_xml, "file:cut"});
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->Overall(), PartStatus::kRejected);
  EXPECT_EQ(QueryInt(*db_, "SELECT SUM(messages) FROM source_days"),
            static_cast<int64_t>(messages));
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM source_reports"), static_cast<int64_t>(distinct));
}

TEST_F(RollupsTest, MigrationBuildsTheRollupsOfStoredReports) {
  IngestCorpus();
  const std::string sources =
      "domain || ',' || day || ',' || source_ip || ',' || messages || ',' "
      "|| dmarc_pass || ',' || disposition_reject || ',' || first_seen "
      "|| ',' || last_seen AS row FROM source_days ";
  const std::string single_day_sources = Dump(sources +
                                              "WHERE domain <> 'rollup-test.example.net' "
                                              "ORDER BY domain, day, source_ip");
  const std::string source_totals = Dump(
      "domain || ',' || source_ip || ',' || SUM(messages) || ',' || SUM(disposition_none) AS row "
      "FROM source_days GROUP BY domain, source_ip ORDER BY domain, source_ip");
  const std::string domains = Dump(
      "domain || ',' || day || ',' || messages || ',' || spf_aligned_pass AS row FROM "
      "domain_days ORDER BY domain, day");
  const std::string reporters = Dump(
      "domain || ',' || day || ',' || reporter_key || ',' || messages AS row FROM "
      "reporter_days ORDER BY 1");
  const std::string reports = Dump(
      "domain || ',' || source_ip || ',' || report_id || ',' || records || ',' || messages AS row "
      "FROM source_reports ORDER BY 1");
  const std::string names =
      Dump("domain || source_ip || day || names AS row FROM source_days ORDER BY 1");
  ASSERT_FALSE(single_day_sources.empty());
  ASSERT_NE(names.find("spf:bounce.example.com"), std::string::npos);

  // Back to schema 3 with the same reports, then open again: 0004 and
  // 0005 run.
  ASSERT_TRUE(
      db_->Exec("DROP TABLE domain_days; DROP TABLE source_days; DROP TABLE source_reports; "
                "DROP TABLE reporter_days; PRAGMA user_version = 3"));
  db_.reset();
  auto reopened = Database::Open(path_);
  ASSERT_TRUE(reopened) << reopened.error().ToString();
  db_ = std::move(*reopened);
  EXPECT_EQ(QueryInt(*db_, "PRAGMA user_version"), Database::LatestSchemaVersion());
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'source_names'"), 0);

  EXPECT_EQ(
      Dump(sources + "WHERE domain <> 'rollup-test.example.net' ORDER BY domain, day, source_ip"),
      single_day_sources);
  EXPECT_EQ(Dump("domain || ',' || source_ip || ',' || SUM(messages) || ',' || "
                 "SUM(disposition_none) AS row FROM source_days GROUP BY domain, source_ip "
                 "ORDER BY domain, source_ip"),
            source_totals);
  EXPECT_EQ(Dump("domain || ',' || day || ',' || messages || ',' || spf_aligned_pass AS row FROM "
                 "domain_days ORDER BY domain, day"),
            domains);
  EXPECT_EQ(Dump("domain || ',' || day || ',' || reporter_key || ',' || messages AS row FROM "
                 "reporter_days ORDER BY 1"),
            reporters);
  EXPECT_EQ(Dump("domain || ',' || source_ip || ',' || report_id || ',' || records || ',' || "
                 "messages AS row FROM source_reports ORDER BY 1"),
            reports);
  EXPECT_EQ(Dump("domain || source_ip || day || names AS row FROM source_days ORDER BY 1"), names);
}

TEST_F(RollupsTest, MigrationFiveMovesTheNamesIntoTheDayRows) {
  IngestCorpus();
  const std::string days = Dump(
      "domain || ',' || day || ',' || source_ip || ',' || messages || ',' || names AS row "
      "FROM source_days ORDER BY 1");

  // A database of schema 4: names in a table of their own, none in the rows.
  ASSERT_TRUE(db_->Exec(
      "ALTER TABLE source_days DROP COLUMN names; "
      "CREATE TABLE source_names (domain TEXT NOT NULL, source_ip TEXT NOT NULL, day INTEGER "
      "NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (domain, source_ip, day, "
      "kind, name)) WITHOUT ROWID; "
      "INSERT INTO source_names VALUES ('rollup-test.example.net', '192.0.2.2', 1709251200, "
      "'dkim', 'mail.example.com'); "
      "PRAGMA user_version = 4"));
  db_.reset();
  auto reopened = Database::Open(path_);
  ASSERT_TRUE(reopened) << reopened.error().ToString();
  db_ = std::move(*reopened);

  EXPECT_EQ(QueryInt(*db_, "PRAGMA user_version"), Database::LatestSchemaVersion());
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'source_names'"), 0);
  EXPECT_EQ(Dump("domain || ',' || day || ',' || source_ip || ',' || messages || ',' || names "
                 "AS row FROM source_days ORDER BY 1"),
            days);
}

TEST_F(RollupsTest, NamesOfTheSameSourceAndDayAreMergedAcrossReports) {
  // Two reporters name 192.0.2.9 on the same day with other names, one in
  // a group commit and one on its own; a third report repeats one name.
  auto report = [](const std::string& org, const std::string& header_from,
                   const std::string& dkim) {
    return "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>" + org +
           "</org_name><email>dmarc@" + org +
           "</email><report_id>r1</report_id><date_range><begin>1709251200</begin><end>1709337599"
           "</end></date_range></report_metadata><policy_published><domain>merge.example.net"
           "</domain><p>none</p></policy_published><record><row><source_ip>192.0.2.9</source_ip>"
           "<count>2</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"
           "<spf>fail</spf></policy_evaluated></row><identifiers><header_from>" +
           header_from + "</header_from></identifiers><auth_results><dkim><domain>" + dkim +
           "</domain><result>pass</result></dkim><spf><domain>Bounce.Example.NET</domain>"
           "<result>fail</result></spf></auth_results></record></feedback>";
  };
  Writer writer(*db_, parser::Limits{});
  ASSERT_TRUE(writer.BeginBatch());
  auto first = writer.Ingest(
      parser::Envelope{report("a.example", "merge.example.net", "z.example.net"), "file:a"});
  auto second = writer.Ingest(
      parser::Envelope{report("b.example", "News.Merge.example.net", "a.example.net"), "file:b"});
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(writer.CommitBatch());
  auto third = writer.Ingest(
      parser::Envelope{report("c.example", "merge.example.net", "a.example.net"), "file:c"});
  ASSERT_TRUE(third);
  ASSERT_EQ(third->Overall(), PartStatus::kStored);

  EXPECT_EQ(QueryText(*db_, "SELECT names FROM source_days WHERE domain = 'merge.example.net'"),
            "[\"dkim:a.example.net\",\"dkim:z.example.net\",\"header_from:merge.example.net\","
            "\"header_from:news.merge.example.net\",\"spf:bounce.example.net\"]");
  EXPECT_EQ(QueryInt(*db_, "SELECT messages FROM source_days WHERE domain = 'merge.example.net'"),
            6);

  Reader reader(*db_);
  TimeFilter filter;
  filter.domain = "merge.example.net";
  auto sources = reader.Sources(filter, SourceQuery{}, PageRequest{});
  ASSERT_TRUE(sources) << sources.error().ToString();
  ASSERT_EQ(sources->items.size(), 1U);
  const SourceRow& source = sources->items[0];
  EXPECT_EQ(source.header_from,
            (std::vector<std::string>{"merge.example.net", "news.merge.example.net"}));
  EXPECT_EQ(source.dkim_domains, (std::vector<std::string>{"a.example.net", "z.example.net"}));
  EXPECT_EQ(source.spf_domains, std::vector<std::string>{"bounce.example.net"});
  EXPECT_EQ(source.reports, 3);
}

TEST_F(RollupsTest, ReparsedReportIsRolledUp) {
  // A rejected row whose bytes now parse, as after a parser fix.
  const std::string bytes = MultiDayReport("multi-reparse");
  const std::string sql =
      "INSERT INTO rejected (received_at, origin, name, code, message, size, sha256, bytes) "
      "VALUES (1, 'file:old', 'old.xml', 'malformed_xml', 'was broken', " +
      std::to_string(bytes.size()) + ", '" + Sha256Hex(bytes) + "', '" + bytes + "')";
  ASSERT_TRUE(db_->Exec(sql.c_str()));
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM domain_days"), 0);

  Writer writer(*db_, parser::Limits{});
  auto reparsed = writer.Reparse(std::nullopt);
  ASSERT_TRUE(reparsed) << reparsed.error().ToString();
  EXPECT_EQ(reparsed->recovered, 1);

  EXPECT_EQ(
      QueryInt(*db_,
               "SELECT SUM(messages) FROM domain_days WHERE domain = 'rollup-test.example.net'"),
      1014);
  EXPECT_EQ(
      QueryInt(*db_,
               "SELECT SUM(messages) FROM source_days WHERE domain = 'rollup-test.example.net'"),
      1014);
  Reader reader(*db_);
  auto sources = reader.Sources(TimeFilter{std::string("rollup-test.example.net"), {}, {}},
                                SourceQuery{}, PageRequest{});
  ASSERT_TRUE(sources) << sources.error().ToString();
  ASSERT_EQ(sources->total, 5);
  // Sorted by failing messages: 192.0.2.2 has 7, then 192.0.2.3 with 3.
  EXPECT_EQ(sources->items.at(0).source_ip, "192.0.2.2");
  EXPECT_EQ(sources->items.at(1).source_ip, "192.0.2.3");
  EXPECT_EQ(sources->items.at(0).reports, 1);
  EXPECT_EQ(sources->items.at(0).first_seen, kMultiBegin);
  EXPECT_EQ(sources->items.at(0).last_seen, kMultiEnd);
}

}  // namespace
}  // namespace dmarcd::storage
