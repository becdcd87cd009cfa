// Hard caps on what one envelope may make dmarcd do. Every cap is
// configurable ([limits] in the config file) and each has its own ErrorCode
// so the rejected table says which one was hit.
#pragma once

#include <cstdint>

namespace dmarcd::parser {

struct Limits {
  // Raw bytes of one envelope (an email, an uploaded or ingested file).
  uint64_t max_envelope_bytes = uint64_t{256} << 20;
  // Inflated bytes of one payload (gzip stream or zip entry). Real reports
  // reach hundreds of megabytes.
  uint64_t max_inflated_bytes = uint64_t{1} << 30;
  // Document bytes of all the payloads of one envelope together, after
  // every layer of gzip and zip: a zip of many members, each just under
  // max_inflated_bytes, stops here. A payload that would pass it is
  // rejected (kTooLarge); the ones before it stand.
  uint64_t max_envelope_inflated_bytes = uint64_t{4} << 30;
  // Inflated / compressed bytes of one payload, checked once
  // ratio_grace_bytes have been inflated: real reports stay far below,
  // decompression bombs far above.
  double max_compression_ratio = 250.0;
  uint64_t ratio_grace_bytes = uint64_t{16} << 20;
  // Members of one zip archive, directories included.
  int max_zip_entries = 64;
  // Archives inside archives and emails attached to emails.
  int max_nesting_depth = 4;
  // MIME parts in one email, counted over every nesting level.
  int max_mime_parts = 256;
  // Multiparts nested in one another in one email (Dovecot allows 100; a
  // report needs 3).
  int max_mime_depth = 10;
  // Bytes of one header block of an email or of one of its parts, folded
  // lines included. GMime reads headers in linear time; the cap only keeps
  // a message that is all header from being parsed as one.
  uint64_t max_header_bytes = uint64_t{4} << 20;
  // XML element depth; a DMARC report needs 5.
  int max_xml_depth = 32;
  // Attributes (namespace declarations included) of one XML element; a
  // DMARC report needs at most 3.
  int max_xml_attributes = 64;
  // Bytes of text in one XML element.
  uint64_t max_text_bytes = uint64_t{64} << 10;
  // Records in one aggregate report.
  uint64_t max_records = uint64_t{50'000'000};
};

}  // namespace dmarcd::parser
