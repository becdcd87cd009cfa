// Finds the report payloads of an RFC 5322 email with GMime 3.
//
// Walks nested multiparts and attached emails (message/rfc822), decodes each
// leaf part by its Content-Transfer-Encoding (GMime's base64 decoder is
// lenient about missing padding, as RFC 2045 section 6.8 asks) and keeps the
// parts whose CONTENT is gzip, zip or XML, whatever the Content-Type or
// file name say: reporters send application/octet-stream, misspell the
// Content-Type header, or name a zip ".gz". A text body that is not a
// report (plain text, HTML) is left out.
//
// Errors: kBadMime when GMime cannot read the email, kTooManyEntries past
// limits.max_mime_parts parts. Thread-safe: GMime is initialised once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "parser/error.hpp"
#include "parser/limits.hpp"

namespace dmarcd::parser {

struct MimePayload {
  std::string name;   // the part's file name, or "part N"
  std::string bytes;  // transfer encoding removed
  int depth = 0;      // attached emails around the part
};

struct MimeContents {
  // multipart/report; report-type=feedback-report (RFC 6591 failure report).
  bool failure_report = false;
  std::vector<MimePayload> payloads;
  // Parts skipped for a limit (an attached email nested too deep).
  std::vector<Error> skipped;
};

// GMime's base64 decoder drops a final group of two or three letters that
// lacks its '=' padding, which cuts the last bytes (a gzip trailer, the end
// of a returned message) off a part. RFC 2045 section 6.8 asks decoders to
// be lenient, so the missing padding is restored before GMime decodes.
// `padded`, when given, says whether padding had to be restored.
std::string DecodeBase64Lenient(std::string encoded, bool* padded = nullptr);

class MimeWalker {
 public:
  static Result<MimeContents> Walk(std::string_view email, const Limits& limits);
};

}  // namespace dmarcd::parser
