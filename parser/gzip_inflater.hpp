// Streaming gzip (RFC 1952) inflation with dmarcd's caps.
//
// Compressed bytes are pushed in chunks of any size; the inflated bytes go to
// a ByteSink in slices of kChunkBytes as they come, so a payload is never
// held whole. Several members one after another are one stream (RFC 1952
// section 2.2, as gzip -d reads them); bytes after the last member that do
// not start another member are ignored, as gzip -d does.
//
// Errors: kTooLarge when the output passes limits.max_inflated_bytes,
// kRatioExceeded when, past limits.ratio_grace_bytes of output, output /
// input passes limits.max_compression_ratio, kBadArchive for a corrupt or
// truncated stream, or the sink's own error.
//
// Not thread-safe; one per stream.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "parser/byte_sink.hpp"
#include "parser/error.hpp"
#include "parser/limits.hpp"

namespace dmarcd::parser {

class GzipInflater {
 public:
  // `name` names the payload in error messages. `out` must outlive this.
  GzipInflater(ByteSink& out, const Limits& limits, std::string name);
  ~GzipInflater();
  GzipInflater(const GzipInflater&) = delete;
  GzipInflater& operator=(const GzipInflater&) = delete;

  Result<void> Write(std::string_view compressed);

  // The input ended: fails with kBadArchive when the last member is cut off.
  Result<void> Finish();

  uint64_t InflatedBytes() const { return total_out_; }

 private:
  Result<void> Inflate(std::string_view input);
  Result<void> CheckCaps() const;

  ByteSink& out_;
  const Limits& limits_;
  std::string name_;
  z_stream stream_{};
  bool initialized_ = false;
  bool in_member_ = true;  // false between members, after Z_STREAM_END
  bool trailing_ = false;  // bytes after the last member: ignored
  std::string magic_;      // the first byte of what may be a next member
  std::string output_;
  uint64_t total_in_ = 0;
  uint64_t total_out_ = 0;
};

}  // namespace dmarcd::parser
