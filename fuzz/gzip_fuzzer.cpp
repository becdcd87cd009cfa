// Fuzz target: GzipInflater on arbitrary bytes, fed in chunks of a size the
// input chooses. Checks that no more than the cap (plus the slice that
// crossed it) reaches the sink and that slices are at most kChunkBytes.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.hpp"
#include "parser/gzip_inflater.hpp"

namespace dmarcd::fuzz {
namespace {

class CountingSink : public parser::ByteSink {
 public:
  Result<void> Write(std::string_view chunk) override {
    Check(chunk.size() <= parser::kChunkBytes, "slices of at most kChunkBytes");
    bytes_ += chunk.size();
    return {};
  }

  bool Stopped() const override { return false; }

  uint64_t Bytes() const { return bytes_; }

 private:
  uint64_t bytes_ = 0;
};

}  // namespace
}  // namespace dmarcd::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dmarcd;
  static const parser::Limits limits = fuzz::FuzzLimits();

  fuzz::CountingSink sink;
  parser::GzipInflater inflater(sink, limits, "fuzz.gz");
  fuzz::Chunks chunks(data, size);
  std::string_view chunk;
  Result<void> outcome;
  while (outcome && chunks.Next(&chunk)) outcome = inflater.Write(chunk);
  if (outcome) outcome = inflater.Finish();

  fuzz::Check(sink.Bytes() <= limits.max_inflated_bytes, "nothing past the cap reaches the sink");
  fuzz::Check(sink.Bytes() == inflater.InflatedBytes() || !outcome,
              "every inflated byte reaches the sink");
  return 0;
}
