// Fuzz target: ZipArchive on arbitrary bytes: open, list every entry, read
// every member. Checks the entry cap and the inflated-size cap per member.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_support.hpp"
#include "parser/zip_archive.hpp"

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

  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto archive = parser::ZipArchive::Open(bytes, limits);
  if (!archive) return 0;
  fuzz::Check(archive->EntryCount() <= static_cast<uint64_t>(limits.max_zip_entries),
              "entry cap applied on open");

  for (uint64_t index = 0; index < archive->EntryCount(); ++index) {
    auto entry = archive->Entry(index);
    if (!entry) continue;
    fuzz::CountingSink sink;
    auto read = archive->Read(index, sink);
    fuzz::Check(sink.Bytes() <= limits.max_inflated_bytes, "nothing past the cap reaches the sink");
    fuzz::Check(read || !read.error().message.empty(), "an error says why");
  }
  return 0;
}
