// Streaming parser for DMARC aggregate report XML (RFC 7489 Appendix C,
// RFC 9990), built on libxml2's SAX2 push interface.
//
// Bytes are pushed in chunks of any size (Feed) and records come out as soon
// as each </record> is read, so memory stays flat however large the report.
// No DTD is loaded, no entity is expanded, nothing is fetched: a document
// with a DOCTYPE is refused with kDoctypeRefused.
//
// Not thread-safe; one parser per document. Any number of parsers may run on
// different threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parser/aggregate_model.hpp"
#include "parser/error.hpp"
#include "parser/limits.hpp"

namespace dmarcd::parser {

enum class SinkAction {
  kContinue,
  kStop,  // the sink wants no more of this report (e.g. a duplicate)
};

// Receives one report. The calls come in this order: OnHeader once, OnRecord
// for each record, OnEnd once, unless a call returns an error or kStop, or
// the document turns out to be bad, after which no further call is made.
// A sink that stored anything must be ready to undo it when the parser
// reports an error after OnHeader (the report is rejected whole).
class AggregateSink {
 public:
  virtual ~AggregateSink() = default;

  // The report's metadata and published policy, validated: report_id, the
  // date range and the policy domain are present. Called before the first
  // record (records that precede the metadata in the document are held
  // back until it is complete).
  virtual Result<SinkAction> OnHeader(const AggregateHeader& header) = 0;

  virtual Result<SinkAction> OnRecord(const AggregateRecord& record) = 0;

  // The document ended well-formed. `warnings` lists what was recovered
  // (bad UTF-8 replaced, unknown enum values mapped, long date range).
  virtual Result<void> OnEnd(const std::vector<std::string>& warnings) = 0;
};

class AggregateParser {
 public:
  AggregateParser(AggregateSink& sink, const Limits& limits);
  ~AggregateParser();
  AggregateParser(const AggregateParser&) = delete;
  AggregateParser& operator=(const AggregateParser&) = delete;

  // Pushes the next chunk. After the first error every call returns it.
  Result<void> Feed(std::string_view chunk);

  // Ends the document: checks it was complete and calls OnEnd. Returns
  // kNotAReport / kMissingElement when the document held no usable report.
  Result<void> Finish();

  // True once the sink answered kStop: the caller may stop feeding.
  bool Stopped() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmarcd::parser
