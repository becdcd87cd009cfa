#include "parser/recorded_envelope.hpp"

#include <utility>

#include "parser/aggregate_parser.hpp"

namespace dmarcd::parser {
namespace {

// The handler and sink RecordEnvelope parses into: it keeps everything and
// always asks for more, unless the envelope turns out not to be one it can
// record.
class Recorder final : public EnvelopeHandler, public AggregateSink {
 public:
  explicit Recorder(size_t max_records) : max_records_(max_records) {}

  AggregateSink& OnAggregateBegin(const DocumentInfo& doc) override {
    if (recorded_.document) {
      give_up_ = true;  // a second document: see the header
    } else {
      recorded_.rejections_before = recorded_.rejections.size();
      recorded_.document.emplace();
      recorded_.document->name = doc.name;
      recorded_.document->part_bytes = std::string(doc.part_bytes);
    }
    return *this;
  }

  void OnAggregateEnd(const DocumentInfo& doc, const Result<void>& outcome) override {
    if (give_up_) return;
    recorded_.document->inflated_bytes = doc.inflated_bytes;
    recorded_.document->outcome = outcome;
  }

  void OnRejected(std::string_view name, std::string_view bytes, const Error& error) override {
    recorded_.rejections.push_back({std::string(name), std::string(bytes), error});
  }

  void OnFailureReport(std::string_view, std::string_view, const FailureReport&) override {
    give_up_ = true;
  }

  Result<SinkAction> OnHeader(const AggregateHeader& header) override {
    if (give_up_) return SinkAction::kStop;
    recorded_.document->header = header;
    return SinkAction::kContinue;
  }

  Result<SinkAction> OnRecord(const AggregateRecord& record) override {
    if (give_up_ || recorded_.document->records.size() >= max_records_) {
      give_up_ = true;
      return SinkAction::kStop;
    }
    recorded_.document->records.push_back(record);
    return SinkAction::kContinue;
  }

  Result<void> OnEnd(const std::vector<std::string>& warnings) override {
    if (!give_up_) recorded_.document->end_warnings = warnings;
    return {};
  }

  std::optional<RecordedEnvelope> Take() {
    if (give_up_) return std::nullopt;
    return std::move(recorded_);
  }

 private:
  size_t max_records_;
  bool give_up_ = false;
  RecordedEnvelope recorded_;
};

// What the sink's answers make of the document, as ReportAssembler and the
// parser act on them: a stop ends it as it stands, an error ends it with
// that error.
Result<void> ReplayDocument(const RecordedEnvelope::Document& document, AggregateSink& sink) {
  if (document.header) {
    auto action = sink.OnHeader(*document.header);
    if (!action) return tl::unexpected(action.error());
    if (*action == SinkAction::kStop) return {};
    for (const AggregateRecord& record : document.records) {
      auto stored = sink.OnRecord(record);
      if (!stored) return tl::unexpected(stored.error());
      if (*stored == SinkAction::kStop) return {};
    }
  }
  if (document.end_warnings) {
    if (auto ended = sink.OnEnd(*document.end_warnings); !ended) return ended;
  }
  return document.outcome;
}

}  // namespace

std::optional<RecordedEnvelope> RecordEnvelope(const Envelope& envelope, const Limits& limits,
                                               size_t max_records) {
  Recorder recorder(max_records);
  // The recorder never returns an error, so ParseEnvelope cannot fail.
  static_cast<void>(ParseEnvelope(envelope, limits, recorder));
  return recorder.Take();
}

Result<void> ReplayEnvelope(const RecordedEnvelope& recorded, EnvelopeHandler& handler) {
  for (size_t i = 0; i < recorded.rejections_before && i < recorded.rejections.size(); ++i) {
    const auto& rejection = recorded.rejections[i];
    handler.OnRejected(rejection.name, rejection.bytes, rejection.error);
  }
  const size_t after = recorded.document ? recorded.rejections_before : 0;
  if (recorded.document) {
    const RecordedEnvelope::Document& document = *recorded.document;
    DocumentInfo info{document.name, document.part_bytes, document.inflated_bytes};
    AggregateSink& sink = handler.OnAggregateBegin(info);
    Result<void> outcome = ReplayDocument(document, sink);
    handler.OnAggregateEnd(info, outcome);
    // A transient fault ends the walk (PayloadWalker::Report).
    if (!outcome && IsTransient(outcome.error().code)) return outcome;
  }
  for (size_t i = after; i < recorded.rejections.size(); ++i) {
    const auto& rejection = recorded.rejections[i];
    handler.OnRejected(rejection.name, rejection.bytes, rejection.error);
  }
  return {};
}

}  // namespace dmarcd::parser
