// Micro-benchmarks of the parser stages: aggregate XML parse alone, and the
// whole envelope path (gzip inflate streamed into the parser). Reports are
// generated in memory, deterministically, so runs compare.
//
// Run: build/release/bench/dmarcd_bench (counters: records/s and bytes/s).
#include <benchmark/benchmark.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "parser/aggregate_parser.hpp"
#include "parser/pipeline.hpp"

namespace {

using dmarcd::Result;
using dmarcd::parser::AggregateHeader;
using dmarcd::parser::AggregateRecord;
using dmarcd::parser::AggregateSink;
using dmarcd::parser::SinkAction;

// A report shaped like a large mailbox provider's: every record with one
// DKIM and one SPF result.
std::string MakeReport(int records) {
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<report_metadata>"
      "<org_name>bench.example.net</org_name><email>dmarc@bench.example.net</email>"
      "<report_id>bench-1</report_id><date_range><begin>1735689600</begin>"
      "<end>1735775999</end></date_range></report_metadata>\n<policy_published>"
      "<domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp>"
      "<pct>100</pct></policy_published>\n";
  for (int i = 0; i < records; ++i) {
    const std::string ip =
        "198.51." + std::to_string((i / 250) % 250) + "." + std::to_string(i % 250 + 1);
    const bool pass = i % 4 != 0;
    const char* result = pass ? "pass" : "fail";
    xml += "<record><row><source_ip>" + ip + "</source_ip><count>" + std::to_string(i % 97 + 1) +
           "</count><policy_evaluated><disposition>none</disposition><dkim>" + result +
           "</dkim><spf>" + result +
           "</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from>"
           "</identifiers><auth_results><dkim><domain>example.com</domain><selector>s1</selector>"
           "<result>" +
           result + "</result></dkim><spf><domain>example.com</domain><result>" + result +
           "</result></spf></auth_results></record>\n";
  }
  xml += "</feedback>\n";
  return xml;
}

std::string Gzip(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

class CountingSink : public AggregateSink {
 public:
  Result<SinkAction> OnHeader(const AggregateHeader&) override { return SinkAction::kContinue; }
  Result<SinkAction> OnRecord(const AggregateRecord& record) override {
    messages_ += record.count;
    ++records_;
    return SinkAction::kContinue;
  }
  Result<void> OnEnd(const std::vector<std::string>&) override { return {}; }

  uint64_t records_ = 0;
  uint64_t messages_ = 0;
};

class CountingHandler : public dmarcd::parser::EnvelopeHandler {
 public:
  AggregateSink& OnAggregateBegin(const dmarcd::parser::DocumentInfo&) override { return sink_; }
  void OnAggregateEnd(const dmarcd::parser::DocumentInfo&, const Result<void>& outcome) override {
    ok_ = outcome.has_value();
  }
  void OnRejected(std::string_view, std::string_view, const dmarcd::Error&) override {
    ok_ = false;
  }

  CountingSink sink_;
  bool ok_ = false;
};

void ParseAggregateXml(benchmark::State& state) {
  const int records = static_cast<int>(state.range(0));
  const std::string xml = MakeReport(records);
  const dmarcd::parser::Limits limits;
  for (auto _ : state) {
    CountingSink sink;
    dmarcd::parser::AggregateParser parser(sink, limits);
    constexpr size_t kChunk = size_t{64} * 1024;
    for (size_t at = 0; at < xml.size(); at += kChunk) {
      if (!parser.Feed(std::string_view(xml).substr(at, kChunk))) state.SkipWithError("feed");
    }
    if (!parser.Finish() || sink.records_ != static_cast<uint64_t>(records)) {
      state.SkipWithError("parse failed");
    }
  }
  state.SetItemsProcessed(state.iterations() * records);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(xml.size()));
}
BENCHMARK(ParseAggregateXml)->Arg(50)->Arg(20000)->Unit(benchmark::kMillisecond);

void ParseEnvelopeGzip(benchmark::State& state) {
  const int records = static_cast<int>(state.range(0));
  const std::string xml = MakeReport(records);
  const dmarcd::parser::Envelope envelope{Gzip(xml), "bench"};
  const dmarcd::parser::Limits limits;
  for (auto _ : state) {
    CountingHandler handler;
    if (!dmarcd::parser::ParseEnvelope(envelope, limits, handler) || !handler.ok_) {
      state.SkipWithError("envelope failed");
    }
  }
  state.SetItemsProcessed(state.iterations() * records);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(xml.size()));
}
BENCHMARK(ParseEnvelopeGzip)->Arg(50)->Arg(20000)->Unit(benchmark::kMillisecond);

}  // namespace
