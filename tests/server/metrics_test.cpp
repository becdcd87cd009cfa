// /metrics: the Prometheus exposition built from outcomes, and scraped from
// the real binary after an upload, a duplicate and a rejection.
#include "server/metrics.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "server/imap_poller.hpp"
#include "tests/faults/fault_harness.hpp"

namespace dmarcd::server {
namespace {

// The value of one sample line ("name{labels} value"), or -1 when absent.
double Sample(const std::string& exposition, const std::string& series) {
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

storage::PartOutcome Part(storage::PartStatus status, uint64_t records = 0) {
  storage::PartOutcome part;
  part.status = status;
  part.records = records;
  return part;
}

TEST(MetricsTest, ChannelComesFromTheOrigin) {
  EXPECT_EQ(ChannelOf("http:upload/3 token=ci client=127.0.0.1"), "http");
  EXPECT_EQ(ChannelOf("imap:work/INBOX;UIDVALIDITY=1/;UID=4"), "imap");
  EXPECT_EQ(ChannelOf("file:/var/reports/a.xml"), "file");
  EXPECT_EQ(ChannelOf("stdin"), "stdin");
  EXPECT_EQ(ChannelOf("stdin#2"), "stdin");
  EXPECT_EQ(ChannelOf("reparse:7"), "other");
  EXPECT_EQ(ChannelOf("httpx:1"), "other");
}

TEST(MetricsTest, CountsOutcomesByChannelKindAndReason) {
  Metrics metrics;
  storage::EnvelopeOutcome stored;
  stored.parts = {Part(storage::PartStatus::kStored, 2), Part(storage::PartStatus::kRejected)};
  stored.parts[1].error = Error(ErrorCode::kMalformedXml, "line 3");
  metrics.RecordEnvelope("http:upload/1", stored, std::chrono::milliseconds(20));
  storage::EnvelopeOutcome duplicate;
  duplicate.parts = {Part(storage::PartStatus::kDuplicate, 2)};
  metrics.RecordEnvelope("imap:work/INBOX;UIDVALIDITY=1/;UID=9", duplicate,
                         std::chrono::milliseconds(3));
  metrics.RecordEnvelope("http:upload/2",
                         tl::unexpected(Error(ErrorCode::kDatabaseBusy, "database is locked")),
                         std::chrono::seconds(2));
  metrics.RecordHttpRequest("/api/v1/reports", 201);
  metrics.RecordHttpRequest("/api/v1/reports", 201);
  metrics.RecordHttpRequest("/healthz", 503);

  const std::string text = metrics.Render();
  EXPECT_EQ(Sample(text, R"(dmarcd_envelopes_total{channel="http",outcome="stored"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_envelopes_total{channel="imap",outcome="duplicate"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_envelopes_total{channel="http",outcome="deferred"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_reports_stored_total{kind="aggregate"})"), 1);
  EXPECT_EQ(Sample(text, "dmarcd_records_stored_total"), 2);
  EXPECT_EQ(Sample(text, R"(dmarcd_duplicate_reports_total{kind="aggregate"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_rejected_parts_total{reason="malformed_xml"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_deferred_envelopes_total{reason="database_busy"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_http_requests_total{route="/api/v1/reports",status="201"})"), 2);
  EXPECT_EQ(Sample(text, R"(dmarcd_http_requests_total{route="/healthz",status="503"})"), 1);
  EXPECT_EQ(Sample(text, "dmarcd_ingest_duration_seconds_count"), 3);
  EXPECT_EQ(Sample(text, R"(dmarcd_ingest_duration_seconds_bucket{le="0.005"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_ingest_duration_seconds_bucket{le="0.025"})"), 2);
  EXPECT_EQ(Sample(text, R"(dmarcd_ingest_duration_seconds_bucket{le="+Inf"})"), 3);
  EXPECT_EQ(Sample(text, "dmarcd_writer_up"), 0);
  EXPECT_NE(text.find("# TYPE dmarcd_envelopes_total counter"), std::string::npos);
  EXPECT_NE(text.find("# TYPE dmarcd_ingest_duration_seconds histogram"), std::string::npos);
}

TEST(MetricsTest, ImapAccountsAndDatabaseSizeAreReadAtScrapeTime) {
  faults::TempDir dir("dmarcd-metrics-unit");
  const std::string db = (dir.Path() / "dmarcd.db").string();
  faults::WriteFile(db, std::string(8192, 'x'));
  ImapHealth health;
  PollStats good;
  health.Record("work", good);
  PollStats bad;
  bad.error = Error(ErrorCode::kNetwork, "connection refused");
  health.Record("work", bad);
  health.Record("home", bad);

  Metrics metrics;
  metrics.SetDatabasePath(db);
  metrics.SetImapHealth(&health);
  const std::string text = metrics.Render();
  EXPECT_EQ(Sample(text, R"(dmarcd_database_size_bytes{file="main"})"), 8192);
  EXPECT_EQ(Sample(text, R"(dmarcd_database_size_bytes{file="wal"})"), 0);
  EXPECT_EQ(Sample(text, R"(dmarcd_imap_polls_total{account="work"})"), 2);
  EXPECT_EQ(Sample(text, R"(dmarcd_imap_poll_failures_total{account="work"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_imap_poll_failures_total{account="home"})"), 1);
  EXPECT_GT(Sample(text, R"(dmarcd_imap_last_good_poll_timestamp_seconds{account="work"})"), 1.7e9);
  EXPECT_EQ(Sample(text, R"(dmarcd_imap_last_good_poll_timestamp_seconds{account="home"})"), -1);
}

// The real binary: an upload, the same upload again and a malformed one,
// then a scrape.
TEST(MetricsTest, ServeCountsAnUploadADuplicateAndARejection) {
  faults::TempDir dir("dmarcd-metrics");
  const faults::fs::path db = dir.Path() / "dmarcd.db";
  const std::string token = faults::AddIngestToken(db, dir.Path());
  faults::Server server(db, dir.Path());
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  const std::string report = faults::ReadFile(faults::DataDir() / "control_valid_aggregate.xml");
  const std::string malformed =
      faults::ReadFile(faults::DataDir() / "veeam_malformed-xml_parsedmarc.xml");
  ASSERT_FALSE(report.empty());
  ASSERT_FALSE(malformed.empty());

  EXPECT_EQ(faults::Http(server.Port(), "POST", "/api/v1/reports", report, token).status, 201);
  EXPECT_EQ(faults::Http(server.Port(), "POST", "/api/v1/reports", report, token).status, 200);
  const faults::HttpResult rejected =
      faults::Http(server.Port(), "POST", "/api/v1/reports", malformed, token);
  EXPECT_EQ(rejected.status, 422) << rejected.body;
  EXPECT_EQ(faults::Http(server.Port(), "GET", "/api/v1/reports/999999").status, 404);

  const faults::HttpResult scrape = faults::Http(server.Port(), "GET", "/metrics");
  ASSERT_EQ(scrape.status, 200);
  EXPECT_NE(scrape.headers.find("text/plain; version=0.0.4"), std::string::npos) << scrape.headers;
  const std::string& text = scrape.body;
  EXPECT_EQ(Sample(text, R"(dmarcd_envelopes_total{channel="http",outcome="stored"})"), 1) << text;
  EXPECT_EQ(Sample(text, R"(dmarcd_envelopes_total{channel="http",outcome="duplicate"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_envelopes_total{channel="http",outcome="rejected"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_reports_stored_total{kind="aggregate"})"), 1);
  EXPECT_EQ(Sample(text, "dmarcd_records_stored_total"), 2);
  EXPECT_EQ(Sample(text, R"(dmarcd_duplicate_reports_total{kind="aggregate"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_rejected_parts_total{reason="malformed_xml"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_http_requests_total{route="/api/v1/reports",status="201"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_http_requests_total{route="/api/v1/reports",status="200"})"), 1);
  EXPECT_EQ(Sample(text, R"(dmarcd_http_requests_total{route="/api/v1/reports",status="422"})"), 1);
  EXPECT_EQ(
      Sample(text, R"(dmarcd_http_requests_total{route="/api/v1/reports/{id}",status="404"})"), 1);
  EXPECT_EQ(Sample(text, "dmarcd_ingest_duration_seconds_count"), 3);
  EXPECT_GT(Sample(text, R"(dmarcd_database_size_bytes{file="main"})"), 4096);
  EXPECT_EQ(Sample(text, "dmarcd_writer_up"), 1);

  // The scrape itself is counted at the next one.
  const faults::HttpResult again = faults::Http(server.Port(), "GET", "/metrics");
  EXPECT_EQ(Sample(again.body, R"(dmarcd_http_requests_total{route="/metrics",status="200"})"), 1);
  EXPECT_EQ(server.Stop(), 0);
}

}  // namespace
}  // namespace dmarcd::server
