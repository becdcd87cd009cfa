// Streams the payloads of one envelope as documents and reports each one's
// outcome to the EnvelopeHandler: OnAggregateEnd for a document whose XML
// began, OnRejected for a payload that never got that far (not XML, a bad
// or oversized archive). A bad payload never stops its siblings; only a
// transient error from a sink (Fatal) ends the walk, so that the caller can
// roll the envelope back and try it later.
//
// Not thread-safe; one per envelope.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "parser/envelope.hpp"
#include "parser/error.hpp"
#include "parser/limits.hpp"
#include "parser/pipeline.hpp"

namespace dmarcd::parser {

struct DocumentReport;

class PayloadWalker {
 public:
  // `handler` and `limits` must outlive the walker.
  PayloadWalker(EnvelopeHandler& handler, const Limits& limits);

  // One payload held in memory (a bare envelope, a decoded MIME part) as a
  // document named `name`; `bytes` must stay valid until this returns.
  // `depth` counts the emails and archives around it.
  void WalkPayload(std::string name, std::string_view bytes, int depth);

  // A payload read from `source`, starting with `head` (what was already
  // read of it); its part_bytes are empty. A read error from the source
  // ends the walk as Fatal.
  void WalkSource(std::string name, EnvelopeSource& source, std::string_view head, int depth);

  // Each file of a zip archive as a document "name/member". `part_bytes` is
  // what rejections keep. Errors only for the archive as a whole (cannot be
  // opened, too many entries, no file in it); members report themselves.
  Result<void> WalkZip(const std::string& name, std::string_view part_bytes,
                       std::string_view zip_bytes, int depth);

  // Counts `bytes` more document bytes against
  // Limits::max_envelope_inflated_bytes; kTooLarge once they pass it.
  Result<void> CountInflated(uint64_t bytes);

  EnvelopeHandler& Handler() { return handler_; }
  const Limits& GetLimits() const { return limits_; }

  // The transient error that ended the walk, if any.
  const std::optional<Error>& Fatal() const { return fatal_; }

 private:
  void Report(DocumentReport& report, const Result<void>& outcome);

  EnvelopeHandler& handler_;
  const Limits& limits_;
  std::optional<Error> fatal_;
  uint64_t inflated_ = 0;
};

}  // namespace dmarcd::parser
