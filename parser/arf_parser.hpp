// Reads DMARC failure reports: ARF emails (RFC 5965) with the
// authentication failure extension (RFC 6591, RFC 9991), and the non-ARF
// reports some providers send instead (a text body plus the headers of the
// failing message).
//
// GMime does the MIME work (structure, header unfolding, RFC 2047, transfer
// encodings); this code reads the fields. The returned message may come as
// message/rfc822, text/rfc822-headers or a plain text part, and a base64
// part without its final padding is decoded all the same (with a warning).
//
// Errors (the reason filed in the rejected table):
// - kNotAReport: an ARF report of another feedback type (abuse, fraud,
//   opt-out: feedback loops that reached a ruf= mailbox by mistake), with
//   the message "not a DMARC failure report (feedback type abuse)";
// - kMissingElement: an ARF report without a Feedback-Type, or with neither
//   a feedback-report part nor a returned message;
// - kBadMime: GMime cannot read the email;
// - kTooManyEntries, kTooDeep, kTooLarge: the email's MIME shape is over the
//   default Limits (ScanMimeShape), checked before GMime parses it.
// Pure and thread-safe: no I/O, no globals besides GMime's one-time setup.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "parser/error.hpp"
#include "parser/failure_model.hpp"

namespace dmarcd::parser {

// Parses an email that is a multipart/report; report-type=feedback-report,
// or that LooksLikeNonStandardFailureReport.
Result<FailureReport> ParseFailureReport(std::string_view email);

// True for an email that is plainly a DMARC failure report without being
// ARF: its Subject names a DMARC failure (or forensic) report and it carries
// the headers of a returned message.
bool LooksLikeNonStandardFailureReport(std::string_view email);

// Writes `report` as a new ARF email that ParseFailureReport reads back to
// the same fields, returned headers and body (a kNonStandard report becomes
// a text part of its fields and the returned headers, and stays
// kNonStandard). `envelope_headers` ("Name: value") head the email. Used to
// keep a failure report the way the privacy settings allow instead of the
// bytes as received.
std::string WriteFailureReport(const FailureReport& report,
                               const std::vector<std::string>& envelope_headers);

}  // namespace dmarcd::parser
