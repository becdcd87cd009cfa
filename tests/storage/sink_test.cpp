#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <utility>

#include "sink_fixture.hpp"
#include "storage/tokens.hpp"

namespace dmarcd::storage {
namespace {

using testing::kDay;
using testing::kHour;
using testing::kMarch1;
using testing::QueryInt;
using testing::QueryText;
using testing::SimpleHeader;
using testing::SimpleRecord;
using testing::TestDocument;

// A report that sets every field the model has.
TestDocument FullDocument() {
  TestDocument doc;
  doc.name = "google.com!example.com!1709251200!1709337599.xml";
  doc.part_bytes = "<?xml version=\"1.0\"?><feedback>full</feedback>";
  parser::AggregateHeader& h = doc.header;
  h.version = "1.0";
  h.xml_namespace = "urn:ietf:params:xml:ns:dmarc-2.0";
  h.org_name = "Example Reporter";
  h.email = "dmarc@reporter.example";
  h.extra_contact_info = "https://reporter.example/dmarc";
  h.report_id = "17092512001234";
  h.begin = kMarch1;
  h.end = kMarch1 + kDay;
  h.errors = {"record 3 truncated", "second error"};
  h.generator = "reporter-mta 2.1";
  h.policy.domain = "Example.COM";
  h.policy.adkim = "r";
  h.policy.aspf = "s";
  h.policy.p = "quarantine";
  h.policy.sp = "reject";
  h.policy.np = "none";
  h.policy.pct = 50;
  h.policy.fo = "1";
  h.policy.testing = "n";
  h.policy.discovery_method = "treewalk";

  parser::AggregateRecord first;
  first.source_ip = "2001:db8::1";
  first.count = uint64_t{5'000'000'000};  // above 2^32
  first.disposition = "none";
  first.policy_dkim = "pass";
  first.policy_spf = "fail";
  first.reasons = {{"forwarded", "list"}, {"local_policy", std::nullopt}};
  first.header_from = "example.com";
  first.envelope_from = "bounce.example.com";
  first.envelope_to = "example.net";
  first.dkim = {{"example.com", "s1", "pass", "good"},
                {"esp.example", "k2", "fail", std::nullopt},
                {std::nullopt, std::nullopt, "none", std::nullopt}};
  first.spf = {{"bounce.example.com", "mfrom", "fail", "no match"},
               {"mx.example.com", "helo", "pass", std::nullopt}};

  parser::AggregateRecord second;
  second.source_ip = "192.0.2.7";
  second.count = 3;
  second.disposition = "quarantine";
  second.policy_dkim = "fail";
  second.policy_spf = "fail";
  second.header_from = "example.com";

  doc.records = {first, second, SimpleRecord("198.51.100.1", 1, false, true, "reject")};
  doc.warnings = {"spf result 'hardfail' mapped to 'fail'", "invalid UTF-8 replaced"};
  return doc;
}

void ExpectSameRecord(const parser::AggregateRecord& a, const parser::AggregateRecord& b) {
  EXPECT_EQ(a.source_ip, b.source_ip);
  EXPECT_EQ(a.count, b.count);
  EXPECT_EQ(a.disposition, b.disposition);
  EXPECT_EQ(a.policy_dkim, b.policy_dkim);
  EXPECT_EQ(a.policy_spf, b.policy_spf);
  ASSERT_EQ(a.reasons.size(), b.reasons.size());
  for (size_t i = 0; i < a.reasons.size(); ++i) {
    EXPECT_EQ(a.reasons[i].type, b.reasons[i].type);
    EXPECT_EQ(a.reasons[i].comment, b.reasons[i].comment);
  }
  EXPECT_EQ(a.header_from, b.header_from);
  EXPECT_EQ(a.envelope_from, b.envelope_from);
  EXPECT_EQ(a.envelope_to, b.envelope_to);
  ASSERT_EQ(a.dkim.size(), b.dkim.size());
  for (size_t i = 0; i < a.dkim.size(); ++i) {
    EXPECT_EQ(a.dkim[i].domain, b.dkim[i].domain);
    EXPECT_EQ(a.dkim[i].selector, b.dkim[i].selector);
    EXPECT_EQ(a.dkim[i].result, b.dkim[i].result);
    EXPECT_EQ(a.dkim[i].human_result, b.dkim[i].human_result);
  }
  ASSERT_EQ(a.spf.size(), b.spf.size());
  for (size_t i = 0; i < a.spf.size(); ++i) {
    EXPECT_EQ(a.spf[i].domain, b.spf[i].domain);
    EXPECT_EQ(a.spf[i].scope, b.spf[i].scope);
    EXPECT_EQ(a.spf[i].result, b.spf[i].result);
    EXPECT_EQ(a.spf[i].human_result, b.spf[i].human_result);
  }
}

std::string Gunzip(const std::string& gz) {
  z_stream stream{};
  EXPECT_EQ(inflateInit2(&stream, 15 + 16), Z_OK);
  std::string out(1 << 16, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  stream.avail_in = static_cast<uInt>(gz.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  inflateEnd(&stream);
  return out;
}

class SinkTest : public testing::SinkTest {};

TEST_F(SinkTest, StoresEveryFieldAndReadsItBack) {
  const TestDocument doc = FullDocument();
  const EnvelopeOutcome outcome = Single(doc, "envelope with the full report");
  ASSERT_EQ(outcome.parts.size(), 1u);
  const PartOutcome& part = outcome.parts[0];
  EXPECT_EQ(part.status, PartStatus::kStored);
  EXPECT_EQ(part.name, doc.name);
  EXPECT_EQ(part.domain, "example.com");
  EXPECT_EQ(part.records, 3u);
  EXPECT_EQ(part.messages, uint64_t{5'000'000'004});
  EXPECT_EQ(part.begin, kMarch1);
  EXPECT_EQ(part.end, kMarch1 + kDay);
  EXPECT_EQ(part.warnings, doc.warnings);
  EXPECT_EQ(outcome.Overall(), PartStatus::kStored);
  EXPECT_EQ(outcome.Records(), 3u);

  auto detail = reader_->Report(part.report_pk);
  ASSERT_TRUE(detail) << detail.error().ToString();
  const ReportRow& row = detail->report;
  EXPECT_EQ(row.id, part.report_pk);
  EXPECT_EQ(row.org_name, "Example Reporter");
  EXPECT_EQ(row.org_email, "dmarc@reporter.example");
  EXPECT_EQ(row.report_id, "17092512001234");
  EXPECT_EQ(row.domain, "example.com");
  EXPECT_EQ(row.begin, kMarch1);
  EXPECT_EQ(row.end, kMarch1 + kDay);
  EXPECT_EQ(row.records, 3u);
  EXPECT_EQ(row.messages, uint64_t{5'000'000'004});
  EXPECT_EQ(row.origin, "test:envelope");
  EXPECT_GT(row.received_at, kMarch1);
  EXPECT_EQ(row.warnings, doc.warnings);

  const parser::AggregateHeader& h = detail->header;
  const parser::AggregateHeader& want = doc.header;
  EXPECT_EQ(h.version, want.version);
  EXPECT_EQ(h.xml_namespace, want.xml_namespace);
  EXPECT_EQ(h.org_name, want.org_name);
  EXPECT_EQ(h.email, want.email);
  EXPECT_EQ(h.extra_contact_info, want.extra_contact_info);
  EXPECT_EQ(h.report_id, want.report_id);
  EXPECT_EQ(h.begin, want.begin);
  EXPECT_EQ(h.end, want.end);
  EXPECT_EQ(h.errors, want.errors);
  EXPECT_EQ(h.generator, want.generator);
  EXPECT_EQ(h.policy.domain, "example.com");
  EXPECT_EQ(h.policy.adkim, want.policy.adkim);
  EXPECT_EQ(h.policy.aspf, want.policy.aspf);
  EXPECT_EQ(h.policy.p, want.policy.p);
  EXPECT_EQ(h.policy.sp, want.policy.sp);
  EXPECT_EQ(h.policy.np, want.policy.np);
  EXPECT_EQ(h.policy.pct, want.policy.pct);
  EXPECT_EQ(h.policy.fo, want.policy.fo);
  EXPECT_EQ(h.policy.testing, want.policy.testing);
  EXPECT_EQ(h.policy.discovery_method, want.policy.discovery_method);

  ASSERT_EQ(detail->records.size(), doc.records.size());
  for (size_t i = 0; i < doc.records.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectSameRecord(detail->records[i], doc.records[i]);
  }

  auto summary = reader_->Summary({});
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->messages, uint64_t{5'000'000'004});
  EXPECT_EQ(summary->dmarc_pass, uint64_t{5'000'000'001});
  EXPECT_EQ(summary->dkim_aligned_pass, uint64_t{5'000'000'000});
  EXPECT_EQ(summary->spf_aligned_pass, 1u);
  EXPECT_EQ(summary->disposition_none, uint64_t{5'000'000'000});
  EXPECT_EQ(summary->disposition_quarantine, 3u);
  EXPECT_EQ(summary->disposition_reject, 1u);
}

TEST_F(SinkTest, MissingReportIsNotFound) {
  auto detail = reader_->Report(42);
  ASSERT_FALSE(detail);
  EXPECT_EQ(detail.error().code, ErrorCode::kNotFound);
}

TEST_F(SinkTest, SameReportAgainIsADuplicateWithoutNewRows) {
  const TestDocument doc = FullDocument();
  const EnvelopeOutcome first = Single(doc, "first envelope");
  ASSERT_EQ(first.parts.size(), 1u);
  const int64_t reports = Count("reports");
  const int64_t records = Count("records");
  const int64_t dkim = Count("dkim_results");
  const int64_t days = Count("report_days");

  // The same key arriving in another envelope, with the domain in other case.
  TestDocument again = doc;
  again.header.policy.domain = "EXAMPLE.com";
  again.records.pop_back();
  const EnvelopeOutcome second = Single(again, "second envelope");
  ASSERT_EQ(second.parts.size(), 1u);
  const PartOutcome& part = second.parts[0];
  EXPECT_EQ(part.status, PartStatus::kDuplicate);
  EXPECT_EQ(part.report_pk, first.parts[0].report_pk);
  EXPECT_EQ(part.records, 3u);  // the stored row's figures
  EXPECT_EQ(part.messages, uint64_t{5'000'000'004});
  EXPECT_EQ(second.Overall(), PartStatus::kDuplicate);
  EXPECT_EQ(second.Records(), 0u);

  EXPECT_EQ(Count("reports"), reports);
  EXPECT_EQ(Count("records"), records);
  EXPECT_EQ(Count("dkim_results"), dkim);
  EXPECT_EQ(Count("report_days"), days);
  EXPECT_EQ(Count("raw_inputs"), 2);
}

TEST_F(SinkTest, SameIdForTheNextDayIsANewReport) {
  TestDocument doc;
  doc.header = SimpleHeader("reused-id", "example.com", kMarch1, kMarch1 + kDay);
  doc.records = {SimpleRecord("192.0.2.1", 2, true, true)};
  ASSERT_EQ(Single(doc, "day one").parts.at(0).status, PartStatus::kStored);
  doc.header.begin += kDay;
  doc.header.end += kDay;
  ASSERT_EQ(Single(doc, "day two").parts.at(0).status, PartStatus::kStored);
  EXPECT_EQ(Count("reports"), 2);
}

TEST_F(SinkTest, FailingDocumentLeavesNoPartialRows) {
  TestDocument doc = FullDocument();
  static constexpr char kBroken[] = "\x1f\x8b\x08\x00 broken gzip part\0with a nul";
  doc.part_bytes = std::string(kBroken, sizeof(kBroken) - 1);
  doc.failure = Error(ErrorCode::kMalformedXml, "line 40: unexpected end of document");
  const EnvelopeOutcome outcome = Single(doc, "envelope with a broken report");

  ASSERT_EQ(outcome.parts.size(), 1u);
  const PartOutcome& part = outcome.parts[0];
  EXPECT_EQ(part.status, PartStatus::kRejected);
  ASSERT_TRUE(part.error.has_value());
  EXPECT_EQ(part.error->code, ErrorCode::kMalformedXml);
  EXPECT_NE(part.rejected_pk, 0);

  for (const char* table : {"reports", "records", "record_reasons", "dkim_results", "spf_results",
                            "report_days", "report_notes"}) {
    EXPECT_EQ(Count(table), 0) << table;
  }
  EXPECT_EQ(Count("rejected"), 1);
  EXPECT_EQ(QueryText(*db_, "SELECT bytes FROM rejected"), doc.part_bytes);
  EXPECT_EQ(QueryText(*db_, "SELECT code FROM rejected"), "malformed_xml");
  EXPECT_EQ(QueryText(*db_, "SELECT message FROM rejected"), "line 40: unexpected end of document");
  EXPECT_EQ(QueryText(*db_, "SELECT name FROM rejected"), doc.name);
  EXPECT_EQ(QueryText(*db_, "SELECT sha256 FROM rejected"), Sha256Hex(doc.part_bytes));
  EXPECT_EQ(QueryInt(*db_, "SELECT size FROM rejected"), 32);
  EXPECT_EQ(QueryInt(*db_, "SELECT raw_input_id FROM rejected"), outcome.raw_pk);
}

TEST_F(SinkTest, GoodSiblingSurvivesABadOne) {
  TestDocument good;
  good.name = "archive.zip/good.xml";
  good.header = SimpleHeader("good-1", "example.com", kMarch1, kMarch1 + kDay);
  good.records = {SimpleRecord("192.0.2.1", 10, true, true),
                  SimpleRecord("192.0.2.2", 4, false, false, "reject")};
  TestDocument bad = FullDocument();
  bad.name = "archive.zip/bad.xml";
  bad.part_bytes = "the bad part";
  bad.failure = Error(ErrorCode::kTooManyEntries, "more than 2 records");

  const EnvelopeOutcome outcome = Envelope("zip envelope", [&](EnvelopeStore& store) {
    Feed(store, good);
    Feed(store, bad);
    store.OnRejected("archive.zip/readme.txt", "not a report", Error(ErrorCode::kNotXml, "text"));
  });
  ASSERT_EQ(outcome.parts.size(), 3u);
  EXPECT_EQ(outcome.parts[0].status, PartStatus::kStored);
  EXPECT_EQ(outcome.parts[1].status, PartStatus::kRejected);
  EXPECT_EQ(outcome.parts[2].status, PartStatus::kRejected);
  EXPECT_EQ(outcome.Count(PartStatus::kRejected), 2);
  EXPECT_EQ(outcome.Overall(), PartStatus::kStored);

  EXPECT_EQ(Count("reports"), 1);
  EXPECT_EQ(Count("records"), 2);
  EXPECT_EQ(QueryText(*db_, "SELECT report_id FROM reports"), "good-1");
  EXPECT_EQ(Count("rejected"), 2);
  EXPECT_EQ(QueryText(*db_, "SELECT code FROM rejected WHERE name = 'archive.zip/readme.txt'"),
            "not_xml");
  auto summary = reader_->Summary({});
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->messages, 14u);
  EXPECT_EQ(summary->dmarc_pass, 10u);
  EXPECT_EQ(summary->disposition_reject, 4u);
}

TEST_F(SinkTest, RejectedBytesAreStoredOnce) {
  const Error error(ErrorCode::kNoReport, "no attachment");
  const EnvelopeOutcome first = Envelope(
      "mail one", [&](EnvelopeStore& store) { store.OnRejected("mail", "the same bytes", error); });
  const EnvelopeOutcome second = Envelope(
      "mail two", [&](EnvelopeStore& store) { store.OnRejected("mail", "the same bytes", error); });
  ASSERT_EQ(first.parts.size(), 1u);
  ASSERT_EQ(second.parts.size(), 1u);
  EXPECT_EQ(second.parts[0].status, PartStatus::kRejected);
  EXPECT_NE(first.parts[0].rejected_pk, 0);
  EXPECT_EQ(second.parts[0].rejected_pk, first.parts[0].rejected_pk);
  EXPECT_EQ(Count("rejected"), 1);
  EXPECT_EQ(second.Overall(), PartStatus::kRejected);
}

TEST_F(SinkTest, RawEnvelopeIsArchivedOnceAndCompressedOnlyWhenPlain) {
  const std::string plain =
      "<?xml version=\"1.0\"?>\n<feedback>" + std::string(5000, 'x') + "</feedback>\n";
  const EnvelopeOutcome first = Envelope(plain, [](EnvelopeStore&) {});
  const EnvelopeOutcome again = Envelope(plain, [](EnvelopeStore&) {});
  EXPECT_NE(first.raw_pk, 0);
  EXPECT_EQ(again.raw_pk, first.raw_pk);
  EXPECT_EQ(Count("raw_inputs"), 1);

  const std::string where = " FROM raw_inputs WHERE id = " + std::to_string(first.raw_pk);
  EXPECT_EQ(QueryText(*db_, "SELECT compression" + where), "gzip");
  EXPECT_EQ(QueryText(*db_, "SELECT sha256" + where), Sha256Hex(plain));
  EXPECT_EQ(QueryInt(*db_, "SELECT size" + where), static_cast<int64_t>(plain.size()));
  const std::string stored = QueryText(*db_, "SELECT bytes" + where);
  EXPECT_LT(stored.size(), plain.size() / 10);
  EXPECT_EQ(Gunzip(stored), plain);

  const std::string gzipped = std::string("\x1f\x8b\x08\x00", 4) + "already compressed";
  const EnvelopeOutcome compressed = Envelope(gzipped, [](EnvelopeStore&) {});
  const std::string where_gz = " FROM raw_inputs WHERE id = " + std::to_string(compressed.raw_pk);
  EXPECT_EQ(QueryText(*db_, "SELECT compression" + where_gz), "none");
  EXPECT_EQ(QueryText(*db_, "SELECT bytes" + where_gz), gzipped);
  EXPECT_EQ(Count("raw_inputs"), 2);
}

TEST_F(SinkTest, ThirtySixHourReportSplitsExactlyOverTwoDays) {
  TestDocument doc;
  // 12 hours of March 1 and all of March 2.
  doc.header = SimpleHeader("long", "example.com", kMarch1 + 12 * kHour, kMarch1 + 2 * kDay);
  doc.records = {SimpleRecord("192.0.2.1", 1000, true, false),
                 SimpleRecord("192.0.2.2", 1, false, true, "quarantine"),
                 SimpleRecord("192.0.2.3", 1, false, false, "reject")};
  const EnvelopeOutcome outcome = Single(doc, "long report");
  ASSERT_EQ(outcome.parts.at(0).status, PartStatus::kStored);

  auto series = reader_->Timeseries({});
  ASSERT_TRUE(series) << series.error().ToString();
  ASSERT_EQ(series->size(), 2u);
  EXPECT_EQ((*series)[0].day, kMarch1);
  EXPECT_EQ((*series)[1].day, kMarch1 + kDay);
  // 1002 / 3 = 334 exactly; 1001 dmarc passes: 333.67 / 667.33.
  EXPECT_EQ((*series)[0].figures.messages, 334u);
  EXPECT_EQ((*series)[1].figures.messages, 668u);
  EXPECT_EQ((*series)[0].figures.dmarc_pass, 334u);
  EXPECT_EQ((*series)[1].figures.dmarc_pass, 667u);
  // One quarantined message: 1/3 and 2/3, so it lands on March 2.
  EXPECT_EQ((*series)[0].figures.disposition_quarantine, 0u);
  EXPECT_EQ((*series)[1].figures.disposition_quarantine, 1u);
  EXPECT_EQ((*series)[0].figures.disposition_reject + (*series)[1].figures.disposition_reject, 1u);
  EXPECT_EQ((*series)[0].figures.disposition_none + (*series)[1].figures.disposition_none, 1000u);
}

TEST_F(SinkTest, DaysWithoutAnyShareAreNotListed) {
  TestDocument doc;
  doc.header = SimpleHeader("one", "example.com", kMarch1 + 12 * kHour, kMarch1 + 2 * kDay);
  doc.records = {SimpleRecord("192.0.2.1", 1, true, true)};
  ASSERT_EQ(Single(doc, "one message").parts.at(0).status, PartStatus::kStored);
  auto series = reader_->Timeseries({});
  ASSERT_TRUE(series);
  ASSERT_EQ(series->size(), 1u);
  EXPECT_EQ((*series)[0].day, kMarch1 + kDay);
  EXPECT_EQ((*series)[0].figures.messages, 1u);
}

TEST_F(SinkTest, Issue6ImplausibleDateRangesAreRejectedWithoutRows) {
  const std::pair<int64_t, int64_t> ranges[] = {
      {0, INT64_MAX},                       // would be 10^14 day rows
      {kMarch1, kMarch1 + 400 * kDay},      // longer than a year
      {-kDay, kMarch1},                     // before 1970
      {INT64_MAX - kHour, INT64_MAX - 1}};  // after 9999
  int index = 0;
  for (const auto& [begin, end] : ranges) {
    SCOPED_TRACE(index);
    TestDocument doc;
    doc.part_bytes = "range " + std::to_string(index++);
    doc.header = SimpleHeader("range", "example.com", begin, end);
    doc.records = {SimpleRecord("192.0.2.1", 1, true, true)};
    const EnvelopeOutcome outcome = Single(doc, doc.part_bytes);
    ASSERT_EQ(outcome.parts.size(), 1u);
    EXPECT_EQ(outcome.parts[0].status, PartStatus::kRejected);
    ASSERT_TRUE(outcome.parts[0].error.has_value());
    EXPECT_EQ(outcome.parts[0].error->code, ErrorCode::kBadDateRange);
  }
  EXPECT_EQ(Count("reports"), 0);
  EXPECT_EQ(Count("report_days"), 0);
  EXPECT_EQ(Count("rejected"), 4);

  // A range of weeks is real (some gateways send them) and kept.
  TestDocument weeks;
  weeks.header = SimpleHeader("weeks", "example.com", kMarch1, kMarch1 + 24 * kDay);
  weeks.records = {SimpleRecord("192.0.2.1", 240, true, true)};
  ASSERT_EQ(Single(weeks, "weeks").parts.at(0).status, PartStatus::kStored);
  auto series = reader_->Timeseries({});
  ASSERT_TRUE(series);
  EXPECT_EQ(series->size(), 24u);
}

TEST_F(SinkTest, Issue6CountsThatWouldWrapAreRejected) {
  TestDocument doc;
  doc.header = SimpleHeader("huge", "example.com", kMarch1, kMarch1 + kDay);
  doc.records = {SimpleRecord("192.0.2.1", uint64_t{1} << 63, true, true),
                 SimpleRecord("192.0.2.2", uint64_t{1} << 63, true, true)};
  const EnvelopeOutcome outcome = Single(doc, "huge counts");
  ASSERT_EQ(outcome.parts.size(), 1u);
  EXPECT_EQ(outcome.parts[0].status, PartStatus::kRejected);
  ASSERT_TRUE(outcome.parts[0].error.has_value());
  EXPECT_EQ(outcome.parts[0].error->code, ErrorCode::kInvalidValue);
  EXPECT_EQ(Count("reports"), 0);
  EXPECT_EQ(Count("records"), 0);
}

TEST_F(SinkTest, SummaryEqualsTheSumOfItsSeries) {
  struct Spec {
    const char* id;
    const char* domain;
    int64_t begin;
    int64_t end;
    uint64_t count;
  };
  const Spec specs[] = {
      {"a", "example.com", kMarch1, kMarch1 + kDay, 97},
      {"b", "example.com", kMarch1 + 7 * kHour, kMarch1 + 2 * kDay + 5 * kHour, 1013},
      {"c", "example.org", kMarch1 + kDay, kMarch1 + 2 * kDay, 31},
      {"d", "example.org", kMarch1 + 3 * kDay + 3, kMarch1 + 3 * kDay + 3, 7},
      {"e", "example.com", kMarch1 + 4 * kDay - 1, kMarch1 + 6 * kDay + 1, 100003},
  };
  for (const Spec& spec : specs) {
    TestDocument doc;
    doc.header = SimpleHeader(spec.id, spec.domain, spec.begin, spec.end);
    doc.records = {SimpleRecord("192.0.2.1", spec.count, true, false),
                   SimpleRecord("192.0.2.9", spec.count / 3 + 1, false, false, "reject")};
    ASSERT_EQ(Single(doc, spec.id).parts.at(0).status, PartStatus::kStored);
  }

  const TimeFilter filters[] = {
      {},
      {"example.com", std::nullopt, std::nullopt},
      {"EXAMPLE.ORG", std::nullopt, std::nullopt},
      {std::nullopt, kMarch1 + kDay, kMarch1 + 3 * kDay},
      {"example.com", kMarch1 + 12 * kHour, kMarch1 + 5 * kDay},
      {std::nullopt, kMarch1 + 10 * kDay, std::nullopt},
      {"nobody.example", std::nullopt, std::nullopt},
  };
  uint64_t all_messages = 0;
  for (size_t i = 0; i < std::size(filters); ++i) {
    SCOPED_TRACE(i);
    auto summary = reader_->Summary(filters[i]);
    auto series = reader_->Timeseries(filters[i]);
    ASSERT_TRUE(summary && series);
    Figures sum;
    int64_t previous = INT64_MIN;
    for (const DayFigures& day : *series) {
      EXPECT_GT(day.day, previous);  // oldest first, each day once
      previous = day.day;
      sum.messages += day.figures.messages;
      sum.dmarc_pass += day.figures.dmarc_pass;
      sum.dkim_aligned_pass += day.figures.dkim_aligned_pass;
      sum.spf_aligned_pass += day.figures.spf_aligned_pass;
      sum.disposition_none += day.figures.disposition_none;
      sum.disposition_quarantine += day.figures.disposition_quarantine;
      sum.disposition_reject += day.figures.disposition_reject;
    }
    EXPECT_EQ(summary->messages, sum.messages);
    EXPECT_EQ(summary->dmarc_pass, sum.dmarc_pass);
    EXPECT_EQ(summary->dkim_aligned_pass, sum.dkim_aligned_pass);
    EXPECT_EQ(summary->spf_aligned_pass, sum.spf_aligned_pass);
    EXPECT_EQ(summary->disposition_none, sum.disposition_none);
    EXPECT_EQ(summary->disposition_quarantine, sum.disposition_quarantine);
    EXPECT_EQ(summary->disposition_reject, sum.disposition_reject);
    if (i == 0) {
      all_messages = summary->messages;
    }
  }

  uint64_t expected = 0;
  for (const Spec& spec : specs) {
    expected += spec.count + spec.count / 3 + 1;
  }
  EXPECT_EQ(all_messages, expected);
  // March 2 and 3 only: report c whole, the days of b inside.
  auto window = reader_->Timeseries({std::nullopt, kMarch1 + kDay, kMarch1 + 3 * kDay});
  ASSERT_TRUE(window);
  ASSERT_EQ(window->size(), 2u);
  EXPECT_EQ((*window)[0].day, kMarch1 + kDay);
  EXPECT_EQ((*window)[1].day, kMarch1 + 2 * kDay);
  auto other = reader_->Summary({"example.org", std::nullopt, std::nullopt});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->messages, 31u + 11u + 7u + 3u);
}

TEST_F(SinkTest, ReportsAreFilteredByOverlapNewestFirstWithTotals) {
  for (int i = 0; i < 5; ++i) {
    TestDocument doc;
    doc.header = SimpleHeader("r" + std::to_string(i), i == 4 ? "other.example" : "example.com",
                              kMarch1 + i * kDay, kMarch1 + (i + 1) * kDay);
    doc.records = {SimpleRecord("192.0.2.1", static_cast<uint64_t>(i) + 1, true, true)};
    doc.warnings = {"warning " + std::to_string(i)};
    ASSERT_EQ(Single(doc, "envelope " + std::to_string(i)).parts.at(0).status, PartStatus::kStored);
  }

  auto all = reader_->Reports({}, {2, 0});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->total, 5);
  ASSERT_EQ(all->items.size(), 2u);
  EXPECT_EQ(all->items[0].report_id, "r4");
  EXPECT_EQ(all->items[1].report_id, "r3");
  EXPECT_EQ(all->items[1].warnings, std::vector<std::string>{"warning 3"});
  EXPECT_EQ(all->items[1].messages, 4u);
  EXPECT_EQ(all->items[1].records, 1u);

  auto paged = reader_->Reports({}, {2, 4});
  ASSERT_TRUE(paged);
  EXPECT_EQ(paged->total, 5);
  ASSERT_EQ(paged->items.size(), 1u);
  EXPECT_EQ(paged->items[0].report_id, "r0");

  auto domain = reader_->Reports({"Example.Com", std::nullopt, std::nullopt}, {});
  ASSERT_TRUE(domain);
  EXPECT_EQ(domain->total, 4);

  // [March 2 12:00, March 4 00:00) overlaps the reports of March 2 and 3
  // only; the report ending exactly at the window's start does not.
  auto window =
      reader_->Reports({std::nullopt, kMarch1 + kDay + 12 * kHour, kMarch1 + 3 * kDay}, {});
  ASSERT_TRUE(window);
  EXPECT_EQ(window->total, 2);
  ASSERT_EQ(window->items.size(), 2u);
  EXPECT_EQ(window->items[0].report_id, "r2");
  EXPECT_EQ(window->items[1].report_id, "r1");

  auto domains = reader_->Domains();
  ASSERT_TRUE(domains);
  ASSERT_EQ(domains->size(), 2u);
  EXPECT_EQ((*domains)[0].domain, "example.com");
  EXPECT_EQ((*domains)[0].reports, 4);
  EXPECT_EQ((*domains)[0].messages, 1u + 2u + 3u + 4u);
  EXPECT_EQ((*domains)[0].first_begin, kMarch1);
  EXPECT_EQ((*domains)[0].last_end, kMarch1 + 4 * kDay);
  EXPECT_EQ((*domains)[1].domain, "other.example");
}

TEST_F(SinkTest, RejectedRowsAreListedNewestFirst) {
  for (int i = 0; i < 3; ++i) {
    Envelope("mail " + std::to_string(i), [&](EnvelopeStore& store) {
      store.OnRejected("part " + std::to_string(i), "bytes " + std::to_string(i),
                       Error(ErrorCode::kBadMime, "broken " + std::to_string(i)));
    });
  }
  auto page = reader_->Rejected({2, 0});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->total, 3);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].name, "part 2");
  EXPECT_EQ(page->items[0].code, "bad_mime");
  EXPECT_EQ(page->items[0].message, "broken 2");
  EXPECT_EQ(page->items[0].size, 7u);
  EXPECT_EQ(page->items[0].sha256, Sha256Hex("bytes 2"));
  EXPECT_FALSE(page->items[0].recovered);
  EXPECT_EQ(page->items[1].name, "part 1");
}

}  // namespace
}  // namespace dmarcd::storage
