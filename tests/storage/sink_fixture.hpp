// Drives EnvelopeStore by hand, in the order ParseEnvelope calls it, so the
// storage side can be tested with exactly the reports a test needs.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/envelope_store.hpp"
#include "storage/reader.hpp"
#include "temp_database.hpp"

namespace dmarcd::storage::testing {

constexpr int64_t kMarch1 = 1709251200;  // 2024-03-01T00:00:00Z
constexpr int64_t kDay = 86400;
constexpr int64_t kHour = 3600;

struct TestDocument {
  std::string name = "report.xml";
  std::string part_bytes = "<feedback/>";
  parser::AggregateHeader header;
  std::vector<parser::AggregateRecord> records;
  std::vector<std::string> warnings;
  // When set, the parser "fails" after the records with this error.
  std::optional<Error> failure;
};

inline parser::AggregateHeader SimpleHeader(std::string report_id, std::string domain,
                                            int64_t begin, int64_t end) {
  parser::AggregateHeader header;
  header.org_name = "google.com";
  header.email = "noreply-dmarc-support@google.com";
  header.report_id = std::move(report_id);
  header.begin = begin;
  header.end = end;
  header.policy.domain = std::move(domain);
  header.policy.p = "none";
  return header;
}

inline parser::AggregateRecord SimpleRecord(std::string ip, uint64_t count, bool dkim_pass,
                                            bool spf_pass, std::string disposition = "none") {
  parser::AggregateRecord record;
  record.source_ip = std::move(ip);
  record.count = count;
  record.disposition = std::move(disposition);
  record.policy_dkim = dkim_pass ? "pass" : "fail";
  record.policy_spf = spf_pass ? "pass" : "fail";
  record.header_from = "example.com";
  record.dkim.push_back({"example.com", "s1", dkim_pass ? "pass" : "fail", std::nullopt});
  record.spf.push_back({"example.com", "mfrom", spf_pass ? "pass" : "softfail", std::nullopt});
  return record;
}

class SinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Database::Open(folder_.File("dmarcd.db"));
    ASSERT_TRUE(opened) << opened.error().ToString();
    db_ = std::move(*opened);
    store_ = std::make_unique<EnvelopeStore>(*db_);
    reader_ = std::make_unique<Reader>(*db_);
  }

  // One envelope in one transaction, as Writer::Ingest runs it.
  EnvelopeOutcome Envelope(const std::string& bytes,
                           const std::function<void(EnvelopeStore&)>& feed) {
    EXPECT_TRUE(db_->Exec("BEGIN IMMEDIATE"));
    auto begun = store_->BeginEnvelope(parser::Envelope{bytes, "test:" + bytes.substr(0, 8)});
    EXPECT_TRUE(begun) << begun.error().ToString();
    feed(*store_);
    auto outcome = store_->FinishEnvelope();
    EXPECT_TRUE(outcome) << outcome.error().ToString();
    EXPECT_TRUE(db_->Exec("COMMIT"));
    return outcome ? *outcome : EnvelopeOutcome{};
  }

  // The calls ParseEnvelope makes for one document.
  static void Feed(EnvelopeStore& store, const TestDocument& doc) {
    parser::DocumentInfo info{doc.name, doc.part_bytes, doc.part_bytes.size()};
    parser::AggregateSink& sink = store.OnAggregateBegin(info);
    auto header = sink.OnHeader(doc.header);
    if (!header) {
      store.OnAggregateEnd(info, tl::unexpected(header.error()));
      return;
    }
    if (*header == parser::SinkAction::kStop) {
      store.OnAggregateEnd(info, {});
      return;
    }
    for (const auto& record : doc.records) {
      auto stored = sink.OnRecord(record);
      if (!stored) {
        store.OnAggregateEnd(info, tl::unexpected(stored.error()));
        return;
      }
    }
    if (doc.failure) {
      store.OnAggregateEnd(info, tl::unexpected(*doc.failure));
      return;
    }
    store.OnAggregateEnd(info, sink.OnEnd(doc.warnings));
  }

  EnvelopeOutcome Single(const TestDocument& doc, const std::string& envelope_bytes) {
    return Envelope(envelope_bytes, [&](EnvelopeStore& store) { Feed(store, doc); });
  }

  int64_t Count(const std::string& table) {
    return QueryInt(*db_, "SELECT COUNT(*) FROM " + table);
  }

  TempFolder folder_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<EnvelopeStore> store_;
  std::unique_ptr<Reader> reader_;
};

}  // namespace dmarcd::storage::testing
