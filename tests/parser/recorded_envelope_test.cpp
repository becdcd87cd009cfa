// parser::RecordEnvelope and ReplayEnvelope (issue #7: ingest parses one
// envelope ahead on another thread): for every file in tests/data, and for
// handlers that continue, stop at the header, refuse a record, refuse the
// end or fail transiently, replaying the recording tells the handler
// exactly what ParseEnvelope tells it, and returns the same.
#include "parser/recorded_envelope.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>

namespace dmarcd::parser {
namespace {

namespace fs = std::filesystem;

enum class Answer { kContinue, kStopAtHeader, kFailSecondRecord, kFailAtEnd, kBusyAtHeader };

std::string Digest(std::string_view bytes) {
  return std::to_string(bytes.size()) + "#" + std::to_string(std::hash<std::string_view>{}(bytes));
}

std::string Describe(const Result<void>& outcome) {
  if (outcome) return "ok";
  return std::string(ErrorCodeName(outcome.error().code)) + ":" + outcome.error().message;
}

// Writes down every call, and answers as `answer` says.
class Transcript final : public EnvelopeHandler, public AggregateSink {
 public:
  explicit Transcript(Answer answer) : answer_(answer) {}

  AggregateSink& OnAggregateBegin(const DocumentInfo& doc) override {
    records_ = 0;
    out_ << "begin " << doc.name << " " << Digest(doc.part_bytes) << "\n";
    return *this;
  }
  void OnAggregateEnd(const DocumentInfo& doc, const Result<void>& outcome) override {
    out_ << "end " << doc.name << " " << Describe(outcome);
    // A stop ends the inflating early in ParseEnvelope only.
    if (answer_ == Answer::kContinue) out_ << " inflated=" << doc.inflated_bytes;
    out_ << "\n";
  }
  void OnRejected(std::string_view name, std::string_view bytes, const Error& error) override {
    out_ << "rejected " << name << " " << Digest(bytes) << " " << ErrorCodeName(error.code) << ":"
         << error.message << "\n";
  }
  void OnFailureReport(std::string_view name, std::string_view bytes,
                       const FailureReport&) override {
    out_ << "failure " << name << " " << Digest(bytes) << "\n";
  }
  Result<SinkAction> OnHeader(const AggregateHeader& header) override {
    out_ << "header " << header.ReporterKey() << " " << header.report_id << " "
         << header.policy.domain << " " << header.begin << " " << header.end << " "
         << header.errors.size() << "\n";
    if (answer_ == Answer::kStopAtHeader) return SinkAction::kStop;
    if (answer_ == Answer::kBusyAtHeader) {
      return MakeError(ErrorCode::kDatabaseBusy, "the database is locked");
    }
    return SinkAction::kContinue;
  }
  Result<SinkAction> OnRecord(const AggregateRecord& record) override {
    out_ << "record " << record.source_ip << " " << record.count << " "
         << record.disposition.value_or("-") << " " << record.dkim.size() << " "
         << record.spf.size() << " " << record.reasons.size() << "\n";
    if (answer_ == Answer::kFailSecondRecord && ++records_ == 2) {
      return MakeError(ErrorCode::kInvalidValue, "the sink refuses the second record");
    }
    return SinkAction::kContinue;
  }
  Result<void> OnEnd(const std::vector<std::string>& warnings) override {
    out_ << "report end " << warnings.size() << "\n";
    if (answer_ == Answer::kFailAtEnd) return MakeError(ErrorCode::kInvalidValue, "no end");
    return {};
  }

  std::string Text() const { return out_.str(); }

 private:
  Answer answer_;
  int records_ = 0;
  std::ostringstream out_;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

TEST(RecordedEnvelopeTest, ReplayTellsTheHandlerWhatParsingTellsIt) {
  // The bombs only need to reach their limit, not a gigabyte.
  Limits limits;
  limits.max_inflated_bytes = uint64_t{64} << 20;
  limits.max_envelope_inflated_bytes = uint64_t{64} << 20;

  int files = 0;
  int recorded_files = 0;
  int with_records = 0;
  for (const auto& entry : fs::recursive_directory_iterator(DMARCD_TEST_DATA_DIR)) {
    if (!entry.is_regular_file() || entry.file_size() > (uint64_t{4} << 20)) continue;
    const Envelope envelope{ReadFile(entry.path()), "file:" + entry.path().filename().string()};
    ++files;
    auto recorded = RecordEnvelope(envelope, limits, 5000);
    if (!recorded) continue;
    ++recorded_files;
    if (recorded->document && !recorded->document->records.empty()) ++with_records;

    for (const Answer answer : {Answer::kContinue, Answer::kStopAtHeader, Answer::kFailSecondRecord,
                                Answer::kFailAtEnd, Answer::kBusyAtHeader}) {
      Transcript parsed(answer);
      const Result<void> parsed_result = ParseEnvelope(envelope, limits, parsed);
      Transcript replayed(answer);
      const Result<void> replayed_result = ReplayEnvelope(*recorded, replayed);
      EXPECT_EQ(replayed.Text(), parsed.Text())
          << entry.path() << " answer " << static_cast<int>(answer);
      EXPECT_EQ(Describe(replayed_result), Describe(parsed_result)) << entry.path();
    }
  }
  // Most of the test data is recordable: reports, broken reports, bombs.
  EXPECT_GT(files, 150);
  EXPECT_GT(recorded_files, 100);
  EXPECT_GT(with_records, 40);
}

TEST(RecordedEnvelopeTest, WhatCannotBeReplayedFaithfullyIsNotRecorded) {
  const fs::path data(DMARCD_TEST_DATA_DIR);
  // Two reports in one zip archive: a stop in the first would change what
  // ParseEnvelope does with the second.
  const std::string zip = ReadFile(data / "parser" / "zip_slip" / "zip_path_traversal.zip");
  ASSERT_FALSE(zip.empty());
  EXPECT_FALSE(RecordEnvelope(Envelope{zip, "file:zip"}, Limits{}, 5000));

  // More records than asked for.
  const std::string many =
      ReadFile(data / "storage" / "accurateplastics_large-2286-records_parsedmarc.xml");
  ASSERT_FALSE(many.empty());
  EXPECT_FALSE(RecordEnvelope(Envelope{many, "file:many"}, Limits{}, 2000));
  auto all = RecordEnvelope(Envelope{many, "file:many"}, Limits{}, 5000);
  ASSERT_TRUE(all);
  ASSERT_TRUE(all->document);
  EXPECT_EQ(all->document->records.size(), 2286U);
  ASSERT_TRUE(all->document->end_warnings);
}

}  // namespace
}  // namespace dmarcd::parser
