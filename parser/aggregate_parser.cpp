#include "parser/aggregate_parser.hpp"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <optional>

#include "parser/report_assembler.hpp"
#include "parser/utf8_sanitizer.hpp"
#include "parser/xml_shape_guard.hpp"

namespace dmarcd::parser {

namespace {

// How far to look for the end of the XML declaration before giving up on it.
constexpr size_t kMaxHeadBytes = 1024;
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
// Some reporters (seen from a corporate MTA) wrap the whole <feedback> in an
// <xs:schema> element of this namespace; it is looked through. A stray
// xs:schema start tag inside <feedback> is not: that document is malformed.
constexpr std::string_view kXmlSchemaNs = "http://www.w3.org/2001/XMLSchema";

std::string_view View(const xmlChar* text) {
  return text == nullptr ? std::string_view() : reinterpret_cast<const char*>(text);
}

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The encoding named by an XML declaration (XML 1.0 section 4.3.3), lower
// case, or "" when the declaration names none.
std::string DeclaredEncoding(std::string_view declaration) {
  auto at = declaration.find("encoding");
  if (at == std::string_view::npos) return "";
  auto quote = declaration.find_first_of("\"'", at);
  if (quote == std::string_view::npos) return "";
  auto close = declaration.find(declaration[quote], quote + 1);
  if (close == std::string_view::npos) return "";

  std::string name(declaration.substr(quote + 1, close - quote - 1));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

}  // namespace

class AggregateParser::Impl {
 public:
  Impl(AggregateSink& sink, const Limits& limits) : limits_(limits), assembler_(sink, limits) {
    static std::once_flag init;
    std::call_once(init, [] { xmlInitParser(); });

    // Only the callbacks below: no tree is built, and with no entity
    // resolver and internalSubset refusing any DOCTYPE, no entity can be
    // declared, expanded or fetched (XXE, "billion laughs").
    sax_.initialized = XML_SAX2_MAGIC;
    sax_.startElementNs = &Impl::StartElement;
    sax_.endElementNs = &Impl::EndElement;
    sax_.characters = &Impl::Characters;
    sax_.cdataBlock = &Impl::Characters;
    sax_.internalSubset = &Impl::Subset;
    sax_.externalSubset = &Impl::Subset;
    sax_.entityDecl = &Impl::EntityDecl;
    sax_.serror = &Impl::StructuredError;
  }

  ~Impl() {
    if (ctxt_ != nullptr) xmlFreeParserCtxt(ctxt_);
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Result<void> Feed(std::string_view chunk) {
    if (error_) return tl::unexpected(*error_);
    if (finished_ || complete_ || assembler_.Stopped()) return {};

    if (!decided_) {
      head_.append(chunk);
      if (!Decide(false)) return Status();
      std::string head = std::move(head_);
      head_.clear();
      return Push(head, false);
    }
    return Push(chunk, false);
  }

  Result<void> Finish() {
    if (error_) return tl::unexpected(*error_);
    if (finished_ || assembler_.Stopped()) return {};
    finished_ = true;

    if (!decided_) {
      if (!Decide(true)) return Status();
      std::string head = std::move(head_);
      head_.clear();
      if (!Push(head, false)) return Status();
    }
    if (!complete_ && !Push({}, true)) return Status();
    if (assembler_.Stopped()) return {};

    if (!root_seen_) {
      return Fail(ErrorCode::kNotAReport, "no <feedback> element: not a DMARC aggregate report");
    }
    if (sanitizer_.Replacements() > 0 && !utf8_warned_) {
      assembler_.Warn("invalid UTF-8 in text content, recovered (" +
                      std::to_string(sanitizer_.Replacements()) + " sequences replaced)");
    }
    auto finished = assembler_.Finish();
    if (!finished) error_ = finished.error();
    return Status();
  }

  bool Stopped() const { return assembler_.Stopped(); }

 private:
  Result<void> Status() const {
    if (error_) return tl::unexpected(*error_);
    return {};
  }

  tl::unexpected<Error> Fail(ErrorCode code, std::string message) {
    if (!error_) error_ = Error(code, std::move(message));
    if (ctxt_ != nullptr) xmlStopParser(ctxt_);
    return tl::unexpected(*error_);
  }

  // Looks at the start of the document before libxml2 does: leading white
  // space and a UTF-8 byte order mark are dropped (some reporters write
  // them, and XML 1.0 section 2.8 would otherwise reject the declaration),
  // anything not starting with '<' is not XML, and the declared encoding
  // decides whether the bytes go through the UTF-8 repair.
  bool Decide(bool at_end) {
    if (!bom_checked_ && (head_.size() >= kUtf8Bom.size() || at_end)) {
      bom_checked_ = true;
      if (head_.starts_with(kUtf8Bom)) head_.erase(0, kUtf8Bom.size());
    }
    if (!bom_checked_) return false;

    size_t start = 0;
    while (start < head_.size() && IsXmlSpace(head_[start])) ++start;
    head_.erase(0, start);
    if (head_.empty()) {
      if (at_end) Fail(ErrorCode::kNotXml, "not XML: the document is empty");
      return false;
    }
    if (head_[0] != '<') {
      Fail(ErrorCode::kNotXml, "not XML: the document does not begin with '<'");
      return false;
    }

    constexpr std::string_view kDeclaration = "<?xml";
    if (head_.size() < kDeclaration.size() && kDeclaration.starts_with(head_) && !at_end) {
      return false;
    }
    if (head_.starts_with(kDeclaration)) {
      auto close = head_.find("?>");
      if (close == std::string::npos && head_.size() < kMaxHeadBytes && !at_end) return false;
      // XML 1.0 section 4.3.3: no declared encoding means UTF-8. Any other
      // declared encoding (windows-1252, iso-8859-1, ...) is left to
      // libxml2's own transcoding.
      std::string encoding = DeclaredEncoding(std::string_view(head_).substr(0, close));
      sanitize_ = encoding.empty() || encoding == "utf-8" || encoding == "utf8";
    }
    decided_ = true;
    return true;
  }

  Result<void> Push(std::string_view chunk, bool terminate) {
    // libxml2 2.9 takes time quadratic in the attributes of one tag and has
    // no cap for them: counted before it sees the bytes (issue #6).
    if (auto shape = shape_guard_.Feed(chunk); !shape) {
      return Fail(shape.error().code, shape.error().message);
    }
    std::string_view data = chunk;
    if (sanitize_) {
      buffer_.clear();
      sanitizer_.Feed(chunk, buffer_);
      if (terminate) sanitizer_.Finish(buffer_);
      data = buffer_;
    }

    if (ctxt_ == nullptr) {
      // libxml2 detects the encoding from the first four bytes given here.
      auto first = std::min<size_t>(data.size(), 4);
      ctxt_ = xmlCreatePushParserCtxt(&sax_, this, data.data(), static_cast<int>(first), nullptr);
      if (ctxt_ == nullptr) return Fail(ErrorCode::kInternal, "cannot create the XML parser");
      xmlCtxtUseOptions(ctxt_, XML_PARSE_NONET | XML_PARSE_NOWARNING);
      data.remove_prefix(first);
    }

    int rc = xmlParseChunk(ctxt_, data.data(), static_cast<int>(data.size()), terminate ? 1 : 0);
    if (error_) return tl::unexpected(*error_);
    if (rc != 0 && !assembler_.Stopped() && !complete_) {
      return Fail(XmlErrorCode(), XmlErrorMessage());
    }
    if (assembler_.Stopped()) xmlStopParser(ctxt_);
    return {};
  }

  ErrorCode XmlErrorCode() const {
    const xmlError* error = xmlCtxtGetLastError(ctxt_);
    if (error != nullptr &&
        (error->code == XML_ERR_DOCUMENT_EMPTY || error->code == XML_ERR_DOCUMENT_START)) {
      return ErrorCode::kNotXml;
    }
    return ErrorCode::kMalformedXml;
  }

  std::string XmlErrorMessage() const {
    const xmlError* error = xmlCtxtGetLastError(ctxt_);
    if (error == nullptr) return "XML not well-formed";

    std::string text = error->message != nullptr ? error->message : "unknown error";
    while (!text.empty() && IsXmlSpace(text.back())) text.pop_back();
    std::string prefix =
        XmlErrorCode() == ErrorCode::kNotXml ? "not XML: " : "XML not well-formed: ";
    return prefix + "line " + std::to_string(error->line) + ", column " +
           std::to_string(error->int2) + ": " + text;
  }

  static Impl& Self(void* ctx) { return *static_cast<Impl*>(ctx); }

  static void StartElement(void* ctx, const xmlChar* localname, const xmlChar* /*prefix*/,
                           const xmlChar* uri, int /*nb_namespaces*/,
                           const xmlChar** /*namespaces*/, int /*nb_attributes*/,
                           int /*nb_defaulted*/, const xmlChar** /*attributes*/) {
    Impl& self = Self(ctx);
    if (self.error_ || self.assembler_.Stopped()) return;

    std::string name(View(localname));
    if (self.depth_ >= self.limits_.max_xml_depth) {
      self.Fail(ErrorCode::kTooDeep, "XML element depth exceeds " +
                                         std::to_string(self.limits_.max_xml_depth) + " at <" +
                                         name + ">");
      return;
    }
    ++self.depth_;
    self.text_.clear();

    if (self.after_root_) return;
    if (!self.root_seen_ && self.depth_ == 1 && name == "schema" && View(uri) == kXmlSchemaNs) {
      self.wrapped_ = true;
      return;
    }
    if (!self.root_seen_) {
      self.root_seen_ = true;
      if (name != "feedback") {
        self.Fail(ErrorCode::kNotAReport,
                  "root element <" + name + "> is not <feedback>: not a DMARC aggregate report");
        return;
      }
      if (uri != nullptr) self.assembler_.SetNamespace(std::string(View(uri)));
      self.assembler_.OnStart(self.path_);
      return;
    }
    self.path_.push_back(std::move(name));
    self.assembler_.OnStart(self.path_);
  }

  static void EndElement(void* ctx, const xmlChar* localname, const xmlChar* /*prefix*/,
                         const xmlChar* /*uri*/) {
    Impl& self = Self(ctx);
    if (self.error_ || self.assembler_.Stopped()) return;
    if (self.after_root_ || (self.wrapped_ && !self.root_seen_)) {
      --self.depth_;
      return;
    }
    if (self.path_.empty()) self.after_root_ = true;
    // The narrow recovery for the <xs:schema> wrapper, which its writers
    // never close: the report is complete at </feedback>, and what follows
    // (the missing end tag) is not read.
    if (self.after_root_ && self.wrapped_) {
      self.complete_ = true;
      xmlStopParser(self.ctxt_);
    }

    if (self.sanitizer_.Replacements() > 0 &&
        self.text_.find("\xEF\xBF\xBD") != std::string::npos) {
      self.utf8_warned_ = true;
      self.assembler_.Warn("invalid UTF-8 in text content (" + std::string(View(localname)) +
                           "), recovered");
    }
    auto done = self.assembler_.OnEnd(self.path_, self.text_);
    if (!done) {
      self.Fail(done.error().code, done.error().message);
      return;
    }
    --self.depth_;
    self.text_.clear();
    if (!self.path_.empty()) self.path_.pop_back();
  }

  static void Characters(void* ctx, const xmlChar* text, int length) {
    Impl& self = Self(ctx);
    if (self.error_ || self.assembler_.Stopped()) return;

    // Leading white space is trimmed from every value anyway; not keeping it
    // means white space between elements never counts against the cap.
    std::string_view chunk(reinterpret_cast<const char*>(text), static_cast<size_t>(length));
    if (self.text_.empty()) {
      while (!chunk.empty() && IsXmlSpace(chunk.front())) chunk.remove_prefix(1);
      if (chunk.empty()) return;
    }
    if (self.text_.size() + chunk.size() > self.limits_.max_text_bytes) {
      std::string element = self.path_.empty() ? "feedback" : self.path_.back();
      self.Fail(ErrorCode::kTooLarge, "text of <" + element + "> longer than " +
                                          std::to_string(self.limits_.max_text_bytes) + " bytes");
      return;
    }
    self.text_.append(chunk);
  }

  static void Subset(void* ctx, const xmlChar* name, const xmlChar* /*external_id*/,
                     const xmlChar* /*system_id*/) {
    Self(ctx).Fail(ErrorCode::kDoctypeRefused,
                   "DOCTYPE <!DOCTYPE " + std::string(View(name)) +
                       "> refused: a DTD has no place in a DMARC report and its entities are "
                       "not expanded");
  }

  static void EntityDecl(void* ctx, const xmlChar* name, int /*type*/, const xmlChar* /*public_id*/,
                         const xmlChar* /*system_id*/, xmlChar* /*content*/) {
    Self(ctx).Fail(ErrorCode::kDoctypeRefused,
                   "entity declaration '" + std::string(View(name)) + "' refused (DTD)");
  }

  // libxml2 reports parse errors here instead of printing them; the code
  // and position are read from the context once xmlParseChunk returns.
  static void StructuredError(void* /*ctx*/, xmlErrorPtr /*error*/) {}

  const Limits& limits_;
  XmlShapeGuard shape_guard_{limits_.max_xml_attributes};
  ReportAssembler assembler_;
  xmlSAXHandler sax_{};
  xmlParserCtxtPtr ctxt_ = nullptr;
  std::optional<Error> error_;

  std::string head_;
  bool bom_checked_ = false;
  bool decided_ = false;
  bool sanitize_ = true;
  bool finished_ = false;
  Utf8Sanitizer sanitizer_;
  std::string buffer_;
  bool utf8_warned_ = false;

  std::vector<std::string> path_;  // below <feedback>
  std::string text_;
  int depth_ = 0;
  bool root_seen_ = false;
  bool wrapped_ = false;     // <feedback> sits inside an <xs:schema> element
  bool after_root_ = false;  // </feedback> was read
  bool complete_ = false;    // read up to </feedback> inside a wrapper
};

AggregateParser::AggregateParser(AggregateSink& sink, const Limits& limits)
    : impl_(std::make_unique<Impl>(sink, limits)) {}

AggregateParser::~AggregateParser() = default;

Result<void> AggregateParser::Feed(std::string_view chunk) { return impl_->Feed(chunk); }

Result<void> AggregateParser::Finish() { return impl_->Finish(); }

bool AggregateParser::Stopped() const { return impl_->Stopped(); }

}  // namespace dmarcd::parser
