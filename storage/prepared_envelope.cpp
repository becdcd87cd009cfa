#include "storage/prepared_envelope.hpp"

#include <zlib.h>

#include <algorithm>
#include <utility>

#include "parser/pipeline.hpp"
#include "storage/failure_store.hpp"
#include "storage/tokens.hpp"

namespace dmarcd::storage {

Result<std::string> GzipArchiveCopy(std::string_view bytes) {
  z_stream stream{};
  constexpr int kGzipWindowBits = 15 + 16;  // zlib: +16 selects the gzip wrapper
  if (deflateInit2(&stream, 1, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return MakeError(ErrorCode::kInternal, "zlib: cannot start deflate");
  }

  // zlib counts in 32 bits, so input goes in slices; the output buffer is
  // sized for the whole input up front (deflateBound) so it never moves.
  constexpr size_t kSlice = size_t{1} << 30;
  std::string out(deflateBound(&stream, bytes.size()) + 64, '\0');
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  size_t offset = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    const size_t slice = std::min(kSlice, bytes.size() - offset);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + offset));
    stream.avail_in = static_cast<uInt>(slice);
    offset += slice;
    const size_t room = out.size() - stream.total_out;
    stream.avail_out = static_cast<uInt>(std::min(room, kSlice));
    rc = deflate(&stream, offset == bytes.size() ? Z_FINISH : Z_NO_FLUSH);
    offset -= stream.avail_in;  // whatever zlib did not take yet
  }
  const uLong written = stream.total_out;
  deflateEnd(&stream);
  if (rc != Z_STREAM_END) {
    return MakeError(ErrorCode::kInternal, "zlib: deflate failed (" + std::to_string(rc) + ")");
  }
  out.resize(written);
  return out;
}

bool ArrivedCompressed(std::string_view bytes) {
  const parser::PayloadKind kind = parser::SniffPayload(bytes);
  return kind == parser::PayloadKind::kGzip || kind == parser::PayloadKind::kZip;
}

std::optional<PreparedEnvelope> PrepareEnvelope(const parser::Envelope& envelope,
                                                const parser::Limits& limits, size_t max_records) {
  if (MayBeFailureReport(envelope.bytes)) return std::nullopt;
  auto recorded = parser::RecordEnvelope(envelope, limits, max_records);
  if (!recorded) return std::nullopt;

  PreparedEnvelope prepared;
  prepared.recorded = std::move(*recorded);
  prepared.sha256 = Sha256Hex(envelope.bytes);
  prepared.compressed = ArrivedCompressed(envelope.bytes);
  if (!prepared.compressed) {
    auto gzipped = GzipArchiveCopy(envelope.bytes);
    if (!gzipped) return std::nullopt;
    prepared.gzipped = std::move(*gzipped);
  }
  return prepared;
}

}  // namespace dmarcd::storage
