// Streaming repair of UTF-8: every ill-formed sequence becomes U+FFFD.
//
// Reporters declare UTF-8 (or nothing, which XML 1.0 section 4.3.3 reads as
// UTF-8) and then write ISO-8859-1 bytes into org_name. libxml2 refuses such
// a document outright; repairing the bytes before it sees them keeps every
// record. A sequence split across two chunks is held back until the next
// chunk completes it, so chunk boundaries never change the result.
//
// Not thread-safe; one per document.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace dmarcd::parser {

class Utf8Sanitizer {
 public:
  // Appends the repaired form of `chunk` to `out`; an incomplete sequence at
  // the end of `chunk` is kept for the next call.
  void Feed(std::string_view chunk, std::string& out);

  // The input ended: a sequence still incomplete is ill-formed.
  void Finish(std::string& out);

  // Ill-formed sequences replaced so far.
  uint64_t Replacements() const { return replacements_; }

 private:
  void Replace(std::string& out);

  std::string pending_;  // start of a sequence the chunk cut off, at most 3 bytes
  uint64_t replacements_ = 0;
};

}  // namespace dmarcd::parser
