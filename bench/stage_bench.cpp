// Micro-benchmarks of the ingest stages one by one (issue #7): gzip and zip
// inflate, MIME unpack, and the storage insert of parsed reports into a
// real SQLite database, one transaction per envelope and with group
// commit. Counters: records/s (items) and bytes/s of XML.
//
// Run: build/release/bench/dmarcd_stage_bench
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <zip.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_data.hpp"
#include "parser/byte_sink.hpp"
#include "parser/gzip_inflater.hpp"
#include "parser/mime_walker.hpp"
#include "parser/zip_archive.hpp"
#include "storage/database.hpp"
#include "storage/writer.hpp"

namespace {

using dmarcd::Result;

// Counts what an inflater hands on, and keeps nothing.
class DiscardSink : public dmarcd::parser::ByteSink {
 public:
  Result<void> Write(std::string_view chunk) override {
    bytes_ += chunk.size();
    return {};
  }
  bool Stopped() const override { return false; }

  uint64_t bytes_ = 0;
};

// One member, deflated, through libzip's in-memory writer.
std::string Zip(const std::string& data) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  zip_source_keep(buffer);
  zip_t* archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  zip_source_t* member = zip_source_buffer(archive, data.data(), data.size(), 0);
  zip_file_add(archive, "report.xml", member, ZIP_FL_OVERWRITE);
  zip_close(archive);

  std::string out;
  zip_source_open(buffer);
  char chunk[65536];
  for (zip_int64_t n = 0; (n = zip_source_read(buffer, chunk, sizeof chunk)) > 0;) {
    out.append(chunk, static_cast<size_t>(n));
  }
  zip_source_close(buffer);
  zip_source_free(buffer);
  zip_error_fini(&error);
  return out;
}

// The report as providers mail it: multipart/mixed, the gzip attached in
// base64 (RFC 2045 section 6.8) in lines of 76 characters.
std::string Email(const std::string& gzip) {
  std::string base64(4 * ((gzip.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(base64.data()),
                                     reinterpret_cast<const unsigned char*>(gzip.data()),
                                     static_cast<int>(gzip.size()));
  base64.resize(static_cast<size_t>(length));
  std::string lines;
  for (size_t at = 0; at < base64.size(); at += 76) lines += base64.substr(at, 76) + "\r\n";

  return "From: dmarc@bench.example.net\r\nTo: rua@example.com\r\n"
         "Subject: Report Domain: example.com\r\nMIME-Version: 1.0\r\n"
         "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
         "--b1\r\nContent-Type: text/plain\r\n\r\nA DMARC aggregate report.\r\n"
         "--b1\r\nContent-Type: application/gzip; name=\"report.xml.gz\"\r\n"
         "Content-Transfer-Encoding: base64\r\n"
         "Content-Disposition: attachment; filename=\"report.xml.gz\"\r\n\r\n" +
         lines + "--b1--\r\n";
}

void SetCounters(benchmark::State& state, int64_t records, int64_t xml_bytes) {
  state.SetItemsProcessed(state.iterations() * records);
  state.SetBytesProcessed(state.iterations() * xml_bytes);
}

void GzipInflate(benchmark::State& state) {
  const int records = static_cast<int>(state.range(0));
  const std::string xml = dmarcd::bench::MakeReport(records);
  const std::string gzip = dmarcd::bench::Gzip(xml);
  const dmarcd::parser::Limits limits;
  for (auto _ : state) {
    DiscardSink sink;
    dmarcd::parser::GzipInflater inflater(sink, limits, "bench");
    if (!inflater.Write(gzip) || !inflater.Finish() || sink.bytes_ != xml.size()) {
      state.SkipWithError("inflate failed");
    }
  }
  SetCounters(state, records, static_cast<int64_t>(xml.size()));
}
BENCHMARK(GzipInflate)->Arg(50)->Arg(20000)->Unit(benchmark::kMillisecond);

void ZipInflate(benchmark::State& state) {
  const int records = static_cast<int>(state.range(0));
  const std::string xml = dmarcd::bench::MakeReport(records);
  const std::string zip = Zip(xml);
  const dmarcd::parser::Limits limits;
  for (auto _ : state) {
    auto archive = dmarcd::parser::ZipArchive::Open(zip, limits);
    DiscardSink sink;
    if (!archive || !archive->Read(0, sink) || sink.bytes_ != xml.size()) {
      state.SkipWithError("zip failed");
    }
  }
  SetCounters(state, records, static_cast<int64_t>(xml.size()));
}
BENCHMARK(ZipInflate)->Arg(50)->Arg(20000)->Unit(benchmark::kMillisecond);

void MimeUnpack(benchmark::State& state) {
  const int records = static_cast<int>(state.range(0));
  const std::string xml = dmarcd::bench::MakeReport(records);
  const std::string email = Email(dmarcd::bench::Gzip(xml));
  const dmarcd::parser::Limits limits;
  for (auto _ : state) {
    auto contents = dmarcd::parser::MimeWalker::Walk(email, limits);
    if (!contents || contents->payloads.size() != 1) state.SkipWithError("MIME failed");
  }
  SetCounters(state, records, static_cast<int64_t>(email.size()));
}
BENCHMARK(MimeUnpack)->Arg(50)->Arg(20000)->Unit(benchmark::kMillisecond);

// A fresh database in a temporary folder, removed at the end.
class BenchDatabase {
 public:
  BenchDatabase() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "dmarcd-stage-bench.XXXXXX").string();
    folder_ = mkdtemp(pattern.data());
    auto db = dmarcd::storage::Database::Open(folder_ + "/bench.db", {});
    if (db) db_ = std::move(*db);
  }
  ~BenchDatabase() {
    db_.reset();
    std::filesystem::remove_all(folder_);
  }
  BenchDatabase(const BenchDatabase&) = delete;
  BenchDatabase& operator=(const BenchDatabase&) = delete;

  dmarcd::storage::Database* Get() { return db_.get(); }

 private:
  std::string folder_;
  std::unique_ptr<dmarcd::storage::Database> db_;
};

// Parse and store: Writer::Ingest of gzip envelopes, each a new report
// (distinct report id), `batch` envelopes per commit (1: a transaction
// each). The archive copy, dedupe, day shares and roll-ups all run.
void StorageInsert(benchmark::State& state) {
  const int records = static_cast<int>(state.range(0));
  const int batch = static_cast<int>(state.range(1));
  BenchDatabase db;
  if (db.Get() == nullptr) {
    state.SkipWithError("cannot open the database");
    return;
  }
  dmarcd::storage::Writer writer(*db.Get(), dmarcd::parser::Limits{});

  // Made before the timing: generating and compressing is not the stage.
  std::vector<dmarcd::parser::Envelope> envelopes;
  constexpr int kDistinct = 256;
  int64_t xml_bytes = 0;
  for (int i = 0; i < kDistinct; ++i) {
    const std::string xml = dmarcd::bench::MakeReport(records, "bench-" + std::to_string(i));
    xml_bytes = static_cast<int64_t>(xml.size());
    envelopes.push_back({dmarcd::bench::Gzip(xml), "bench:" + std::to_string(i)});
  }

  size_t next = 0;
  int refills = 0;
  for (auto _ : state) {
    if (next == envelopes.size()) {
      state.PauseTiming();
      envelopes.clear();
      ++refills;
      for (int i = 0; i < kDistinct; ++i) {
        const std::string id = "bench-" + std::to_string(refills) + "-" + std::to_string(i);
        envelopes.push_back(
            {dmarcd::bench::Gzip(dmarcd::bench::MakeReport(records, id)), "bench:" + id});
      }
      next = 0;
      state.ResumeTiming();
    }
    const bool batched = batch > 1 && writer.BeginBatch().has_value();
    for (int i = 0; i < batch && next < envelopes.size(); ++i) {
      auto outcome = writer.Ingest(envelopes[next++]);
      if (!outcome || outcome->Records() != static_cast<uint64_t>(records)) {
        state.SkipWithError("ingest failed");
        break;
      }
    }
    if (batched && !writer.CommitBatch()) state.SkipWithError("commit failed");
  }
  SetCounters(state, int64_t{records} * batch, xml_bytes * batch);
}
BENCHMARK(StorageInsert)
    ->Args({50, 1})
    ->Args({50, 64})
    ->Args({20000, 1})
    ->Unit(benchmark::kMillisecond);

}  // namespace
