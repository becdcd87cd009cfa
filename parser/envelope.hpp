// What a channel hands to the ingest pipeline: the bytes as received and
// where they came from.
#pragma once

#include <string>

namespace dmarcd::parser {

struct Envelope {
  // The raw bytes: an RFC 5322 email, or a bare XML, gzip or zip payload.
  std::string bytes;
  // Where it came from, for logs and the database: "file:reports/a.xml.gz",
  // "stdin", "http:upload", "imap:INBOX/4711".
  std::string origin;
};

}  // namespace dmarcd::parser
