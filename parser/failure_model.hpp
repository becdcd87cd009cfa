// The DMARC failure report model: one report per failing message, sent to a
// domain's ruf= address as an ARF email (RFC 5965) with the authentication
// failure extension (RFC 6591), now RFC 9991 ("failure" rather than
// "forensic"; Identity-Alignment and Auth-Failure required).
//
// Values are the reporter's, unfolded, trimmed and with RFC 2047 encoded
// words decoded; enumerations (feedback type, Auth-Failure, Identity-
// Alignment, Delivery-Result) are lower case. std::nullopt or an empty list
// means the field was absent or empty. Fields that may repeat are lists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dmarcd::parser {

enum class FailureFormat {
  kArf,          // multipart/report; report-type=feedback-report
  kNonStandard,  // a text body plus the failing message's headers, no ARF
};

struct FailureReport {
  FailureFormat format = FailureFormat::kArf;

  // The message/feedback-report part (RFC 5965 section 3.1, RFC 6591
  // section 3, RFC 9991).
  std::string feedback_type;  // "auth-failure"; empty for kNonStandard
  std::optional<std::string> user_agent;
  std::optional<std::string> version;
  std::optional<int64_t> arrival_date;           // Unix seconds UTC, when the date could be read
  std::optional<std::string> arrival_date_text;  // as sent
  std::optional<std::string> reporting_mta;      // "dns; mx.example.net"
  std::optional<std::string> source_ip;          // canonical text (RFC 5952 for IPv6)
  std::optional<std::string> source_ip_comment;  // "(host.example.net)" without parentheses
  std::optional<uint64_t> incidents;
  std::optional<std::string> original_envelope_id;
  std::optional<std::string> original_mail_from;  // angle brackets removed; may be ""
  std::vector<std::string> original_rcpt_to;      // angle brackets removed
  std::vector<std::string> reported_domain;       // lower case
  std::vector<std::string> reported_uri;
  std::vector<std::string> authentication_results;
  std::vector<std::string> auth_failure;        // adsp|bodyhash|revoked|signature|spf|dmarc
  std::vector<std::string> identity_alignment;  // RFC 9991: none|spf|dkim
  std::optional<std::string> delivery_result;   // delivered|spam|policy|reject|other
  std::optional<std::string> dkim_domain;
  std::optional<std::string> dkim_identity;
  std::optional<std::string> dkim_selector;
  std::optional<std::string> dkim_canonicalized_header;  // base64 as sent
  std::optional<std::string> dkim_canonicalized_body;    // base64 as sent
  std::optional<std::string> spf_dns;
  // Every field of the part in order as "Name: value" (unfolded), the ones
  // above included: what a detail view shows and the duplicate digest uses.
  std::vector<std::string> fields;

  // The returned (failing) message: "message/rfc822", "text/rfc822-headers"
  // or "text/plain"; nullopt when the report carries none.
  std::optional<std::string> returned_part_type;
  std::optional<std::string> from;  // header values as sent, unfolded
  std::optional<std::string> to;
  std::optional<std::string> subject;
  std::optional<std::string> date;
  std::optional<std::string> message_id;
  std::string headers;              // the whole header block, as sent
  std::optional<std::string> body;  // the returned message's body, as sent

  // The report email's own From, To, Subject, Date and Message-ID as
  // "Name: value", in that order, those present.
  std::vector<std::string> envelope_headers;

  // What the parser recovered from (missing padding, an unreadable date).
  std::vector<std::string> warnings;

  // The domain the report is about, lower case: Reported-Domain, else the
  // domain of the returned message's From, else "".
  std::string Domain() const;
};

}  // namespace dmarcd::parser
