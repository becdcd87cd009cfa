// An EnvelopeHandler for tests: keeps everything the parser hands over.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "parser/pipeline.hpp"

namespace dmarcd::parser::testing {

struct CollectedDocument {
  std::string name;
  size_t part_bytes = 0;
  uint64_t inflated_bytes = 0;
  bool has_header = false;
  AggregateHeader header;
  std::vector<AggregateRecord> records;
  bool ended = false;  // OnEnd was called
  std::vector<std::string> warnings;
  std::optional<Error> error;  // outcome given to OnAggregateEnd
  bool finished = false;       // OnAggregateEnd was called

  uint64_t Messages() const {
    uint64_t total = 0;
    for (const auto& record : records) total += record.count;
    return total;
  }
};

struct Rejection {
  std::string name;
  size_t bytes = 0;
  Error error;
};

class CollectingSink : public AggregateSink {
 public:
  explicit CollectingSink(CollectedDocument& doc) : doc_(doc) {}

  Result<SinkAction> OnHeader(const AggregateHeader& header) override {
    doc_.has_header = true;
    doc_.header = header;
    return stop_after_header ? SinkAction::kStop : SinkAction::kContinue;
  }

  Result<SinkAction> OnRecord(const AggregateRecord& record) override {
    if (!doc_.has_header) ADD_FAILURE() << "record before header";
    doc_.records.push_back(record);
    return SinkAction::kContinue;
  }

  Result<void> OnEnd(const std::vector<std::string>& warnings) override {
    doc_.ended = true;
    doc_.warnings = warnings;
    return {};
  }

  bool stop_after_header = false;

 private:
  CollectedDocument& doc_;
};

class CollectingHandler : public EnvelopeHandler {
 public:
  AggregateSink& OnAggregateBegin(const DocumentInfo& doc) override {
    auto& collected = documents.emplace_back();
    collected.name = doc.name;
    collected.part_bytes = doc.part_bytes.size();
    auto& sink = sinks_.emplace_back(collected);
    sink.stop_after_header = stop_after_header;
    return sink;
  }

  void OnAggregateEnd(const DocumentInfo& doc, const Result<void>& outcome) override {
    auto& collected = documents.back();
    EXPECT_EQ(collected.name, doc.name);
    collected.inflated_bytes = doc.inflated_bytes;
    collected.finished = true;
    if (!outcome) collected.error = outcome.error();
  }

  void OnRejected(std::string_view name, std::string_view bytes, const Error& error) override {
    rejections.push_back(Rejection{std::string(name), bytes.size(), error});
  }

  // Documents that ended well.
  std::vector<const CollectedDocument*> Accepted() const {
    std::vector<const CollectedDocument*> out;
    for (const auto& doc : documents) {
      if (doc.finished && !doc.error && doc.ended) out.push_back(&doc);
    }
    return out;
  }

  // Every error: rejected parts and documents that ended badly.
  std::vector<Error> Errors() const {
    std::vector<Error> out;
    for (const auto& rejection : rejections) out.push_back(rejection.error);
    for (const auto& doc : documents) {
      if (doc.error) out.push_back(*doc.error);
    }
    return out;
  }

  std::deque<CollectedDocument> documents;
  std::vector<Rejection> rejections;
  bool stop_after_header = false;

 private:
  std::deque<CollectingSink> sinks_;
};

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline std::filesystem::path DataDir() { return DMARCD_TEST_DATA_DIR; }

inline Result<void> ParseBytes(std::string bytes, CollectingHandler& handler,
                               const Limits& limits = Limits(), std::string origin = "test") {
  Envelope envelope{std::move(bytes), std::move(origin)};
  return ParseEnvelope(envelope, limits, handler);
}

inline Result<void> ParseFile(const std::filesystem::path& path, CollectingHandler& handler,
                              const Limits& limits = Limits()) {
  return ParseBytes(ReadFile(path), handler, limits, "file:" + path.filename().string());
}

}  // namespace dmarcd::parser::testing
