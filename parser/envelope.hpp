// What a channel hands to the ingest pipeline: the bytes as received and
// where they came from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
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

// An envelope too large to hold in memory (a report of hundreds of
// megabytes), read in chunks as often as the reader needs: once for its
// SHA-256, once for the archive copy, once for the parser. The bytes must
// not change between passes. Implementations do the I/O (a file); the
// parser only calls them. Not thread-safe.
class EnvelopeSource {
 public:
  virtual ~EnvelopeSource() = default;

  // As Envelope::origin.
  virtual const std::string& Origin() const = 0;
  // The number of bytes every pass reads.
  virtual uint64_t Size() const = 0;
  // Starts a pass again from the first byte.
  virtual Result<void> Rewind() = 0;
  // Fills `buffer` with the next bytes; returns how many, 0 at the end.
  virtual Result<size_t> Read(std::span<char> buffer) = 0;
};

}  // namespace dmarcd::parser
