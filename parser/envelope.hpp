// What a channel hands to the ingest pipeline: the bytes as received and
// where they came from.
#pragma once

#include <optional>
#include <string>

#include "parser/error.hpp"

namespace dmarcd::parser {

struct Envelope {
  // The raw bytes: an RFC 5322 email, or a bare XML, gzip or zip payload.
  std::string bytes;
  // Where it came from, for logs and the database: "file:reports/a.xml.gz",
  // "stdin", "http:upload", "imap:INBOX/4711".
  std::string origin;
  // Set by a channel that refused the input before reading it whole (IMAP:
  // a message whose RFC822.SIZE is above the limit is never downloaded).
  // `bytes` then holds only what the channel kept (the message's header
  // section), and the pipeline stores it as rejected with this reason
  // without parsing it.
  std::optional<Error> refused = std::nullopt;
};

}  // namespace dmarcd::parser
