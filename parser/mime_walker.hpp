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
// GMime builds the whole MIME tree of an email before anything can be
// counted, recursing once per nested part, so the raw lines are scanned
// first (ScanMimeShape) and an email whose shape is over the limits never
// reaches GMime. The scan and GMime's parse are both linear in the size of
// the email.
//
// Errors: kBadMime when GMime cannot read the email; kTooManyEntries past
// limits.max_mime_parts parts; kTooDeep past limits.max_mime_depth nested
// multiparts; kTooLarge for a header block above limits.max_header_bytes.
// Thread-safe: GMime is initialised once.
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

// What the raw lines of an email say about its MIME structure, found
// without building anything. Every part GMime builds below the top needs a
// delimiter line or a message/* header, so `parts` bounds GMime's tree and
// its recursion; `depth` follows the boundaries' nesting (the parts of a
// multipart/digest, attached emails without a header of their own, are
// counted as parts only).
struct MimeShape {
  // Delimiter lines of declared boundaries (RFC 2046 section 5.1.1) plus
  // the parts declared as attached messages, plus the email itself.
  int parts = 1;
  // The deepest nesting of multiparts, from the order of delimiter lines.
  int depth = 0;
  // The largest header block (the email's or a part's), in bytes.
  uint64_t largest_header = 0;
};

// Scans `email` and refuses it, before GMime sees it, when its shape is
// over `limits` (the errors above). Stops at the first limit passed, so the
// shape returned is exact only when no error is.
Result<MimeShape> ScanMimeShape(std::string_view email, const Limits& limits);

class MimeWalker {
 public:
  static Result<MimeContents> Walk(std::string_view email, const Limits& limits);
};

}  // namespace dmarcd::parser
