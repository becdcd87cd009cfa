// Every file of the public corpus (tests/data/corpus/aggregate and /mail)
// goes through ParseEnvelope: real reports parse, the files broken on
// purpose are rejected with the right code, nothing crashes.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "tests/parser/collecting_handler.hpp"

namespace dmarcd::parser::testing {
namespace {

struct Expected {
  std::string org_name;
  std::string report_id;
  size_t records;
  uint64_t messages;
};

// Values read from the files themselves.
const std::map<std::string, Expected>& ChosenReports() {
  static const std::map<std::string, Expected> chosen = {
      {"aggregate/accurateplastics_empty-orgname_parsedmarc.xml",
       {"", "example.com:1538463741", 1, 1}},
      {"aggregate/accurateplastics_large-2286-records_parsedmarc.xml",
       {"", "example.com:1711897200", 2286, 2286}},
      {"aggregate/aol_windows-1252_bbustin.xml", {"AOL", "website.com_1504828800", 1, 1}},
      {"aggregate/example-net_dmarcbis-v2-np-testing-discovery_parsedmarc.xml",
       {"example.net", "dmarcbis-test-report-001", 2, 7}},
      {"aggregate/fastmail_four-records-multi-dkim_stalwart.xml",
       {"Fastmail Pty Ltd", "758848224", 4, 9}},
      {"aggregate/google_20-records_parsedmarc.xml.gz",
       {"google.com", "11038226378739404135", 20, 3047}},
      {"aggregate/google_20-records_parsedmarc.xml.zip",
       {"google.com", "11038226378739404135", 20, 3047}},
      {"aggregate/ietf-dmarcbis_sample-dmarc2-namespace_ietf.xml",
       {"Sample Reporter", "3v98abbp8ya9n3va8yr8oa3ya", 1, 123}},
      {"aggregate/outlook-enterprise_zip_avvertix.zip",
       {"Enterprise Outlook", "17265e8a413a4989bc4eef2c46ef08d0", 2, 2}},
      {"aggregate/synthetic_empty-elements-no-spf_tierpod.xml", {"Test Inc.", "1.id.0", 1, 0}},
      {"aggregate/synthetic_google-style_kimon.xml.gz",
       {"google.com", "12345678901234567890", 2, 13}},
      {"aggregate/synthetic_rfc9990-namespace_dmarcgo.xml.gz",
       {"Example Mail Receiver", "synthetic-rfc9990-modern-report", 2, 3}},
      {"aggregate/synthetic_three-records_kerrigan.xml", {"Test org", "123456", 3, 10}},
      {"aggregate/yahoo_missing-elements_avvertix.xml", {"Yahoo", "1735694883.674529", 1, 30}},
      {"mail/google_single-part-zip_mox.eml", {"google.com", "13488712042596170873", 2, 5}},
      {"mail/mailru_gzip-base64-text_mox.eml", {"Mail.Ru", "82403907998914102491559779200", 1, 1}},
      {"mail/outlook_preview-subject-related-html_mox.eml",
       {"Outlook.com", "8be4eb9d89044800947965b8a040291c", 1, 2}},
      {"mail/yahoo_gzip-binary-cte_mox.eml", {"Yahoo! Inc.", "1559613526.307161", 1, 1}},
  };
  return chosen;
}

// The files that are broken on purpose.
const std::map<std::string, ErrorCode>& BrokenFiles() {
  static const std::map<std::string, ErrorCode> broken = {
      {"aggregate/synthetic_not-a-report_kimon.xml", ErrorCode::kNotAReport},
      {"aggregate/synthetic_unclosed-element-malformed_kimon.xml", ErrorCode::kMalformedXml},
      {"aggregate/veeam_malformed-xml_parsedmarc.xml", ErrorCode::kMalformedXml},
      {"mail/synthetic_no-attachment_kerrigan.eml", ErrorCode::kNoReport},
      {"mail/synthetic_gzip-attachment-not-a-report_kerrigan.eml", ErrorCode::kNotXml},
  };
  return broken;
}

std::vector<std::string> CorpusFiles() {
  std::vector<std::string> files;
  for (std::string folder : {"aggregate", "mail"}) {
    for (const auto& entry : std::filesystem::directory_iterator(DataDir() / "corpus" / folder)) {
      files.push_back(folder + "/" + entry.path().filename().string());
    }
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

class CorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusTest, ParsesOrRejectsAsExpected) {
  const std::string& file = GetParam();
  CollectingHandler handler;
  ASSERT_TRUE(ParseFile(DataDir() / "corpus" / file, handler));

  auto broken = BrokenFiles().find(file);
  if (broken != BrokenFiles().end()) {
    EXPECT_TRUE(handler.Accepted().empty());
    auto errors = handler.Errors();
    ASSERT_EQ(errors.size(), 1U);
    EXPECT_EQ(ErrorCodeName(errors[0].code), ErrorCodeName(broken->second)) << errors[0].message;
    return;
  }

  EXPECT_TRUE(handler.Errors().empty()) << handler.Errors().front().ToString();
  auto accepted = handler.Accepted();
  ASSERT_EQ(accepted.size(), 1U);
  const CollectedDocument& doc = *accepted[0];
  EXPECT_FALSE(doc.header.report_id.empty());
  EXPECT_FALSE(doc.header.policy.domain.empty());
  EXPECT_FALSE(doc.records.empty());

  auto chosen = ChosenReports().find(file);
  if (chosen == ChosenReports().end()) return;
  EXPECT_EQ(doc.header.org_name, chosen->second.org_name);
  EXPECT_EQ(doc.header.report_id, chosen->second.report_id);
  EXPECT_EQ(doc.records.size(), chosen->second.records);
  EXPECT_EQ(doc.Messages(), chosen->second.messages);
}

INSTANTIATE_TEST_SUITE_P(AllFiles, CorpusTest, ::testing::ValuesIn(CorpusFiles()), PrintName);

TEST(CorpusDetailTest, EmptyOrgNameFallsBackToEmailDomain) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseFile(
      DataDir() / "corpus/aggregate/accurateplastics_empty-orgname_parsedmarc.xml", handler));
  ASSERT_EQ(handler.Accepted().size(), 1U);
  const AggregateHeader& header = handler.Accepted()[0]->header;
  ASSERT_TRUE(header.email);
  EXPECT_EQ(header.ReporterKey(), header.email->substr(header.email->find('@') + 1));
}

TEST(CorpusDetailTest, NamesZipMembersInsideMailAttachments) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseFile(DataDir() / "corpus/mail/google_single-part-zip_mox.eml", handler));
  ASSERT_EQ(handler.Accepted().size(), 1U);
  EXPECT_TRUE(
      handler.Accepted()[0]->name.starts_with("google.com!ueber.net!1633996800!1634083199.zip/"));
}

}  // namespace
}  // namespace dmarcd::parser::testing
