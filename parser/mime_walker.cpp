#include "parser/mime_walker.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

namespace dmarcd::parser {

namespace {

// How much of a text part to search for signs of a report.
constexpr size_t kTextProbeBytes = 4096;
// Slices a base64 part is decoded in.
constexpr size_t kBase64SliceBytes = size_t{64} << 10;

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

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The payload kinds dmarcd reads, by their first bytes (see DocumentStream).
bool LooksLikePayload(std::string_view bytes, bool* is_xml) {
  *is_xml = false;
  if (bytes.starts_with("\x1f\x8b")) return true;
  if (bytes.starts_with(std::string_view("PK\x03\x04", 4)) ||
      bytes.starts_with(std::string_view("PK\x05\x06", 4))) {
    return true;
  }
  if (bytes.starts_with("\xEF\xBB\xBF")) bytes.remove_prefix(3);
  while (!bytes.empty() && IsXmlSpace(bytes.front())) bytes.remove_prefix(1);
  *is_xml = !bytes.empty() && bytes.front() == '<';
  return *is_xml;
}

std::string StreamBytes(GMimeStream* stream) {
  GByteArray* array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
  return std::string(reinterpret_cast<const char*>(array->data), array->len);
}

bool IsBase64Letter(char c) { return g_ascii_isalnum(c) || c == '+' || c == '/'; }

// DecodeBase64Lenient, read from GMime's stream in slices: neither the
// encoded text nor a copy of it is held whole, so an attachment costs its
// decoded size once (a 10 MB bomb in a 14 MB email would otherwise be held
// four times over). The padding rule is DecodeBase64Lenient's: restored at
// the end when no '=' came at all.
std::string DecodeBase64(GMimeDataWrapper* content) {
  GMimeStream* raw = g_mime_data_wrapper_get_stream(content);
  g_mime_stream_reset(raw);
  GMimeEncoding state;
  g_mime_encoding_init_decode(&state, GMIME_CONTENT_ENCODING_BASE64);

  std::string decoded;
  if (gint64 length = g_mime_stream_length(raw); length > 0) {
    decoded.reserve(static_cast<size_t>(length) / 4 * 3 + 3);
  }
  auto decode = [&](std::string_view slice) {
    const size_t at = decoded.size();
    decoded.resize(at + g_mime_encoding_outlen(&state, slice.size()));
    decoded.resize(at + g_mime_encoding_step(&state, slice.data(), slice.size(), &decoded[at]));
  };

  std::string buffer(kBase64SliceBytes, '\0');
  bool has_equals = false;
  uint64_t letters = 0;
  for (;;) {
    const ssize_t got = g_mime_stream_read(raw, buffer.data(), buffer.size());
    if (got <= 0) break;
    const std::string_view slice(buffer.data(), static_cast<size_t>(got));
    has_equals = has_equals || slice.find('=') != std::string_view::npos;
    letters += static_cast<uint64_t>(std::count_if(slice.begin(), slice.end(), IsBase64Letter));
    decode(slice);
  }
  if (!has_equals && letters % 4 == 2) decode("==");
  if (!has_equals && letters % 4 == 3) decode("=");
  g_mime_stream_reset(raw);
  return decoded;
}

class Walker {
 public:
  explicit Walker(const Limits& limits) : limits_(limits) {}

  Result<void> Visit(GMimeObject* object, int depth) {
    if (++parts_ > limits_.max_mime_parts) {
      return MakeError(
          ErrorCode::kTooManyEntries,
          "email has more than " + std::to_string(limits_.max_mime_parts) + " MIME parts");
    }

    if (GMIME_IS_MULTIPART(object)) {
      auto* multipart = GMIME_MULTIPART(object);
      int count = g_mime_multipart_get_count(multipart);
      for (int i = 0; i < count; ++i) {
        auto visited = Visit(g_mime_multipart_get_part(multipart, i), depth);
        if (!visited) return visited;
      }
      return {};
    }
    if (GMIME_IS_MESSAGE_PART(object)) return VisitMessage(GMIME_MESSAGE_PART(object), depth);
    if (GMIME_IS_PART(object)) VisitPart(GMIME_PART(object), depth);
    return {};
  }

  MimeContents& Contents() { return contents_; }

 private:
  Result<void> VisitMessage(GMimeMessagePart* part, int depth) {
    GMimeMessage* message = g_mime_message_part_get_message(part);
    if (message == nullptr) return {};
    if (depth + 1 > limits_.max_nesting_depth) {
      contents_.skipped.emplace_back(ErrorCode::kTooDeep,
                                     "attached email nested deeper than " +
                                         std::to_string(limits_.max_nesting_depth) + " levels");
      return {};
    }
    GMimeObject* body = g_mime_message_get_mime_part(message);
    if (body == nullptr) return {};
    return Visit(body, depth + 1);
  }

  void VisitPart(GMimePart* part, int depth) {
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    if (content == nullptr) return;

    // GMime decodes by the part's Content-Transfer-Encoding even where the
    // Content-Type header is missing or misspelled (RFC 2045 section 6).
    std::string bytes;
    if (g_mime_data_wrapper_get_encoding(content) == GMIME_CONTENT_ENCODING_BASE64) {
      bytes = DecodeBase64(content);
    } else {
      GPtr<GMimeStream> stream(g_mime_stream_mem_new());
      if (g_mime_data_wrapper_write_to_stream(content, stream.get()) < 0) return;
      bytes = StreamBytes(stream.get());
    }

    bool is_xml = false;
    if (!LooksLikePayload(bytes, &is_xml)) return;
    const char* filename = g_mime_part_get_filename(part);
    if (is_xml && filename == nullptr && !LooksLikeReportText(GMIME_OBJECT(part), bytes)) return;

    std::string name = filename != nullptr ? filename : "part " + std::to_string(parts_);
    contents_.payloads.push_back(MimePayload{std::move(name), std::move(bytes), depth});
  }

  // An HTML or plain-text body starts with '<' too; without a file name it
  // is a report only when it says so.
  static bool LooksLikeReportText(GMimeObject* object, std::string_view bytes) {
    GMimeContentType* type = g_mime_object_get_content_type(object);
    bool text = type == nullptr || g_mime_content_type_is_type(type, "text", "plain") ||
                g_mime_content_type_is_type(type, "text", "html");
    if (!text) return true;
    std::string_view probe = bytes.substr(0, kTextProbeBytes);
    return probe.find("<feedback") != std::string_view::npos ||
           (probe.find("<?xml") != std::string_view::npos &&
            probe.find("<html") == std::string_view::npos &&
            probe.find("<HTML") == std::string_view::npos);
  }

  const Limits& limits_;
  int parts_ = 0;
  MimeContents contents_;
};

// RFC 6591 section 3 / RFC 9991: a failure report is a multipart/report
// whose report-type is feedback-report (the ARF of RFC 5965).
bool IsFailureReport(GMimeObject* body) {
  GMimeContentType* type = g_mime_object_get_content_type(body);
  if (type == nullptr || !g_mime_content_type_is_type(type, "multipart", "report")) return false;
  const char* report_type = g_mime_content_type_get_parameter(type, "report-type");
  return report_type != nullptr && g_ascii_strcasecmp(report_type, "feedback-report") == 0;
}

// One line of the raw email: its text without the line ending (LF or CRLF,
// RFC 5322 section 2.1 and what mail stores really hold).
struct RawLine {
  std::string_view text;
  size_t bytes = 0;  // with the line ending
};

class RawLines {
 public:
  explicit RawLines(std::string_view text) : rest_(text) {}

  bool Next(RawLine* line) {
    if (rest_.empty()) return false;
    size_t end = rest_.find('\n');
    size_t bytes = end == std::string_view::npos ? rest_.size() : end + 1;
    std::string_view text = rest_.substr(0, end == std::string_view::npos ? rest_.size() : end);
    if (text.ends_with('\r')) text.remove_suffix(1);
    *line = RawLine{text, bytes};
    rest_.remove_prefix(bytes);
    return true;
  }

 private:
  std::string_view rest_;
};

char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (AsciiLower(text[i]) != prefix[i]) return false;
  }
  return true;
}

bool IsLinearSpace(char c) { return c == ' ' || c == '\t'; }

// The value of a boundary parameter on the line (RFC 2045 section 5.1:
// quoted or a token), or "" when the line has none. Every '=' is looked at
// once, so a line of a million of them costs a million steps.
std::string_view BoundaryParameter(std::string_view line) {
  constexpr std::string_view kName = "boundary";
  for (size_t eq = line.find('='); eq != std::string_view::npos; eq = line.find('=', eq + 1)) {
    size_t name_end = eq;
    while (name_end > 0 && IsLinearSpace(line[name_end - 1])) --name_end;
    if (name_end < kName.size() || !StartsWithNoCase(line.substr(name_end - kName.size()), kName)) {
      continue;
    }
    std::string_view value = line.substr(eq + 1);
    while (!value.empty() && IsLinearSpace(value.front())) value.remove_prefix(1);
    if (value.starts_with('"')) {
      value.remove_prefix(1);
      return value.substr(0, value.find('"'));
    }
    return value.substr(0, value.find_first_of("; \t"));
  }
  return {};
}

// A part whose body is an email of its own (RFC 2046 section 5.2): GMime
// parses it, and its parts, as a nested message.
bool DeclaresAttachedMessage(std::string_view line) {
  constexpr std::string_view kHeader = "content-type:";
  if (!StartsWithNoCase(line, kHeader)) return false;
  std::string_view value = line.substr(kHeader.size());
  while (!value.empty() && IsLinearSpace(value.front())) value.remove_prefix(1);
  return StartsWithNoCase(value, "message/") && !StartsWithNoCase(value, "message/partial") &&
         !StartsWithNoCase(value, "message/external-body") &&
         !StartsWithNoCase(value, "message/feedback-report") &&
         !StartsWithNoCase(value, "message/delivery-status") &&
         !StartsWithNoCase(value, "message/disposition-notification");
}

std::string TooManyParts(const Limits& limits) {
  return "email has more than " + std::to_string(limits.max_mime_parts) + " MIME parts";
}

// The multiparts open at a point of the email, outermost first, by their
// boundaries. RFC 2046 section 5.1.1 nests them: a delimiter of an outer
// boundary ends every multipart inside it, and the first delimiter of a
// boundary not yet open opens a multipart inside the innermost one. A part
// whose own header declared the boundary opens one even when an outer
// multipart uses the same boundary: GMime matches the innermost first.
class BoundaryStack {
 public:
  // Returns the depth after the delimiter line.
  int Delimiter(std::string_view boundary, bool close, bool declared_by_last_header) {
    auto at = std::find(open_.rbegin(), open_.rend(), boundary);
    const bool opens = !close && (declared_by_last_header || at == open_.rend());
    if (opens) {
      open_.push_back(boundary);
    } else if (at != open_.rend()) {
      open_.erase(at.base() - (close ? 1 : 0), open_.end());
    }
    return static_cast<int>(open_.size());
  }

 private:
  std::vector<std::string_view> open_;
};

}  // namespace

Result<MimeShape> ScanMimeShape(std::string_view email, const Limits& limits) {
  MimeShape shape;

  // First pass: the boundaries declared anywhere, so that a delimiter line
  // is known for one however deep it sits.
  std::unordered_set<std::string_view> boundaries;
  RawLines declarations(email);
  for (RawLine line; declarations.Next(&line);) {
    std::string_view boundary = BoundaryParameter(line.text);
    if (!boundary.empty()) boundaries.insert(boundary);
  }

  // Second pass: delimiter lines give parts and nesting; header blocks run
  // from the start of the email, of each part and of each attached email
  // to the first empty line.
  BoundaryStack stack;
  std::string_view declared;  // by the last header block, until a delimiter
  bool in_header = true;
  bool message_follows = false;
  uint64_t header_bytes = 0;
  RawLines lines(email);
  for (RawLine line; lines.Next(&line);) {
    if (in_header) {
      header_bytes += line.bytes;
      shape.largest_header = std::max(shape.largest_header, header_bytes);
      if (header_bytes > limits.max_header_bytes) {
        return MakeError(ErrorCode::kTooLarge, "a header block of the email is larger than " +
                                                   std::to_string(limits.max_header_bytes) +
                                                   " bytes");
      }
      if (line.text.empty()) {
        in_header = message_follows;
        message_follows = false;
        header_bytes = 0;
        continue;
      }
      if (std::string_view boundary = BoundaryParameter(line.text); !boundary.empty()) {
        declared = boundary;
      }
      if (DeclaresAttachedMessage(line.text)) {
        message_follows = true;
        if (++shape.parts > limits.max_mime_parts) {
          return MakeError(ErrorCode::kTooManyEntries, TooManyParts(limits));
        }
      }
    }
    if (!line.text.starts_with("--")) continue;

    // RFC 2046 section 5.1.1: "--" boundary, "--" again for the last one,
    // then optional white space.
    std::string_view rest = line.text.substr(2);
    while (!rest.empty() && IsLinearSpace(rest.back())) rest.remove_suffix(1);
    bool close = false;
    if (!boundaries.contains(rest)) {
      if (!rest.ends_with("--") || !boundaries.contains(rest.substr(0, rest.size() - 2))) continue;
      rest.remove_suffix(2);
      close = true;
    }
    shape.depth = std::max(shape.depth, stack.Delimiter(rest, close, rest == declared));
    declared = {};
    if (shape.depth > limits.max_mime_depth) {
      return MakeError(ErrorCode::kTooDeep, "email has multiparts nested deeper than " +
                                                std::to_string(limits.max_mime_depth) + " levels");
    }
    if (close) continue;
    if (++shape.parts > limits.max_mime_parts) {
      return MakeError(ErrorCode::kTooManyEntries, TooManyParts(limits));
    }
    in_header = true;
    message_follows = false;
    header_bytes = 0;
  }
  return shape;
}

std::string DecodeBase64Lenient(std::string encoded, bool* padded) {
  if (padded != nullptr) *padded = false;
  if (encoded.find('=') == std::string::npos) {
    auto letters = std::count_if(encoded.begin(), encoded.end(), IsBase64Letter);
    if (letters % 4 == 2) encoded += "==";
    if (letters % 4 == 3) encoded += "=";
    if (padded != nullptr) *padded = letters % 4 == 2 || letters % 4 == 3;
  }

  GMimeEncoding state;
  g_mime_encoding_init_decode(&state, GMIME_CONTENT_ENCODING_BASE64);
  std::string decoded(g_mime_encoding_outlen(&state, encoded.size()), '\0');
  size_t length = g_mime_encoding_flush(&state, encoded.data(), encoded.size(), decoded.data());
  decoded.resize(length);
  return decoded;
}

Result<MimeContents> MimeWalker::Walk(std::string_view email, const Limits& limits) {
  EnsureGmime();

  // GMime builds the whole tree, recursing once per nested part, before a
  // single part could be counted: the shape is checked on the raw lines.
  auto shape = ScanMimeShape(email, limits);
  if (!shape) return tl::unexpected(shape.error());

  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(email.data(), email.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GPtr<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!message) return MakeError(ErrorCode::kBadMime, "email cannot be parsed as MIME");

  GMimeObject* body = g_mime_message_get_mime_part(message.get());
  if (body == nullptr) return MakeError(ErrorCode::kBadMime, "email has no body");

  Walker walker(limits);
  if (IsFailureReport(body)) {
    walker.Contents().failure_report = true;
    return std::move(walker.Contents());
  }
  auto visited = walker.Visit(body, 0);
  if (!visited) return tl::unexpected(visited.error());
  return std::move(walker.Contents());
}

}  // namespace dmarcd::parser
