#include "parser/utf8_sanitizer.hpp"

namespace dmarcd::parser {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Length of the sequence a lead byte announces (RFC 3629 section 4), 0 for a
// byte that cannot start one (continuation bytes, C0, C1, F5..FF).
int SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// Whether `byte` may follow the bytes before it at position `index` (1-based)
// of a sequence led by `lead`. The second byte's range excludes overlong
// forms and UTF-16 surrogates (RFC 3629 section 4, Table 3-7 of Unicode).
bool ValidContinuation(unsigned char lead, int index, unsigned char byte) {
  if (index == 1) {
    if (lead == 0xE0) return byte >= 0xA0 && byte <= 0xBF;
    if (lead == 0xED) return byte >= 0x80 && byte <= 0x9F;
    if (lead == 0xF0) return byte >= 0x90 && byte <= 0xBF;
    if (lead == 0xF4) return byte >= 0x80 && byte <= 0x8F;
  }
  return byte >= 0x80 && byte <= 0xBF;
}

}  // namespace

void Utf8Sanitizer::Replace(std::string& out) {
  out += kReplacement;
  ++replacements_;
}

void Utf8Sanitizer::Feed(std::string_view chunk, std::string& out) {
  std::string joined;
  if (!pending_.empty()) {
    joined = pending_ + std::string(chunk);
    pending_.clear();
    chunk = joined;
  }

  size_t i = 0;
  while (i < chunk.size()) {
    auto lead = static_cast<unsigned char>(chunk[i]);
    if (lead < 0x80) {
      size_t run = i;
      while (run < chunk.size() && static_cast<unsigned char>(chunk[run]) < 0x80) ++run;
      out.append(chunk.substr(i, run - i));
      i = run;
      continue;
    }

    int length = SequenceLength(lead);
    if (length == 0) {
      Replace(out);
      ++i;
      continue;
    }

    // Unicode's "maximal subpart" rule: the bytes that form a valid prefix
    // are replaced by one U+FFFD, and the byte that broke it starts afresh.
    int valid = 1;
    while (valid < length && i + valid < chunk.size() &&
           ValidContinuation(lead, valid, static_cast<unsigned char>(chunk[i + valid]))) {
      ++valid;
    }
    if (valid == length) {
      out.append(chunk.substr(i, length));
    } else if (i + valid == chunk.size()) {
      pending_ = std::string(chunk.substr(i));
    } else {
      Replace(out);
    }
    i += valid;
  }
}

void Utf8Sanitizer::Finish(std::string& out) {
  if (pending_.empty()) return;
  pending_.clear();
  Replace(out);
}

}  // namespace dmarcd::parser
