// Fuzz target: one envelope through ParseEnvelope, the path every channel's
// input takes (an email is unpacked with GMime, then gzip, zip and XML
// payloads are sniffed and parsed). The handler checks the order of calls
// that pipeline.hpp and aggregate_parser.hpp promise.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.hpp"
#include "parser/pipeline.hpp"

namespace dmarcd::fuzz {
namespace {

class CheckingSink : public parser::AggregateSink {
 public:
  explicit CheckingSink(bool stop_after_header) : stop_after_header_(stop_after_header) {}

  Result<parser::SinkAction> OnHeader(const parser::AggregateHeader& header) override {
    Check(!header_ && !ended_ && !stopped_, "OnHeader once, first");
    Check(!header.report_id.empty(), "header has a report id");
    header_ = true;
    stopped_ = stop_after_header_;
    return stopped_ ? parser::SinkAction::kStop : parser::SinkAction::kContinue;
  }

  Result<parser::SinkAction> OnRecord(const parser::AggregateRecord& /*record*/) override {
    Check(header_ && !ended_ && !stopped_, "OnRecord after OnHeader, before OnEnd");
    return parser::SinkAction::kContinue;
  }

  Result<void> OnEnd(const std::vector<std::string>& /*warnings*/) override {
    Check(header_ && !ended_ && !stopped_, "OnEnd once, after OnHeader");
    ended_ = true;
    return {};
  }

 private:
  bool stop_after_header_;
  bool header_ = false;
  bool ended_ = false;
  bool stopped_ = false;
};

class CheckingHandler : public parser::EnvelopeHandler {
 public:
  explicit CheckingHandler(bool stop_after_header) : stop_after_header_(stop_after_header) {}

  parser::AggregateSink& OnAggregateBegin(const parser::DocumentInfo& /*doc*/) override {
    Check(!open_, "OnAggregateBegin only after the previous document ended");
    open_ = true;
    sink_.emplace(stop_after_header_);
    return *sink_;
  }

  void OnAggregateEnd(const parser::DocumentInfo& /*doc*/, const Result<void>& outcome) override {
    Check(open_, "OnAggregateEnd after OnAggregateBegin");
    Check(outcome || !outcome.error().message.empty(), "an error says why");
    open_ = false;
  }

  void OnRejected(std::string_view /*name*/, std::string_view /*bytes*/,
                  const Error& error) override {
    Check(!open_, "OnRejected never inside a document");
    Check(!error.message.empty(), "a rejection says why");
  }

  void OnFailureReport(std::string_view /*name*/, std::string_view /*bytes*/,
                       const parser::FailureReport& /*report*/) override {
    Check(!open_, "OnFailureReport never inside a document");
  }

  bool Open() const { return open_; }

 private:
  bool stop_after_header_;
  bool open_ = false;
  std::optional<CheckingSink> sink_;
};

}  // namespace
}  // namespace dmarcd::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dmarcd;
  static const parser::Limits limits = fuzz::FuzzLimits();

  parser::Envelope envelope{std::string(reinterpret_cast<const char*>(data), size), "fuzz"};
  fuzz::CheckingHandler handler(size % 7 == 0);
  auto outcome = parser::ParseEnvelope(envelope, limits, handler);
  // Only a sink's transient error ends the walk with an error, and this
  // sink returns none.
  fuzz::Check(outcome.has_value(), "ParseEnvelope fails only for a transient sink error");
  fuzz::Check(!handler.Open(), "every document ended");
  return 0;
}
