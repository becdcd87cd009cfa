#include "parser/utf8_sanitizer.hpp"

#include <gtest/gtest.h>

namespace dmarcd::parser {
namespace {

std::string Sanitize(std::string_view input, size_t chunk) {
  Utf8Sanitizer sanitizer;
  std::string out;
  for (size_t at = 0; at < input.size(); at += chunk) sanitizer.Feed(input.substr(at, chunk), out);
  sanitizer.Finish(out);
  return out;
}

TEST(Utf8SanitizerTest, KeepsValidText) {
  std::string text = "a \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\xA7 z";
  for (size_t chunk : {1, 2, 3, 100}) EXPECT_EQ(Sanitize(text, chunk), text);
}

TEST(Utf8SanitizerTest, ReplacesEachBadSequenceWhateverTheChunks) {
  // Lone Latin-1 byte, truncated 3-byte sequence, overlong '/', surrogate,
  // and a cut-off lead byte at the very end.
  std::string text = "S\xF1o \xE2\x82x \xC0\xAF \xED\xA0\x80 \xF0\x9F";
  std::string want =
      "S\xEF\xBF\xBDo \xEF\xBF\xBDx \xEF\xBF\xBD\xEF\xBF\xBD "
      "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD";
  for (size_t chunk : {1, 2, 5, 100}) EXPECT_EQ(Sanitize(text, chunk), want) << chunk;
}

TEST(Utf8SanitizerTest, CountsReplacements) {
  Utf8Sanitizer sanitizer;
  std::string out;
  sanitizer.Feed("\xFF\xFE ok", out);
  sanitizer.Finish(out);
  EXPECT_EQ(sanitizer.Replacements(), 2U);
}

}  // namespace
}  // namespace dmarcd::parser
