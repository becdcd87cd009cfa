#include "parser/arf_parser.hpp"

#include <arpa/inet.h>
#include <gmime/gmime.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "parser/mime_walker.hpp"

namespace dmarcd::parser {

namespace {

// Parts looked at before giving up on finding the report's pieces.
constexpr int kMaxParts = 64;
constexpr int kMaxDepth = 4;

void EnsureGmime() {
  static std::once_flag init;
  std::call_once(init, [] { g_mime_init(); });
}

template <typename T>
struct Unref {
  void operator()(T* object) const { g_object_unref(object); }
};

template <typename T>
using GPtr = std::unique_ptr<T, Unref<T>>;

struct GFree {
  void operator()(char* text) const { g_free(text); }
};

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

std::optional<std::string> NonEmpty(std::string text) {
  if (text.empty()) return std::nullopt;
  return text;
}

GPtr<GMimeMessage> ParseMessage(std::string_view bytes) {
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  return GPtr<GMimeMessage>(g_mime_parser_construct_message(parser.get(), nullptr));
}

std::string ObjectBytes(GMimeObject* object) {
  GPtr<GMimeStream> stream(g_mime_stream_mem_new());
  g_mime_object_write_to_stream(object, nullptr, stream.get());
  GByteArray* array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream.get()));
  return std::string(reinterpret_cast<const char*>(array->data), array->len);
}

// The header block of an RFC 5322 message and what follows the blank line
// after it (section 2.1). Leading blank lines are skipped.
std::pair<std::string, std::string> SplitHeaders(std::string_view text) {
  while (text.starts_with("\r\n") || text.starts_with("\n")) {
    text.remove_prefix(text.front() == '\r' ? 2 : 1);
  }
  size_t line = 0;
  while (line < text.size()) {
    size_t end = text.find('\n', line);
    if (end == std::string_view::npos) break;
    std::string_view content = text.substr(line, end - line);
    if (content.empty() || content == "\r") {
      return {std::string(text.substr(0, line)), std::string(text.substr(end + 1))};
    }
    line = end + 1;
  }
  return {std::string(text), std::string()};
}

std::string DecodeQuotedPrintable(std::string_view encoded) {
  GMimeEncoding state;
  g_mime_encoding_init_decode(&state, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
  std::string decoded(g_mime_encoding_outlen(&state, encoded.size()), '\0');
  size_t length = g_mime_encoding_flush(&state, encoded.data(), encoded.size(), decoded.data());
  decoded.resize(length);
  return decoded;
}

// A part's body with its Content-Transfer-Encoding removed. GMime parses a
// message/rfc822 part as an email whatever its encoding, though a base64
// one (which RFC 2046 section 5.2.1 forbids, and reporters send) is no
// email until decoded; so the body is taken as written and decoded here.
std::string PartBody(GMimeObject* object, std::vector<std::string>& warnings) {
  std::string body = SplitHeaders(ObjectBytes(object)).second;
  const char* cte = g_mime_object_get_header(object, "Content-Transfer-Encoding");
  if (cte == nullptr) return body;
  switch (g_mime_content_encoding_from_string(cte)) {
    case GMIME_CONTENT_ENCODING_BASE64: {
      bool padded = false;
      std::string decoded = DecodeBase64Lenient(std::move(body), &padded);
      if (padded) warnings.emplace_back("base64 without padding decoded leniently");
      return decoded;
    }
    case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
      return DecodeQuotedPrintable(body);
    default:
      return body;
  }
}

std::string MimeType(GMimeObject* object) {
  GMimeContentType* type = g_mime_object_get_content_type(object);
  if (type == nullptr) return "text/plain";
  std::unique_ptr<char, GFree> text(g_mime_content_type_get_mime_type(type));
  return text ? Lower(text.get()) : "text/plain";
}

std::optional<std::string> Header(GMimeObject* object, const char* name) {
  const char* value = g_mime_object_get_header(object, name);
  if (value == nullptr) return std::nullopt;
  return NonEmpty(Trim(value));
}

// RFC 5322 section 3.2.2: a comment is text in parentheses; Source-IP and
// the address fields carry them ("192.0.2.1 (mail.example.net)").
std::string StripComments(std::string_view value, std::string* comments) {
  std::string out;
  int depth = 0;
  for (char c : value) {
    if (c == '(') {
      if (depth++ > 0 && comments != nullptr) *comments += c;
      continue;
    }
    if (c == ')' && depth > 0) {
      if (--depth > 0 && comments != nullptr) *comments += c;
      if (depth == 0 && comments != nullptr) *comments += ' ';
      continue;
    }
    if (depth > 0) {
      if (comments != nullptr) *comments += c;
    } else {
      out += c;
    }
  }
  if (comments != nullptr) *comments = Trim(*comments);
  return Trim(out);
}

// "<user@example.com>" and "user@example.com" alike (RFC 5965 section 3.3:
// Original-Mail-From and Original-Rcpt-To are RFC 5321 paths).
std::string StripPath(std::string_view value) {
  std::string text = StripComments(value, nullptr);
  if (text.size() >= 2 && text.front() == '<' && text.back() == '>') {
    text = text.substr(1, text.size() - 2);
  }
  return Trim(text);
}

// The address in canonical text, or nullopt: brackets and an "IPv6:"
// prefix (RFC 5321 section 4.1.3) are taken off first.
std::optional<std::string> CanonicalIp(std::string text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (Lower(text).starts_with("ipv6:")) text = text.substr(5);
  char out[INET6_ADDRSTRLEN] = {};
  unsigned char address[sizeof(struct in6_addr)] = {};
  if (inet_pton(AF_INET, text.c_str(), address) == 1) {
    return inet_ntop(AF_INET, address, out, sizeof(out));
  }
  if (inet_pton(AF_INET6, text.c_str(), address) == 1) {
    return inet_ntop(AF_INET6, address, out, sizeof(out));
  }
  return std::nullopt;
}

// Arrival-Date is an RFC 5322 date-time (RFC 5965 section 3.2), but
// reporters also send ISO 8601 and "YYYY-MM-DD HH:MM:SS" (read as UTC).
std::optional<int64_t> ParseDate(const std::string& text) {
  if (GDateTime* parsed = g_mime_utils_header_decode_date(text.c_str()); parsed != nullptr) {
    int64_t seconds = g_date_time_to_unix(parsed);
    g_date_time_unref(parsed);
    // GMime answers the epoch for what it cannot read.
    if (seconds != 0) return seconds;
  }
  std::string iso = text;
  if (iso.size() >= 19 && iso[10] == ' ') iso[10] = 'T';
  GTimeZone* utc = g_time_zone_new_utc();
  GDateTime* parsed = g_date_time_new_from_iso8601(iso.c_str(), utc);
  g_time_zone_unref(utc);
  if (parsed == nullptr) return std::nullopt;
  int64_t seconds = g_date_time_to_unix(parsed);
  g_date_time_unref(parsed);
  return seconds;
}

// RFC 6591 section 3.1 lets Auth-Failure repeat; RFC 9991's
// Identity-Alignment is a comma-separated list; some reporters also put
// several Auth-Failure values on one line.
void AppendList(std::string_view value, std::vector<std::string>& list) {
  std::string word;
  for (char c : StripComments(value, nullptr) + ",") {
    if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
      if (!word.empty()) list.push_back(Lower(word));
      word.clear();
    } else {
      word += c;
    }
  }
}

// One field of the message/feedback-report part (RFC 5965 section 3.1,
// RFC 6591 section 3.1, RFC 9991); unknown fields are kept in `fields` only.
void ReadField(const std::string& name, const std::string& value, FailureReport& report) {
  const std::string key = Lower(name);
  report.fields.push_back(name + ": " + value);
  if (key == "feedback-type") {
    report.feedback_type = Lower(StripComments(value, nullptr));
  } else if (key == "user-agent") {
    report.user_agent = NonEmpty(value);
  } else if (key == "version") {
    report.version = NonEmpty(StripComments(value, nullptr));
  } else if (key == "arrival-date" || key == "received-date") {
    report.arrival_date_text = NonEmpty(value);
    report.arrival_date = ParseDate(value);
    if (!report.arrival_date) report.warnings.push_back("unreadable Arrival-Date: " + value);
  } else if (key == "reporting-mta") {
    report.reporting_mta = NonEmpty(value);
  } else if (key == "source-ip") {
    std::string comment;
    std::string address = StripComments(value, &comment);
    report.source_ip = CanonicalIp(address);
    report.source_ip_comment = NonEmpty(comment);
    if (!report.source_ip) report.warnings.push_back("unreadable Source-IP: " + value);
  } else if (key == "incidents") {
    std::string digits = StripComments(value, nullptr);
    if (!digits.empty() && digits.size() < 19 &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      report.incidents = std::stoull(digits);
    }
  } else if (key == "original-envelope-id") {
    report.original_envelope_id = NonEmpty(value);
  } else if (key == "original-mail-from") {
    report.original_mail_from = StripPath(value);
  } else if (key == "original-rcpt-to") {
    if (std::string path = StripPath(value); !path.empty()) report.original_rcpt_to.push_back(path);
  } else if (key == "reported-domain") {
    if (std::string domain = Lower(StripComments(value, nullptr)); !domain.empty()) {
      report.reported_domain.push_back(domain);
    }
  } else if (key == "reported-uri") {
    if (!value.empty()) report.reported_uri.push_back(value);
  } else if (key == "authentication-results") {
    if (!value.empty()) report.authentication_results.push_back(value);
  } else if (key == "auth-failure") {
    AppendList(value, report.auth_failure);
  } else if (key == "identity-alignment") {
    AppendList(value, report.identity_alignment);
  } else if (key == "delivery-result") {
    report.delivery_result = NonEmpty(Lower(StripComments(value, nullptr)));
  } else if (key == "dkim-domain") {
    report.dkim_domain = NonEmpty(Lower(value));
  } else if (key == "dkim-identity") {
    report.dkim_identity = NonEmpty(value);
  } else if (key == "dkim-selector") {
    report.dkim_selector = NonEmpty(value);
  } else if (key == "dkim-canonicalized-header") {
    report.dkim_canonicalized_header = NonEmpty(value);
  } else if (key == "dkim-canonicalized-body") {
    report.dkim_canonicalized_body = NonEmpty(value);
  } else if (key == "spf-dns") {
    report.spf_dns = NonEmpty(value);
  }
}

// The fields of a header block in order; GMime unfolds each value and
// decodes RFC 2047 words in it.
std::vector<std::pair<std::string, std::string>> HeaderFields(std::string_view block) {
  std::vector<std::pair<std::string, std::string>> fields;
  std::string text = SplitHeaders(block).first + "\n";
  GPtr<GMimeMessage> message = ParseMessage(text);
  if (!message) return fields;
  GMimeHeaderList* list = g_mime_object_get_header_list(GMIME_OBJECT(message.get()));
  const int count = g_mime_header_list_get_count(list);
  for (int i = 0; i < count; ++i) {
    GMimeHeader* header = g_mime_header_list_get_header_at(list, i);
    const char* name = g_mime_header_get_name(header);
    const char* value = g_mime_header_get_value(header);
    if (name == nullptr) continue;
    fields.emplace_back(name, Trim(value != nullptr ? value : ""));
  }
  return fields;
}

// The failing message's headers (and body, when it came whole).
void ReadReturned(std::string_view text, std::string type, bool has_body, FailureReport& report) {
  auto [headers, body] = SplitHeaders(text);
  report.returned_part_type = std::move(type);
  report.headers = headers;
  if (has_body) report.body = body;
  GPtr<GMimeMessage> message = ParseMessage(headers + "\n");
  if (!message) return;
  auto* object = GMIME_OBJECT(message.get());
  report.from = Header(object, "From");
  report.to = Header(object, "To");
  report.subject = Header(object, "Subject");
  report.date = Header(object, "Date");
  report.message_id = Header(object, "Message-ID");
}

// A header block inside a text part: from the first line that opens one.
std::optional<std::string> FindHeaderBlock(std::string_view text) {
  for (std::string_view start : {"Received: ", "Return-Path: ", "DKIM-Signature: ", "From: "}) {
    // Built step by step: "\n" + std::string(start) trips g++ 12's -Wrestrict
    // false positive at -O2.
    std::string line_start = "\n";
    line_start += start;
    size_t at = text.starts_with(start) ? 0 : text.find(line_start);
    if (at == std::string_view::npos) continue;
    if (at != 0) ++at;
    return std::string(text.substr(at));
  }
  return std::nullopt;
}

struct Parts {
  GMimeObject* feedback = nullptr;
  GMimeObject* returned = nullptr;
  std::vector<GMimeObject*> texts;  // text/plain parts, in order
  int seen = 0;
};

void CollectParts(GMimeObject* object, int depth, Parts& parts) {
  if (++parts.seen > kMaxParts || depth > kMaxDepth) return;
  if (GMIME_IS_MULTIPART(object)) {
    auto* multipart = GMIME_MULTIPART(object);
    const int count = g_mime_multipart_get_count(multipart);
    for (int i = 0; i < count; ++i) {
      CollectParts(g_mime_multipart_get_part(multipart, i), depth + 1, parts);
    }
    return;
  }
  const std::string type = MimeType(object);
  if (type == "message/feedback-report" && parts.feedback == nullptr) {
    parts.feedback = object;
  } else if ((type == "message/rfc822" || type.ends_with("/rfc822-headers")) &&
             parts.returned == nullptr) {
    parts.returned = object;
  } else if (type == "text/plain") {
    parts.texts.push_back(object);
  }
}

void ReadEnvelopeHeaders(GMimeMessage* message, FailureReport& report) {
  for (const char* name : {"From", "To", "Subject", "Date", "Message-ID"}) {
    if (auto value = Header(GMIME_OBJECT(message), name)) {
      report.envelope_headers.push_back(std::string(name) + ": " + *value);
    }
  }
}

// What a non-ARF report says: "Name: value" lines of its text that are
// ARF field names, and the returned headers from a part or from the text.
Result<FailureReport> ReadNonStandard(const Parts& parts, FailureReport report) {
  report.format = FailureFormat::kNonStandard;
  std::optional<std::string> block;
  for (GMimeObject* text_part : parts.texts) {
    std::string text = PartBody(text_part, report.warnings);
    if (!block) block = FindHeaderBlock(text);
    std::string_view rest = text;
    while (!rest.empty()) {
      size_t end = rest.find('\n');
      std::string line = Trim(rest.substr(0, end));
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      size_t colon = line.find(':');
      if (colon == std::string::npos || colon == 0) continue;
      std::string name = Trim(line.substr(0, colon));
      std::replace(name.begin(), name.end(), ' ', '-');
      const std::string key = Lower(name);
      if (key == "source-ip" || key == "arrival-date" || key == "reported-domain" ||
          key == "auth-failure" || key == "original-mail-from" || key == "original-rcpt-to" ||
          key == "authentication-results" || key == "delivery-result" ||
          key == "identity-alignment") {
        ReadField(name, Trim(line.substr(colon + 1)), report);
      }
    }
  }
  if (parts.returned != nullptr) {
    ReadReturned(PartBody(parts.returned, report.warnings), MimeType(parts.returned),
                 MimeType(parts.returned) == "message/rfc822", report);
  } else if (block) {
    ReadReturned(*block, "text/plain", false, report);
  } else {
    return MakeError(ErrorCode::kMissingElement,
                     "failure report without a feedback-report part or a returned message");
  }
  report.warnings.emplace_back("not an ARF report (RFC 5965): stored with what could be read");
  return report;
}

bool IsFeedbackReport(GMimeObject* body) {
  GMimeContentType* type = g_mime_object_get_content_type(body);
  if (type == nullptr || !g_mime_content_type_is_type(type, "multipart", "report")) return false;
  const char* report_type = g_mime_content_type_get_parameter(type, "report-type");
  return report_type != nullptr && g_ascii_strcasecmp(report_type, "feedback-report") == 0;
}

bool SubjectNamesFailureReport(GMimeMessage* message) {
  auto subject = Header(GMIME_OBJECT(message), "Subject");
  if (!subject) return false;
  std::string text = Lower(*subject);
  return (text.find("dmarc") != std::string::npos || text.find("forensic") != std::string::npos) &&
         (text.find("failure") != std::string::npos || text.find("forensic") != std::string::npos);
}

}  // namespace

std::string FailureReport::Domain() const {
  if (!reported_domain.empty()) return reported_domain.front();
  if (!from) return "";
  const size_t at = from->rfind('@');
  if (at == std::string::npos) return "";
  std::string domain = from->substr(at + 1);
  const size_t end = domain.find_first_of("> \t\"");
  return Lower(domain.substr(0, end));
}

// The returned message is kept, and written back by WriteFailureReport as
// the message/rfc822 part of a multipart/report: there it must still pass
// the caps that ParseFailureReport applies, one level deeper and three
// parts on. Inside a garbled email a part can hide multiparts that it holds
// once it stands on its own (found by fuzz_arf), so it is measured alone.
Result<void> CheckReturnedShape(const FailureReport& report) {
  if (!report.returned_part_type) return {};
  std::string returned = report.headers;
  if (!returned.empty() && returned.back() != '\n') returned += "\r\n";
  returned += "\r\n";
  if (report.body) returned += *report.body;
  Limits limits;
  limits.max_mime_depth -= 1;
  limits.max_mime_parts -= 4;
  auto shape = ScanMimeShape(returned, limits);
  if (!shape) {
    return MakeError(shape.error().code, "the returned message: " + shape.error().message);
  }
  // And the whole report as WriteFailureReport writes it: GMime's own
  // reading of the returned message, written out again, can show multiparts
  // that the bytes as received hid (found by fuzz_arf).
  const std::string written = WriteFailureReport(report, report.envelope_headers);
  if (auto whole = ScanMimeShape(written, Limits()); !whole) {
    return MakeError(whole.error().code,
                     "the returned message, written back: " + whole.error().message);
  }
  return {};
}

// The report as read, before CheckReturnedShape.
Result<FailureReport> ReadFailureReport(std::string_view email) {
  EnsureGmime();
  // GMime would build the whole tree of a hostile email first (see
  // mime_walker.hpp); the default caps apply before it does.
  if (auto shape = ScanMimeShape(email, Limits()); !shape) return tl::unexpected(shape.error());
  GPtr<GMimeMessage> message = ParseMessage(email);
  if (!message) return MakeError(ErrorCode::kBadMime, "email cannot be parsed as MIME");
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  if (body == nullptr) return MakeError(ErrorCode::kBadMime, "email has no body");

  FailureReport report;
  ReadEnvelopeHeaders(message.get(), report);
  Parts parts;
  CollectParts(body, 0, parts);
  if (!IsFeedbackReport(body) || parts.feedback == nullptr) {
    return ReadNonStandard(parts, std::move(report));
  }

  for (const auto& [name, value] : HeaderFields(PartBody(parts.feedback, report.warnings))) {
    ReadField(name, value, report);
  }
  // RFC 5965 section 3.1 requires Feedback-Type; a report that names an
  // authentication failure all the same is read as one.
  if (report.feedback_type.empty()) {
    if (report.auth_failure.empty()) {
      return MakeError(ErrorCode::kMissingElement, "the feedback report has no Feedback-Type");
    }
    report.feedback_type = "auth-failure";
    report.warnings.emplace_back("Feedback-Type missing; read as auth-failure");
  }
  if (report.feedback_type != "auth-failure") {
    return MakeError(ErrorCode::kNotAReport,
                     "not a DMARC failure report (feedback type " + report.feedback_type + ")");
  }

  // RFC 5965 section 2: the third part is the returned message or its
  // headers; some reporters send it as a plain text part instead.
  if (parts.returned != nullptr) {
    const std::string type = MimeType(parts.returned);
    ReadReturned(PartBody(parts.returned, report.warnings), type, type == "message/rfc822", report);
  } else if (parts.texts.size() >= 2) {
    std::string text = PartBody(parts.texts.back(), report.warnings);
    if (auto block = FindHeaderBlock(text)) ReadReturned(*block, "text/plain", true, report);
  }
  return report;
}

// Whichever way it was read, ARF or not, the report must be one that
// WriteFailureReport can write so that it reads again.
Result<FailureReport> ParseFailureReport(std::string_view email) {
  auto report = ReadFailureReport(email);
  if (!report) return report;
  if (auto kept = CheckReturnedShape(*report); !kept) return tl::unexpected(kept.error());
  return report;
}

bool LooksLikeNonStandardFailureReport(std::string_view email) {
  EnsureGmime();
  if (!ScanMimeShape(email, Limits())) return false;
  GPtr<GMimeMessage> message = ParseMessage(email);
  if (!message || !SubjectNamesFailureReport(message.get())) return false;
  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  if (body == nullptr) return false;
  Parts parts;
  CollectParts(body, 0, parts);
  if (parts.returned != nullptr) return true;
  std::vector<std::string> warnings;
  return std::any_of(parts.texts.begin(), parts.texts.end(), [&](GMimeObject* part) {
    return FindHeaderBlock(PartBody(part, warnings)).has_value();
  });
}

namespace {

GMimePart* TextLeaf(const char* type, const char* subtype, const std::string& text) {
  GMimePart* part = g_mime_part_new_with_type(type, subtype);
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(text.data(), text.size()));
  GPtr<GMimeDataWrapper> content(
      g_mime_data_wrapper_new_with_stream(stream.get(), GMIME_CONTENT_ENCODING_DEFAULT));
  g_mime_part_set_content(part, content.get());
  g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_8BIT);
  return part;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

}  // namespace

std::string WriteFailureReport(const FailureReport& report,
                               const std::vector<std::string>& envelope_headers) {
  EnsureGmime();
  GPtr<GMimeMessage> message(g_mime_message_new(FALSE));
  for (const std::string& line : envelope_headers) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    g_mime_object_append_header(GMIME_OBJECT(message.get()), line.substr(0, colon).c_str(),
                                Trim(line.substr(colon + 1)).c_str(), "utf-8");
  }

  const bool arf = report.format == FailureFormat::kArf;
  GPtr<GMimeMultipart> top(g_mime_multipart_new_with_subtype(arf ? "report" : "mixed"));
  if (arf) {
    g_mime_object_set_content_type_parameter(GMIME_OBJECT(top.get()), "report-type",
                                             "feedback-report");
  }
  const std::string note =
      "This failure report was kept as the privacy settings allow; the report as received was "
      "not stored.\n";
  GPtr<GMimePart> human(TextLeaf("text", "plain", arf ? note : note + JoinLines(report.fields)));
  g_mime_multipart_add(top.get(), GMIME_OBJECT(human.get()));
  if (arf) {
    GPtr<GMimePart> fields(TextLeaf("message", "feedback-report", JoinLines(report.fields)));
    g_mime_multipart_add(top.get(), GMIME_OBJECT(fields.get()));
  }

  if (report.returned_part_type && report.body) {
    const std::string text = report.headers + "\n" + *report.body;
    GPtr<GMimeMessage> returned = ParseMessage(text);
    if (returned) {
      GPtr<GMimeMessagePart> part(g_mime_message_part_new_with_message("rfc822", returned.get()));
      g_mime_multipart_add(top.get(), GMIME_OBJECT(part.get()));
    } else {
      // GMime finds no header in what some reporters return ("REDACTED"):
      // kept as written, still message/rfc822, so that it reads back the
      // same instead of being dropped (issue #6, found by fuzzing).
      GPtr<GMimePart> part(TextLeaf("message", "rfc822", text));
      g_mime_multipart_add(top.get(), GMIME_OBJECT(part.get()));
    }
  } else if (report.returned_part_type) {
    GPtr<GMimePart> headers(TextLeaf("text", "rfc822-headers", report.headers));
    g_mime_multipart_add(top.get(), GMIME_OBJECT(headers.get()));
  }
  // GMime would draw a random boundary, so the same report written twice
  // would come out as different bytes, and its archive copy, kept once per
  // SHA-256, would be stored again each time the same email arrived. A
  // fixed one, numbered past any that the contents hold, keeps it once.
  const std::string contents = JoinLines(envelope_headers) + JoinLines(report.fields) +
                               report.headers + report.body.value_or("");
  std::string boundary = "=_dmarcd_0";
  for (size_t n = 1; contents.find(boundary) != std::string::npos; ++n) {
    boundary = "=_dmarcd_" + std::to_string(n);
  }
  g_mime_multipart_set_boundary(top.get(), boundary.c_str());
  g_mime_message_set_mime_part(message.get(), GMIME_OBJECT(top.get()));

  // Through a stream, not g_mime_object_to_string: a C string would end at
  // the first NUL byte a reporter left in a field (found by fuzz_arf).
  return ObjectBytes(GMIME_OBJECT(message.get()));
}

}  // namespace dmarcd::parser
