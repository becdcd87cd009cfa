// Turns the elements of one aggregate report document into the model and
// hands it to an AggregateSink: the DMARC half of AggregateParser, free of
// any XML library.
//
// Elements are named by their local names from the root down (namespaces
// ignored: RFC 9990 reports use urn:ietf:params:xml:ns:dmarc-2.0, RFC 7489
// ones none, and some reporters mix them). Siblings may come in any order;
// elements dmarcd does not know (<extension>, stray tags) are skipped.
//
// The header goes to the sink when both <report_metadata> and
// <policy_published> have ended. A <record> that comes before that (rare,
// but the schema's order is not always kept) is held in memory until the
// header is complete, so the sink always sees the header first.
//
// Not thread-safe; one per document.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "parser/aggregate_model.hpp"
#include "parser/aggregate_parser.hpp"
#include "parser/error.hpp"
#include "parser/limits.hpp"
#include "parser/report_values.hpp"

namespace dmarcd::parser {

class ReportAssembler {
 public:
  ReportAssembler(AggregateSink& sink, const Limits& limits);

  // An element begins; `path` runs from the root's child to the element
  // itself (empty for the root).
  void OnStart(const std::vector<std::string>& path);

  // An element ends with the text it held directly (untrimmed).
  Result<void> OnEnd(const std::vector<std::string>& path, std::string_view text);

  // The document ended well-formed: sends what is still held and OnEnd.
  Result<void> Finish();

  // Adds a warning, once per distinct text, at most a hundred.
  void Warn(std::string warning);

  void SetNamespace(std::string xml_namespace) { header_.xml_namespace = std::move(xml_namespace); }

  // True once the sink answered kStop.
  bool Stopped() const { return stopped_; }

 private:
  Result<void> OnMetadata(std::string_view name, std::string_view text);
  Result<void> OnPolicy(std::string_view name, std::string_view text);
  Result<void> OnRow(const std::vector<std::string>& path, std::string_view text);
  void OnIdentifiers(std::string_view name, std::string_view text);
  void OnAuthResult(const std::vector<std::string>& path, std::string_view text);
  Result<void> EndRecord();
  Result<void> MaybeSendHeader();
  Result<void> SendHeader();
  Result<void> SendRecord(const AggregateRecord& record);
  std::optional<std::string> Enum(ReportEnum kind, std::string_view what, std::string_view text);

  AggregateSink& sink_;
  const Limits& limits_;
  AggregateHeader header_;
  bool have_begin_ = false;
  bool have_end_ = false;
  bool metadata_done_ = false;
  bool policy_done_ = false;
  bool header_sent_ = false;
  bool stopped_ = false;

  AggregateRecord record_;
  bool have_source_ip_ = false;
  bool have_count_ = false;
  std::vector<AggregateRecord> held_;
  uint64_t records_ = 0;

  std::vector<std::string> warnings_;
  std::set<std::string> seen_warnings_;
};

}  // namespace dmarcd::parser
