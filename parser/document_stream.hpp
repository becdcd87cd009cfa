// One document on its way from compressed bytes to the XML parser.
//
// The first bytes decide what the document is, whatever its MIME type or
// file name claim: gzip (1f 8b, RFC 1952 section 2.3.1), zip ("PK\3\4", or
// "PK\5\6" for an empty archive), XML (an optional UTF-8 byte order mark and
// white space, then '<'), or nothing dmarcd reads (kNotXml). gzip is
// inflated as a stream into a nested DocumentStream, so a gzip inside a
// gzip is sniffed again; a zip needs random access and is collected first
// (at most limits.max_envelope_bytes), then each member becomes a document
// of its own through PayloadWalker::WalkZip. Each archive level counts
// towards limits.max_nesting_depth (kTooDeep).
//
// When XML is found, the handler's OnAggregateBegin is called and the bytes
// flow into an AggregateParser. The outcome is reported by whoever created
// the outermost stream (PayloadWalker), from the DocumentReport the streams
// share. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "parser/aggregate_parser.hpp"
#include "parser/byte_sink.hpp"
#include "parser/gzip_inflater.hpp"
#include "parser/pipeline.hpp"

namespace dmarcd::parser {

class PayloadWalker;

// What the streams of one document share with the code that reports it.
struct DocumentReport {
  DocumentInfo info;
  bool begun = false;  // OnAggregateBegin was called
};

class DocumentStream : public ByteSink {
 public:
  // `walker` and `report` must outlive the stream. `depth` counts the
  // archive levels already opened around this document.
  DocumentStream(PayloadWalker& walker, DocumentReport& report, int depth);

  Result<void> Write(std::string_view chunk) override;

  // The input ended; only called when every Write succeeded.
  Result<void> Finish();

  bool Stopped() const override;

 private:
  enum class Kind { kUnknown, kXml, kGzip, kZip };

  // Decides the kind once enough bytes are in; false while more are needed.
  Result<bool> Sniff(bool at_end);
  Result<Kind> Classify() const;
  Result<void> Start();
  Result<void> Forward(std::string_view chunk);

  PayloadWalker& walker_;
  DocumentReport& report_;
  int depth_;
  Kind kind_ = Kind::kUnknown;
  std::string head_;
  bool bom_checked_ = false;
  bool skipped_space_ = false;

  std::unique_ptr<AggregateParser> parser_;
  std::unique_ptr<DocumentStream> inner_;
  std::unique_ptr<GzipInflater> inflater_;
  std::string zip_bytes_;
};

}  // namespace dmarcd::parser
