#include "parser/document_stream.hpp"

#include <cstdio>

#include "parser/payload_walker.hpp"

namespace dmarcd::parser {

namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Up to 16 leading bytes, quoted, printable ASCII as is and the rest as \xNN,
// so a message never carries raw binary into logs or JSON.
std::string Printable(std::string_view bytes) {
  std::string out = "\"";
  for (unsigned char c : bytes.substr(0, 16)) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  return out + "\"";
}

}  // namespace

DocumentStream::DocumentStream(PayloadWalker& walker, DocumentReport& report, int depth)
    : walker_(walker), report_(report), depth_(depth) {}

Result<bool> DocumentStream::Sniff(bool at_end) {
  if (!bom_checked_ && (head_.size() >= kUtf8Bom.size() || at_end)) {
    bom_checked_ = true;
    if (head_.starts_with(kUtf8Bom)) {
      head_.erase(0, kUtf8Bom.size());
      skipped_space_ = true;
    }
  }
  if (!bom_checked_) return false;

  // Leading white space is dropped here rather than kept: a payload of
  // nothing but white space (a known bomb) must not pile up in memory while
  // the inflater's caps catch up with it.
  size_t start = 0;
  while (start < head_.size() && IsXmlSpace(head_[start])) ++start;
  if (start > 0) skipped_space_ = true;
  head_.erase(0, start);

  if (head_.empty()) {
    if (!at_end) return false;
    return MakeError(ErrorCode::kNotXml, "not XML: the payload is empty");
  }
  auto byte = [&](size_t i) { return static_cast<unsigned char>(head_[i]); };
  if (!skipped_space_ && byte(0) == 0x1f && head_.size() < 2 && !at_end) return false;
  if (!skipped_space_ && head_[0] == 'P' && head_.size() < 4 && !at_end) return false;
  return true;
}

Result<DocumentStream::Kind> DocumentStream::Classify() const {
  if (head_[0] == '<') return Kind::kXml;
  if (!skipped_space_ && head_.starts_with("\x1f\x8b")) return Kind::kGzip;
  if (!skipped_space_ && (head_.starts_with(std::string_view("PK\x03\x04", 4)) ||
                          head_.starts_with(std::string_view("PK\x05\x06", 4)))) {
    return Kind::kZip;
  }

  // Inside an archive the bytes are what the archive inflated to: saying
  // so, with the first bytes shown, tells "a gzip of junk" from "junk".
  const std::string what =
      depth_ > 0 ? "what " + report_.info.name + " inflates to" : report_.info.name;
  return MakeError(
      ErrorCode::kNotXml,
      "not XML: " + what + " is neither XML, gzip nor zip (starts " + Printable(head_) + ")");
}

Result<void> DocumentStream::Start() {
  auto kind = Classify();
  if (!kind) return tl::unexpected(kind.error());
  kind_ = *kind;
  const Limits& limits = walker_.GetLimits();
  if ((kind_ == Kind::kGzip || kind_ == Kind::kZip) && depth_ + 1 > limits.max_nesting_depth) {
    return MakeError(ErrorCode::kTooDeep, "archives nested deeper than " +
                                              std::to_string(limits.max_nesting_depth) +
                                              " levels in " + report_.info.name);
  }

  switch (kind_) {
    case Kind::kXml: {
      AggregateSink& sink = walker_.Handler().OnAggregateBegin(report_.info);
      report_.begun = true;
      parser_ = std::make_unique<AggregateParser>(sink, limits);
      break;
    }
    case Kind::kGzip:
      inner_ = std::make_unique<DocumentStream>(walker_, report_, depth_ + 1);
      inflater_ = std::make_unique<GzipInflater>(*inner_, limits, report_.info.name);
      break;
    case Kind::kZip:
    case Kind::kUnknown:
      break;
  }
  std::string head = std::move(head_);
  head_.clear();
  return Forward(head);
}

Result<void> DocumentStream::Forward(std::string_view chunk) {
  switch (kind_) {
    case Kind::kXml: {
      report_.info.inflated_bytes += chunk.size();
      if (auto counted = walker_.CountInflated(chunk.size()); !counted) return counted;
      return parser_->Feed(chunk);
    }
    case Kind::kGzip:
      return inflater_->Write(chunk);
    case Kind::kZip:
      if (zip_bytes_.size() + chunk.size() > walker_.GetLimits().max_envelope_bytes) {
        return MakeError(ErrorCode::kTooLarge,
                         "zip archive inside " + report_.info.name + " larger than " +
                             std::to_string(walker_.GetLimits().max_envelope_bytes) + " bytes");
      }
      zip_bytes_.append(chunk);
      return {};
    case Kind::kUnknown:
      break;
  }
  return MakeError(ErrorCode::kInternal, "document written before its kind was known");
}

Result<void> DocumentStream::Write(std::string_view chunk) {
  if (kind_ != Kind::kUnknown) return Forward(chunk);

  head_.append(chunk);
  auto ready = Sniff(false);
  if (!ready) return tl::unexpected(ready.error());
  if (!*ready) return {};
  return Start();
}

Result<void> DocumentStream::Finish() {
  if (kind_ == Kind::kUnknown) {
    auto ready = Sniff(true);
    if (!ready) return tl::unexpected(ready.error());
    auto started = Start();
    if (!started) return started;
  }

  switch (kind_) {
    case Kind::kXml:
      return parser_->Finish();
    case Kind::kGzip: {
      auto inflated = inflater_->Finish();
      if (!inflated) return inflated;
      return inner_->Finish();
    }
    case Kind::kZip:
      return walker_.WalkZip(report_.info.name, report_.info.part_bytes, zip_bytes_, depth_ + 1);
    case Kind::kUnknown:
      break;
  }
  return MakeError(ErrorCode::kInternal, "document finished before its kind was known");
}

bool DocumentStream::Stopped() const {
  if (parser_) return parser_->Stopped();
  if (inner_) return inner_->Stopped();
  return false;
}

}  // namespace dmarcd::parser
