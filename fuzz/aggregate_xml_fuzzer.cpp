// Fuzz target: AggregateParser (libxml2's SAX2 push parser, the UTF-8
// repair and the report assembler) on arbitrary bytes fed in chunks of a
// size the input chooses. Checks the order of sink calls and two properties
// of Utf8Sanitizer: chunk boundaries never change its output, and its
// output needs no further repair.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.hpp"
#include "parser/aggregate_parser.hpp"
#include "parser/utf8_sanitizer.hpp"

namespace dmarcd::fuzz {
namespace {

class CheckingSink : public parser::AggregateSink {
 public:
  Result<parser::SinkAction> OnHeader(const parser::AggregateHeader& header) override {
    Check(!header_ && !ended_, "OnHeader once, first");
    Check(!header.report_id.empty() && !header.policy.domain.empty(),
          "header has a report id and a policy domain");
    header_ = true;
    return parser::SinkAction::kContinue;
  }

  Result<parser::SinkAction> OnRecord(const parser::AggregateRecord& /*record*/) override {
    Check(header_ && !ended_, "OnRecord after OnHeader, before OnEnd");
    ++records_;
    return parser::SinkAction::kContinue;
  }

  Result<void> OnEnd(const std::vector<std::string>& warnings) override {
    Check(header_ && !ended_, "OnEnd once, after OnHeader");
    Check(warnings.size() <= 100, "at most a hundred warnings");
    ended_ = true;
    return {};
  }

  bool Ended() const { return ended_; }
  uint64_t Records() const { return records_; }

 private:
  bool header_ = false;
  bool ended_ = false;
  uint64_t records_ = 0;
};

void CheckSanitizer(std::string_view bytes, size_t split) {
  parser::Utf8Sanitizer whole;
  std::string once;
  whole.Feed(bytes, once);
  whole.Finish(once);

  parser::Utf8Sanitizer parts;
  std::string pieces;
  split = std::min(split, bytes.size());
  parts.Feed(bytes.substr(0, split), pieces);
  parts.Feed(bytes.substr(split), pieces);
  parts.Finish(pieces);
  Check(once == pieces, "Utf8Sanitizer: chunk boundaries do not change the output");
  Check(whole.Replacements() == parts.Replacements(), "Utf8Sanitizer: same replacement count");

  parser::Utf8Sanitizer again;
  std::string twice;
  again.Feed(once, twice);
  again.Finish(twice);
  Check(again.Replacements() == 0 && twice == once, "Utf8Sanitizer: its output is valid UTF-8");
}

}  // namespace
}  // namespace dmarcd::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dmarcd;
  static const parser::Limits limits = fuzz::FuzzLimits();

  fuzz::CheckingSink sink;
  parser::AggregateParser parser(sink, limits);
  fuzz::Chunks chunks(data, size);
  std::string_view chunk;
  Result<void> outcome;
  while (outcome && !parser.Stopped() && chunks.Next(&chunk)) outcome = parser.Feed(chunk);
  if (outcome) outcome = parser.Finish();
  fuzz::Check(outcome.has_value() == sink.Ended(), "OnEnd exactly when the document is accepted");
  fuzz::Check(sink.Records() <= limits.max_records, "record cap");

  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  fuzz::CheckSanitizer(bytes, size == 0 ? 0 : data[size - 1] % (size + 1));
  return 0;
}
