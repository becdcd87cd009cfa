// An envelope made ready for the Writer ahead of time, on a thread other
// than the writer's: what Writer::Ingest would otherwise work out itself
// while holding the database, done while the writer stores the envelope
// before (`dmarcd ingest`'s look-ahead, issue #7).
//
// It holds the parse recording (parser::RecordEnvelope), the SHA-256 that
// names the envelope's archive copy, and that copy: the bytes as they came
// when they came compressed, else their gzip. Writer::Ingest given one
// replays the recording and archives the copy instead of parsing and
// compressing again, and stores exactly what it would have stored without.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "parser/envelope.hpp"
#include "parser/error.hpp"
#include "parser/limits.hpp"
#include "parser/recorded_envelope.hpp"

namespace dmarcd::storage {

struct PreparedEnvelope {
  parser::RecordedEnvelope recorded;
  std::string sha256;       // hex, of the envelope's bytes as received
  bool compressed = false;  // arrived as gzip or zip: archived as it is
  std::string gzipped;      // otherwise the archive copy, GzipArchiveCopy
};

// Prepares `envelope` for Writer::Ingest with `limits` (the writer's own),
// or nullopt when it must be stored the ordinary way: when it may be a
// failure report (MayBeFailureReport: the privacy settings may change its
// bytes before they are parsed), when parser::RecordEnvelope cannot record
// it faithfully (more than `max_records` records among other reasons), or
// when compressing its archive copy failed. Pure: no database, no globals;
// any thread.
std::optional<PreparedEnvelope> PrepareEnvelope(const parser::Envelope& envelope,
                                                const parser::Limits& limits, size_t max_records);

// The archive copy of bytes that arrived uncompressed: gzip (RFC 1952) at
// level 1, which shrinks emails and bare XML several times over at little
// CPU cost. Errors are zlib's (kInternal).
Result<std::string> GzipArchiveCopy(std::string_view bytes);

// Whether bytes arrived compressed (gzip or zip, sniffed by content) and are
// archived as they are.
bool ArrivedCompressed(std::string_view bytes);

}  // namespace dmarcd::storage
