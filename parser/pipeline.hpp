// From the bytes of one envelope to reports: unpack (MIME, gzip, zip),
// classify, parse. Pure: no I/O, no database, no globals.
//
// ParseEnvelope walks the envelope and, for every document that should be an
// aggregate report, asks the handler for a sink and streams the document
// into it; a document is inflated chunk by chunk straight into the XML
// parser, never held whole. Anything that is not a report ends in
// OnRejected with the bytes of the part it came from, so nothing is lost.
// A failure report (ARF) goes whole to OnFailureReport.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "parser/aggregate_parser.hpp"
#include "parser/envelope.hpp"
#include "parser/error.hpp"
#include "parser/failure_model.hpp"
#include "parser/limits.hpp"

namespace dmarcd::parser {

// One document inside an envelope.
struct DocumentInfo {
  // Path inside the envelope, for people: "google.com!example.com!1!2.zip/
  // google.com!example.com!1!2.xml"; the bare origin for a bare payload.
  std::string name;
  // The part the document came from as it was received (MIME transfer
  // encoding removed, still compressed): what a rejection keeps.
  std::string_view part_bytes;
  // Bytes after inflation, known at OnDocumentEnd.
  uint64_t inflated_bytes = 0;
};

class EnvelopeHandler {
 public:
  virtual ~EnvelopeHandler() = default;

  // A document that should be an aggregate report begins. The returned sink
  // (owned by the handler, valid until OnDocumentEnd) receives its contents.
  virtual AggregateSink& OnAggregateBegin(const DocumentInfo& doc) = 0;

  // The document ended: `outcome` is an error when it was rejected (the
  // handler undoes whatever the sink stored and records the rejection with
  // doc.part_bytes), or when the sink itself returned one.
  virtual void OnAggregateEnd(const DocumentInfo& doc, const Result<void>& outcome) = 0;

  // A part that holds no report dmarcd can read: an email without any
  // attachment, an archive that cannot be opened, an ARF report of another
  // feedback type than auth-failure. `bytes` is the part (or the whole
  // envelope) as received.
  virtual void OnRejected(std::string_view name, std::string_view bytes, const Error& error) = 0;

  // The envelope is a failure report (RFC 6591, RFC 9991, or a non-ARF one
  // that plainly is one); `bytes` is the email as received. A handler that
  // stores aggregate reports only keeps the default, which files the email
  // as rejected with kUnsupported.
  virtual void OnFailureReport(std::string_view name, std::string_view bytes,
                               const FailureReport& report) {
    static_cast<void>(report);
    OnRejected(name, bytes,
               Error(ErrorCode::kUnsupported, "failure reports are not stored by this handler"));
  }
};

// Never throws for bad input. Returns an error only when a sink returned a
// transient one (IsTransient: a busy or failing database): the walk stops
// after OnAggregateEnd for that document, and the caller rolls the whole
// envelope back to try it again later.
Result<void> ParseEnvelope(const Envelope& envelope, const Limits& limits,
                           EnvelopeHandler& handler);

// As ParseEnvelope, for a bare gzip or XML payload read from `source` in
// chunks, so that its size never shows in memory. The documents' and
// rejections' part_bytes are empty: the bytes are the envelope's own,
// which the handler archived from the source. An email or a zip archive
// (which need the whole bytes) is refused with kUnsupported; a read error
// from the source is returned as it is.
Result<void> ParseEnvelopeSource(EnvelopeSource& source, const Limits& limits,
                                 EnvelopeHandler& handler);

enum class PayloadKind { kGzip, kZip, kXml, kEmail, kUnknown };

// Sniffs a payload by its bytes, whatever the MIME type or file name says.
PayloadKind SniffPayload(std::string_view bytes);

}  // namespace dmarcd::parser
