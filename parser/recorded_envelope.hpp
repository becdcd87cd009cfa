// An envelope parsed ahead of storing it: what ParseEnvelope told its
// handler, kept so that it can be told to the real handler later, on
// another thread. `dmarcd ingest` parses the next envelope while the
// database takes the one before (issue #7).
//
// Replay must tell the handler exactly what ParseEnvelope would have, so
// only envelopes where that is certain are recorded: at most one aggregate
// document (a stop or an error from the sink ends the document in
// ParseEnvelope, which would change nothing after it), no failure report
// (stored through the privacy settings, which may change the bytes that
// are parsed), at most `max_records` records. Pure, like ParseEnvelope.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "parser/aggregate_model.hpp"
#include "parser/envelope.hpp"
#include "parser/error.hpp"
#include "parser/limits.hpp"
#include "parser/pipeline.hpp"

namespace dmarcd::parser {

// The aggregate document of a recording. At namespace scope rather than
// inside RecordedEnvelope: clang does not count a nested class with member
// initializers as default-constructible while the enclosing one is being
// defined, and std::optional<Document> would remember that.
struct RecordedDocument {
  std::string name;
  std::string part_bytes;
  uint64_t inflated_bytes = 0;
  std::optional<AggregateHeader> header;  // set when the sink got one
  std::vector<AggregateRecord> records;
  std::optional<std::vector<std::string>> end_warnings;  // set when OnEnd came
  Result<void> outcome;                                  // what the parser ended the document with
};

struct RecordedEnvelope {
  struct Rejection {
    std::string name;
    std::string bytes;
    Error error;
  };
  using Document = RecordedDocument;
  // In the order the parser reported them: the rejections before the
  // document (rejections_before of them), the document, the rest.
  std::vector<Rejection> rejections;
  size_t rejections_before = 0;
  std::optional<Document> document;
};

// Parses `envelope` into a recording, or nullopt when it cannot be replayed
// faithfully (see above): then it must be parsed with ParseEnvelope.
std::optional<RecordedEnvelope> RecordEnvelope(const Envelope& envelope, const Limits& limits,
                                               size_t max_records);

// Tells `handler` what ParseEnvelope(envelope, limits, handler) would have,
// for the handler's own answers, and returns what it would have returned.
Result<void> ReplayEnvelope(const RecordedEnvelope& recorded, EnvelopeHandler& handler);

}  // namespace dmarcd::parser
