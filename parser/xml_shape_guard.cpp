#include "parser/xml_shape_guard.hpp"

namespace dmarcd::parser {

namespace {

// XML 1.0 section 2.5 and 2.7: "<!--" opens a comment, "<![CDATA[" a CDATA
// section; any other "<!" is a declaration (a DOCTYPE, which the parser
// refuses anyway).
constexpr std::string_view kCommentOpen = "--";
constexpr std::string_view kCDataOpen = "[CDATA[";

size_t FindOrEnd(std::string_view chunk, char c, size_t from) {
  size_t at = chunk.find(c, from);
  return at == std::string_view::npos ? chunk.size() : at;
}

}  // namespace

Result<void> XmlShapeGuard::Feed(std::string_view chunk) {
  size_t at = 0;
  while (at < chunk.size() && !failed_) at = Step(chunk, at);
  if (failed_) {
    return MakeError(
        ErrorCode::kTooManyEntries,
        "an XML element has more than " + std::to_string(max_attributes_) + " attributes");
  }
  return {};
}

size_t XmlShapeGuard::Step(std::string_view chunk, size_t at) {
  switch (state_) {
    case State::kText: {
      size_t open = FindOrEnd(chunk, '<', at);
      if (open < chunk.size()) state_ = State::kOpen;
      return open + 1;
    }
    case State::kOpen:
      if (chunk[at] == '!') {
        state_ = State::kBang;
        bang_.clear();
        return at + 1;
      }
      if (chunk[at] == '?') {
        state_ = State::kPi;
        run_ = 0;
        return at + 1;
      }
      state_ = State::kTag;
      attributes_ = 0;
      return at;
    case State::kBang:
      bang_ += chunk[at];
      if (bang_ == kCommentOpen) {
        state_ = State::kComment;
        run_ = 0;
      } else if (bang_ == kCDataOpen) {
        state_ = State::kCData;
        run_ = 0;
      } else if (!kCommentOpen.starts_with(bang_) && !kCDataOpen.starts_with(bang_)) {
        state_ = State::kDeclaration;
      }
      return at + 1;
    case State::kTag:
      for (; at < chunk.size(); ++at) {
        const char c = chunk[at];
        if (c == '>') {
          state_ = State::kText;
          return at + 1;
        }
        if (c == '"' || c == '\'') {
          state_ = State::kQuoted;
          quote_ = c;
          return at + 1;
        }
        if (c == '=' && ++attributes_ > max_attributes_) {
          failed_ = true;
          return at + 1;
        }
      }
      return at;
    case State::kQuoted: {
      size_t close = FindOrEnd(chunk, quote_, at);
      if (close < chunk.size()) state_ = State::kTag;
      return close + 1;
    }
    case State::kComment:
    case State::kCData:
    case State::kPi: {
      // "-->", "]]>" and "?>": the closing characters in a row, then '>'.
      const char closing = state_ == State::kComment ? '-' : state_ == State::kCData ? ']' : '?';
      const int needed = state_ == State::kPi ? 1 : 2;
      for (; at < chunk.size(); ++at) {
        const char c = chunk[at];
        if (c == '>' && run_ >= needed) {
          state_ = State::kText;
          return at + 1;
        }
        run_ = c == closing ? run_ + 1 : 0;
      }
      return at;
    }
    case State::kDeclaration: {
      size_t close = FindOrEnd(chunk, '>', at);
      if (close < chunk.size()) state_ = State::kText;
      return close + 1;
    }
  }
  return chunk.size();
}

}  // namespace dmarcd::parser
