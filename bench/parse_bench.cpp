// Micro-benchmarks of the parser stages: aggregate XML parse alone, and the
// whole envelope path (gzip inflate streamed into the parser). Reports are
// generated in memory, deterministically, so runs compare.
//
// Run: build/release/bench/dmarcd_bench (counters: records/s and bytes/s).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "bench/bench_data.hpp"
#include "parser/aggregate_parser.hpp"
#include "parser/pipeline.hpp"

namespace {

using dmarcd::Result;
using dmarcd::parser::AggregateHeader;
using dmarcd::parser::AggregateRecord;
using dmarcd::parser::AggregateSink;
using dmarcd::parser::SinkAction;

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
  const std::string xml = dmarcd::bench::MakeReport(records);
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

// The parse stage over a report file of one's own, e.g. one made by
// bench/gen_aggregate.py: DMARCD_BENCH_XML=report.xml dmarcd_bench
// --benchmark_filter=ParseAggregateFile. Skipped when the variable is unset.
void ParseAggregateFile(benchmark::State& state) {
  const char* path = std::getenv("DMARCD_BENCH_XML");
  if (path == nullptr) {
    state.SkipWithError("DMARCD_BENCH_XML is not set");
    return;
  }
  std::ifstream in(path, std::ios::binary);
  const std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const dmarcd::parser::Limits limits;
  uint64_t records = 0;
  for (auto _ : state) {
    CountingSink sink;
    dmarcd::parser::AggregateParser parser(sink, limits);
    constexpr size_t kChunk = size_t{64} * 1024;
    for (size_t at = 0; at < xml.size(); at += kChunk) {
      if (!parser.Feed(std::string_view(xml).substr(at, kChunk))) state.SkipWithError("feed");
    }
    if (!parser.Finish()) state.SkipWithError("parse failed");
    records = sink.records_;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(records));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(xml.size()));
}
BENCHMARK(ParseAggregateFile)->Unit(benchmark::kMillisecond);

void ParseEnvelopeGzip(benchmark::State& state) {
  const int records = static_cast<int>(state.range(0));
  const std::string xml = dmarcd::bench::MakeReport(records);
  const dmarcd::parser::Envelope envelope{dmarcd::bench::Gzip(xml), "bench"};
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
