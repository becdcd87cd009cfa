// What the fuzz targets share: the limits they run under and a check that
// stops the run when a contract of the code under test is broken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "parser/limits.hpp"

namespace dmarcd::fuzz {

// Caps far below the defaults so that one run stays in milliseconds and the
// fuzzer reaches every cap quickly; the code paths are the same.
inline parser::Limits FuzzLimits() {
  parser::Limits limits;
  limits.max_envelope_bytes = uint64_t{4} << 20;
  limits.max_inflated_bytes = uint64_t{1} << 20;
  limits.ratio_grace_bytes = uint64_t{64} << 10;
  limits.max_zip_entries = 16;
  limits.max_mime_parts = 64;
  limits.max_text_bytes = uint64_t{4} << 10;
  limits.max_records = 1000;
  return limits;
}

// A broken contract is a finding: abort, which libFuzzer reports as a crash
// and saves the input.
inline void Check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "fuzz check failed: %s\n", what);
  std::abort();
}

// The input cut into the chunks a stream would deliver: the first byte
// chooses the chunk size, so chunk boundaries are fuzzed too.
class Chunks {
 public:
  Chunks(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size),
        step_(size == 0 ? 1 : static_cast<size_t>(data[0]) * 61 + 1) {}

  bool Next(std::string_view* chunk) {
    if (rest_.empty()) return false;
    *chunk = rest_.substr(0, step_);
    rest_.remove_prefix(chunk->size());
    return true;
  }

 private:
  std::string_view rest_;
  size_t step_;
};

}  // namespace dmarcd::fuzz
