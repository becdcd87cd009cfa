#include "parser/gzip_inflater.hpp"

#include <algorithm>
#include <climits>

namespace dmarcd::parser {

namespace {

// 15: the largest window (RFC 1951); +16: expect the gzip wrapper, not zlib.
constexpr int kGzipWindowBits = 15 + 16;

}  // namespace

GzipInflater::GzipInflater(ByteSink& out, const Limits& limits, std::string name)
    : out_(out), limits_(limits), name_(std::move(name)), output_(kChunkBytes, '\0') {
  initialized_ = inflateInit2(&stream_, kGzipWindowBits) == Z_OK;
}

GzipInflater::~GzipInflater() {
  if (initialized_) inflateEnd(&stream_);
}

Result<void> GzipInflater::CheckCaps() const {
  if (total_out_ > limits_.max_inflated_bytes) {
    return MakeError(ErrorCode::kTooLarge, "decompressed size of " + name_ + " exceeds " +
                                               std::to_string(limits_.max_inflated_bytes) +
                                               " bytes");
  }
  // A real report compresses perhaps 20:1; a bomb of repeated bytes reaches
  // 1000:1. The grace keeps small, very regular payloads from tripping it.
  if (total_out_ >= limits_.ratio_grace_bytes &&
      static_cast<double>(total_out_) >
          limits_.max_compression_ratio * static_cast<double>(std::max<uint64_t>(total_in_, 1))) {
    return MakeError(ErrorCode::kRatioExceeded,
                     "compression ratio of " + name_ + " above " +
                         std::to_string(static_cast<int>(limits_.max_compression_ratio)) + " (" +
                         std::to_string(total_out_) + " bytes from " + std::to_string(total_in_) +
                         "): a decompression bomb");
  }
  return {};
}

Result<void> GzipInflater::Write(std::string_view compressed) {
  if (!initialized_) return MakeError(ErrorCode::kInternal, "zlib could not be initialised");
  if (trailing_) return {};

  // Between members: RFC 1952 section 2.3.1 says a member starts with the
  // bytes 1f 8b; anything else is trailing garbage, which gzip -d ignores.
  while (!in_member_ && !compressed.empty()) {
    magic_.push_back(compressed.front());
    compressed.remove_prefix(1);
    if (static_cast<unsigned char>(magic_[0]) != 0x1f ||
        (magic_.size() == 2 && static_cast<unsigned char>(magic_[1]) != 0x8b)) {
      trailing_ = true;
      return {};
    }
    if (magic_.size() == 2) {
      inflateReset(&stream_);
      in_member_ = true;
      std::string magic = std::move(magic_);
      magic_.clear();
      auto done = Inflate(magic);
      if (!done) return done;
    }
  }
  if (compressed.empty()) return {};
  return Inflate(compressed);
}

Result<void> GzipInflater::Inflate(std::string_view input) {
  // A full output slice means zlib may hold more output for the input it
  // already took (the rest of a long match), so go on even without input.
  bool output_full = false;
  while ((!input.empty() || output_full) && !trailing_) {
    auto slice = std::min<size_t>(input.size(), UINT_MAX);
    stream_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
    stream_.avail_in = static_cast<uInt>(slice);
    stream_.next_out = reinterpret_cast<Bytef*>(output_.data());
    stream_.avail_out = static_cast<uInt>(output_.size());

    int rc = inflate(&stream_, Z_NO_FLUSH);
    size_t consumed = slice - stream_.avail_in;
    size_t produced = output_.size() - stream_.avail_out;
    output_full = stream_.avail_out == 0;
    input.remove_prefix(consumed);
    total_in_ += consumed;

    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      std::string why = stream_.msg != nullptr ? stream_.msg : "corrupt data";
      return MakeError(ErrorCode::kBadArchive, "gzip stream " + name_ + " is corrupt: " + why);
    }

    total_out_ += produced;
    if (auto caps = CheckCaps(); !caps) return caps;
    if (produced > 0) {
      auto written = out_.Write(std::string_view(output_.data(), produced));
      if (!written) return written;
      if (out_.Stopped()) {
        trailing_ = true;
        return {};
      }
    }

    if (rc == Z_STREAM_END) {
      in_member_ = false;
      return Write(input);
    }
    if (rc == Z_BUF_ERROR && consumed == 0 && produced == 0) break;
  }
  return {};
}

Result<void> GzipInflater::Finish() {
  if (in_member_ && !trailing_) {
    return MakeError(ErrorCode::kBadArchive, "gzip stream " + name_ + " is truncated (" +
                                                 std::to_string(total_out_) +
                                                 " bytes inflated before it ended)");
  }
  return {};
}

}  // namespace dmarcd::parser
