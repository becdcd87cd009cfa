// The hostile and faulty inputs of tests/data/parser/hostile: each one is
// refused with the reason named, or (the controls and the benign quirks)
// parsed; none crashes, hangs or runs away with memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <variant>

#include "tests/parser/collecting_handler.hpp"

namespace dmarcd::parser::testing {
namespace {

// Accepted: the number of records of the one report it holds.
struct Accepted {
  size_t records;
};

using Outcome = std::variant<Accepted, ErrorCode>;

const std::map<std::string, Outcome>& Expectations() {
  static const std::map<std::string, Outcome> expected = {
      {"arf_malformed.eml", ErrorCode::kNotAReport},  // a second Feedback-Type says abuse
      {"bad_dates_and_counts.xml", ErrorCode::kBadDateRange},
      {"billion_laughs.xml", ErrorCode::kDoctypeRefused},
      {"control_valid_aggregate.eml", Accepted{2}},
      {"control_valid_aggregate.xml", Accepted{2}},
      {"control_valid_aggregate.xml.gz", Accepted{2}},
      {"control_valid_aggregate.zip", Accepted{2}},
      {"control_valid_forensic_arf.eml", ErrorCode::kUnsupported},
      {"deep_nesting_10k.xml", ErrorCode::kTooDeep},
      {"gzip_bad_crc.xml.gz", ErrorCode::kBadArchive},
      {"gzip_bomb_xml_whitespace_1g.xml.gz", ErrorCode::kRatioExceeded},
      // Zero bytes are not XML: refused at the first inflated slice.
      {"gzip_bomb_zeros_1g.gz", ErrorCode::kNotXml},
      {"gzip_trailing_crlf.xml.gz", Accepted{2}},
      {"gzip_truncated.xml.gz", ErrorCode::kBadArchive},
      {"huge_text_field_50mb.xml.gz", ErrorCode::kTooLarge},
      {"invalid_utf8_fields.xml", Accepted{2}},
      {"mime_10000_parts.eml", ErrorCode::kTooManyEntries},
      {"mime_1mb_header_line.eml", Accepted{2}},
      {"mime_50k_headers.eml", Accepted{2}},
      {"mime_base64_garbage.eml", ErrorCode::kBadArchive},
      {"mime_bomb_attachment.eml", ErrorCode::kRatioExceeded},
      {"mime_deep_nesting_1000.eml", ErrorCode::kTooDeep},
      {"mime_folded_header_100k_lines.eml", Accepted{2}},
      {"nul_byte_in_xml.xml", ErrorCode::kMalformedXml},
      {"quadratic_blowup.xml", ErrorCode::kDoctypeRefused},
      {"sqli_fields.xml", Accepted{1}},
      {"xss_script_org_name.xml", Accepted{1}},
      {"xxe_external_dtd.xml", ErrorCode::kDoctypeRefused},
      {"xxe_local_file.xml", ErrorCode::kDoctypeRefused},
      {"xxe_network_url.xml", ErrorCode::kDoctypeRefused},
      {"zip_encrypted_entry.zip", ErrorCode::kBadArchive},
      {"zip_huge_declared_size.zip", ErrorCode::kTooLarge},
      {"zip_lying_entry_count.zip", ErrorCode::kBadArchive},
      {"zip_many_entries_5000.zip", ErrorCode::kTooManyEntries},
      {"zip_nested_10_levels.zip", ErrorCode::kTooDeep},
      {"zip_overlap_bomb_10g.zip", ErrorCode::kTooManyEntries},
      {"zip_truncated.zip", ErrorCode::kBadArchive},
  };
  return expected;
}

std::vector<std::string> HostileFiles() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(DataDir() / "parser/hostile")) {
    files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string PrintName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

class HostileTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HostileTest, RefusedOrParsedWithoutHarm) {
  const std::string& file = GetParam();
  auto expected = Expectations().find(file);
  ASSERT_NE(expected, Expectations().end()) << "no expectation for " << file;

  CollectingHandler handler;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(ParseFile(DataDir() / "parser/hostile" / file, handler));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  auto accepted = handler.Accepted();
  auto errors = handler.Errors();
  if (const auto* code = std::get_if<ErrorCode>(&expected->second)) {
    EXPECT_TRUE(accepted.empty());
    ASSERT_FALSE(errors.empty());
    EXPECT_EQ(ErrorCodeName(errors[0].code), ErrorCodeName(*code)) << errors[0].ToString();
    return;
  }

  size_t records = std::get<Accepted>(expected->second).records;
  EXPECT_TRUE(errors.empty()) << errors.front().ToString();
  ASSERT_EQ(accepted.size(), 1U);
  EXPECT_EQ(accepted[0]->records.size(), records);
}

INSTANTIATE_TEST_SUITE_P(AllFiles, HostileTest, ::testing::ValuesIn(HostileFiles()), PrintName);

TEST(HostileDetailTest, InvalidUtf8IsReplacedAndReported) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseFile(DataDir() / "parser/hostile/invalid_utf8_fields.xml", handler));
  ASSERT_EQ(handler.Accepted().size(), 1U);
  const CollectedDocument& doc = *handler.Accepted()[0];
  EXPECT_NE(doc.header.org_name.find("\xEF\xBF\xBD"), std::string::npos);
  ASSERT_FALSE(doc.warnings.empty());
  EXPECT_NE(doc.warnings[0].find("invalid UTF-8"), std::string::npos);
}

TEST(HostileDetailTest, ScriptInOrgNameIsKeptVerbatim) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseFile(DataDir() / "parser/hostile/xss_script_org_name.xml", handler));
  ASSERT_EQ(handler.Accepted().size(), 1U);
  EXPECT_NE(handler.Accepted()[0]->header.org_name.find("<script>"), std::string::npos);
}

}  // namespace
}  // namespace dmarcd::parser::testing
