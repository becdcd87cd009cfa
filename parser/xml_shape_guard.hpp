// A look at XML bytes before libxml2 parses them, for what libxml2 2.9
// (Debian 12) handles in time quadratic in the input and cannot be told to
// refuse: a start tag with very many attributes or namespace declarations
// (its duplicate check compares each with every other one, so 200,000
// attributes in 2 MB take minutes).
//
// The guard follows tags, quoted values, comments, CDATA sections,
// processing instructions and declarations just far enough to count the
// attributes of each tag ('=' outside quotes). It is not a parser: a
// malformed document is left for libxml2 to refuse. Chunks may split the
// input anywhere; the result does not depend on where.
//
// Errors: kTooManyEntries when one tag has more than the attributes
// allowed (limits.max_xml_attributes). Not thread-safe; one per document.
#pragma once

#include <string>
#include <string_view>

#include "parser/error.hpp"

namespace dmarcd::parser {

class XmlShapeGuard {
 public:
  explicit XmlShapeGuard(int max_attributes) : max_attributes_(max_attributes) {}

  // Looks at the next chunk; after the first error every call returns it.
  Result<void> Feed(std::string_view chunk);

 private:
  enum class State {
    kText,         // character data
    kOpen,         // after '<'
    kBang,         // after "<!", deciding what follows
    kTag,          // inside a start or end tag
    kQuoted,       // inside a quoted attribute value
    kComment,      // inside <!-- -->
    kCData,        // inside <![CDATA[ ]]>
    kPi,           // inside <? ?>
    kDeclaration,  // inside another <! >, up to the next '>'
  };

  // Consumes bytes of `chunk` from `at` in the current state; returns where
  // it stopped.
  size_t Step(std::string_view chunk, size_t at);

  int max_attributes_;
  State state_ = State::kText;
  char quote_ = 0;
  std::string bang_;  // bytes after "<!" while deciding, at most 7
  int run_ = 0;       // closing characters seen in a row ('-', ']' or '?')
  int attributes_ = 0;
  bool failed_ = false;
};

}  // namespace dmarcd::parser
