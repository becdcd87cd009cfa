#include "parser/pipeline.hpp"

#include <algorithm>

#include "parser/arf_parser.hpp"
#include "parser/byte_sink.hpp"
#include "parser/mime_walker.hpp"
#include "parser/payload_walker.hpp"

namespace dmarcd::parser {

namespace {

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// RFC 5322 section 2.2: a header field name is printable ASCII except ':'
// and is followed by ':'. An mbox "From " line may precede the headers.
bool LooksLikeEmail(std::string_view bytes) {
  if (bytes.starts_with("From ")) return true;
  size_t i = 0;
  while (i < bytes.size() && bytes[i] > 32 && bytes[i] < 127 && bytes[i] != ':') ++i;
  return i > 0 && i < bytes.size() && bytes[i] == ':';
}

void DeliverFailureReport(const Envelope& envelope, EnvelopeHandler& handler) {
  auto report = ParseFailureReport(envelope.bytes);
  if (!report) {
    handler.OnRejected(envelope.origin, envelope.bytes, report.error());
    return;
  }
  handler.OnFailureReport(envelope.origin, envelope.bytes, *report);
}

void WalkEmail(const Envelope& envelope, const Limits& limits, EnvelopeHandler& handler,
               PayloadWalker& walker) {
  auto contents = MimeWalker::Walk(envelope.bytes, limits);
  if (!contents) {
    handler.OnRejected(envelope.origin, envelope.bytes, contents.error());
    return;
  }

  // RFC 6591 / RFC 9991: one email is one failure report; another feedback
  // type (abuse, fraud) is rejected by the ARF parser with its reason.
  if (contents->failure_report) {
    DeliverFailureReport(envelope, handler);
    return;
  }

  for (const Error& skipped : contents->skipped) {
    handler.OnRejected(envelope.origin, envelope.bytes, skipped);
  }
  if (contents->payloads.empty()) {
    // Some providers send failure reports without ARF: a text body and the
    // failing message's headers. They are stored as non-standard.
    if (contents->skipped.empty() && LooksLikeNonStandardFailureReport(envelope.bytes)) {
      DeliverFailureReport(envelope, handler);
      return;
    }
    if (contents->skipped.empty()) {
      handler.OnRejected(envelope.origin, envelope.bytes,
                         Error(ErrorCode::kNoReport, "no report attachment found"));
    }
    return;
  }

  for (const MimePayload& payload : contents->payloads) {
    if (walker.Fatal()) return;
    walker.WalkPayload(payload.name, payload.bytes, payload.depth);
  }
}

}  // namespace

PayloadKind SniffPayload(std::string_view bytes) {
  if (bytes.starts_with("\x1f\x8b")) return PayloadKind::kGzip;
  if (bytes.starts_with(std::string_view("PK\x03\x04", 4)) ||
      bytes.starts_with(std::string_view("PK\x05\x06", 4))) {
    return PayloadKind::kZip;
  }

  std::string_view rest = bytes;
  if (rest.starts_with("\xEF\xBB\xBF")) rest.remove_prefix(3);
  while (!rest.empty() && IsXmlSpace(rest.front())) rest.remove_prefix(1);
  if (!rest.empty() && rest.front() == '<') return PayloadKind::kXml;

  if (LooksLikeEmail(bytes)) return PayloadKind::kEmail;
  return PayloadKind::kUnknown;
}

Result<void> ParseEnvelope(const Envelope& envelope, const Limits& limits,
                           EnvelopeHandler& handler) {
  if (envelope.refused) {
    handler.OnRejected(envelope.origin, envelope.bytes, *envelope.refused);
    return {};
  }
  if (envelope.bytes.size() > limits.max_envelope_bytes) {
    handler.OnRejected(
        envelope.origin, envelope.bytes,
        Error(ErrorCode::kTooLarge, "envelope of " + std::to_string(envelope.bytes.size()) +
                                        " bytes is larger than " +
                                        std::to_string(limits.max_envelope_bytes)));
    return {};
  }

  PayloadWalker walker(handler, limits);
  switch (SniffPayload(envelope.bytes)) {
    case PayloadKind::kGzip:
    case PayloadKind::kZip:
    case PayloadKind::kXml:
      walker.WalkPayload(envelope.origin, envelope.bytes, 0);
      break;
    case PayloadKind::kEmail:
      WalkEmail(envelope, limits, handler, walker);
      break;
    case PayloadKind::kUnknown:
      handler.OnRejected(envelope.origin, envelope.bytes,
                         Error(ErrorCode::kNotXml, "not XML, gzip, zip or an email"));
      break;
  }

  if (walker.Fatal()) return tl::unexpected(*walker.Fatal());
  return {};
}

Result<void> ParseEnvelopeSource(EnvelopeSource& source, const Limits& limits,
                                 EnvelopeHandler& handler) {
  if (source.Size() > limits.max_envelope_bytes) {
    handler.OnRejected(source.Origin(), std::string_view(),
                       Error(ErrorCode::kTooLarge, "envelope of " + std::to_string(source.Size()) +
                                                       " bytes is larger than " +
                                                       std::to_string(limits.max_envelope_bytes)));
    return {};
  }
  if (auto rewound = source.Rewind(); !rewound) return rewound;
  std::string head(std::min<uint64_t>(source.Size(), kChunkBytes), '\0');
  auto read = source.Read(head);
  if (!read) return tl::unexpected(read.error());
  head.resize(*read);
  const PayloadKind kind = SniffPayload(head);
  if (kind != PayloadKind::kGzip && kind != PayloadKind::kXml) {
    return MakeError(ErrorCode::kUnsupported,
                     "only a bare gzip or XML payload is read as a stream: " + source.Origin());
  }

  PayloadWalker walker(handler, limits);
  walker.WalkSource(source.Origin(), source, head, 0);
  if (walker.Fatal()) return tl::unexpected(*walker.Fatal());
  return {};
}

}  // namespace dmarcd::parser
