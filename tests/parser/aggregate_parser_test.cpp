// AggregateParser on documents written here: the XML half of the parser.
#include "parser/aggregate_parser.hpp"

#include <gtest/gtest.h>

#include "tests/parser/collecting_handler.hpp"

namespace dmarcd::parser::testing {
namespace {

constexpr std::string_view kMetadata = R"(<report_metadata>
    <org_name>Example Mail</org_name>
    <email>dmarc@mail.example.net</email>
    <report_id>r-1</report_id>
    <date_range><begin>1735689600</begin><end>1735775999</end></date_range>
  </report_metadata>)";

constexpr std::string_view kPolicy = R"(<policy_published>
    <domain>example.com</domain><adkim>r</adkim><aspf>s</aspf><p>reject</p>
  </policy_published>)";

std::string Record(std::string_view ip, std::string_view count, std::string_view spf = "pass") {
  return "<record><row><source_ip>" + std::string(ip) + "</source_ip><count>" + std::string(count) +
         "</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"
         "<spf>pass</spf></policy_evaluated></row><identifiers><header_from>example.com"
         "</header_from></identifiers><auth_results><spf><domain>example.com</domain>"
         "<result>" +
         std::string(spf) + "</result></spf></auth_results></record>";
}

std::string Report(std::string_view body) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n" + std::string(kMetadata) +
         std::string(kPolicy) + std::string(body) + "</feedback>\n";
}

class AggregateParserTest : public ::testing::Test {
 protected:
  // Feeds `xml` in chunks of `chunk` bytes and finishes.
  Result<void> Parse(std::string_view xml, size_t chunk = 4096) {
    sink_ = std::make_unique<CollectingSink>(doc_);
    AggregateParser parser(*sink_, limits_);
    for (size_t at = 0; at < xml.size(); at += chunk) {
      auto fed = parser.Feed(xml.substr(at, chunk));
      if (!fed) return fed;
    }
    return parser.Finish();
  }

  Limits limits_;
  CollectedDocument doc_;
  std::unique_ptr<CollectingSink> sink_;
};

TEST_F(AggregateParserTest, ParsesMinimalReport) {
  ASSERT_TRUE(Parse(Report(Record("192.0.2.1", "3"))));
  EXPECT_EQ(doc_.header.org_name, "Example Mail");
  EXPECT_EQ(doc_.header.report_id, "r-1");
  EXPECT_EQ(doc_.header.policy.aspf, "s");
  ASSERT_EQ(doc_.records.size(), 1U);
  EXPECT_EQ(doc_.records[0].count, 3U);
  EXPECT_TRUE(doc_.ended);
  EXPECT_TRUE(doc_.warnings.empty());
}

TEST_F(AggregateParserTest, RefusesDoctype) {
  std::string xml =
      "<?xml version=\"1.0\"?>\n<!DOCTYPE feedback [<!ENTITY x SYSTEM "
      "\"file:///etc/passwd\">]>\n<feedback><report_metadata><org_name>&x;</org_name>"
      "</report_metadata></feedback>";
  auto result = Parse(xml);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kDoctypeRefused);
  EXPECT_FALSE(doc_.has_header);
}

TEST_F(AggregateParserTest, RefusesDeepNesting) {
  std::string xml = "<feedback>";
  for (int i = 0; i < 100; ++i) xml += "<a>";
  auto result = Parse(xml);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kTooDeep);
  EXPECT_NE(result.error().message.find("depth"), std::string::npos);
}

TEST_F(AggregateParserTest, RecoversInvalidUtf8SplitAcrossChunks) {
  // F1 is ISO-8859-1 for n-tilde; C3 without its continuation is cut off;
  // E2 82 AC is a valid euro sign and must survive one-byte chunks.
  std::string xml = Report(Record("192.0.2.1", "1"));
  xml.replace(xml.find("Example Mail"), 12, "Se\xF1or \xE2\x82\xAC \xC3");
  ASSERT_TRUE(Parse(xml, 1));
  EXPECT_EQ(doc_.header.org_name, "Se\xEF\xBF\xBDor \xE2\x82\xAC \xEF\xBF\xBD");
  ASSERT_EQ(doc_.warnings.size(), 1U);
  EXPECT_NE(doc_.warnings[0].find("invalid UTF-8 in text content"), std::string::npos);
  EXPECT_NE(doc_.warnings[0].find("org_name"), std::string::npos);
}

TEST_F(AggregateParserTest, ChunkSizeDoesNotChangeResult) {
  std::string xml = Report(Record("2001:DB8:0:0:0:0:0:1", "7") + Record("192.0.2.9", "2"));
  ASSERT_TRUE(Parse(xml, 1));
  CollectedDocument one_byte = doc_;
  doc_ = CollectedDocument();
  ASSERT_TRUE(Parse(xml, 1 << 20));
  ASSERT_EQ(one_byte.records.size(), doc_.records.size());
  EXPECT_EQ(one_byte.records[0].source_ip, doc_.records[0].source_ip);
  EXPECT_EQ(one_byte.Messages(), 9U);
}

TEST_F(AggregateParserTest, MapsUnknownEnumValuesWithWarning) {
  std::string body = Record("192.0.2.1", "1", "HardFail") + Record("192.0.2.2", "1", "PASS");
  ASSERT_TRUE(Parse(Report(body)));
  ASSERT_EQ(doc_.records.size(), 2U);
  EXPECT_EQ(doc_.records[0].spf[0].result, "fail");
  EXPECT_EQ(doc_.records[1].spf[0].result, "pass");
  ASSERT_EQ(doc_.warnings.size(), 1U);
  EXPECT_EQ(doc_.warnings[0], "unknown SPF result 'hardfail' mapped to 'fail'");
}

TEST_F(AggregateParserTest, CanonicalisesIpv6) {
  ASSERT_TRUE(Parse(Report(Record("\n  2001:0DB8:0000:0000:0000:FF00:0042:8329 \n", "1") +
                           Record(" 203.0.113.9\t", "1"))));
  ASSERT_EQ(doc_.records.size(), 2U);
  EXPECT_EQ(doc_.records[0].source_ip, "2001:db8::ff00:42:8329");
  EXPECT_EQ(doc_.records[1].source_ip, "203.0.113.9");
}

TEST_F(AggregateParserTest, RejectsBadIp) {
  auto result = Parse(Report(Record("192.0.2.300", "1")));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidValue);
}

TEST_F(AggregateParserTest, HoldsRecordsBeforeMetadata) {
  std::string xml = "<feedback>" + Record("192.0.2.1", "4") + std::string(kPolicy) +
                    Record("192.0.2.2", "5") + std::string(kMetadata) + "</feedback>";
  ASSERT_TRUE(Parse(xml));
  EXPECT_TRUE(doc_.has_header);
  ASSERT_EQ(doc_.records.size(), 2U);
  EXPECT_EQ(doc_.records[0].source_ip, "192.0.2.1");
  EXPECT_EQ(doc_.records[1].count, 5U);
}

TEST_F(AggregateParserTest, KeepsCountsAbove32Bits) {
  ASSERT_TRUE(Parse(Report(Record("192.0.2.1", "3000000000") + Record("192.0.2.2", "3000000000"))));
  EXPECT_EQ(doc_.Messages(), 6000000000U);
}

TEST_F(AggregateParserTest, RejectsBadCount) {
  auto result = Parse(Report(Record("192.0.2.1", "-4")));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidValue);
}

TEST_F(AggregateParserTest, RejectsMissingReportId) {
  std::string xml = Report(Record("192.0.2.1", "1"));
  xml.erase(xml.find("<report_id>"), std::string_view("<report_id>r-1</report_id>").size());
  auto result = Parse(xml);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kMissingElement);
  EXPECT_EQ(result.error().message, "report_metadata/report_id missing");
}

TEST_F(AggregateParserTest, RejectsMissingCount) {
  std::string xml = Report(Record("192.0.2.1", "1"));
  xml.erase(xml.find("<count>"), std::string_view("<count>1</count>").size());
  auto result = Parse(xml);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().message, "record/row/count missing");
}

TEST_F(AggregateParserTest, RejectsWrongRoot) {
  auto result = Parse("<?xml version=\"1.0\"?><root><item/></root>");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kNotAReport);
}

TEST_F(AggregateParserTest, RejectsBytesThatAreNotXml) {
  auto result = Parse("unused");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kNotXml);
  EXPECT_NE(result.error().message.find("not XML"), std::string::npos);
}

TEST_F(AggregateParserTest, ReportsLineAndColumnOfMalformedXml) {
  auto result = Parse("<feedback>\n<report_metadata>\n<org_name>x</org_nam>\n</feedback>");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kMalformedXml);
  EXPECT_NE(result.error().message.find("line 3"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("column"), std::string::npos);
}

TEST_F(AggregateParserTest, AcceptsBomAndLeadingWhitespace) {
  ASSERT_TRUE(Parse("\xEF\xBB\xBF \r\n" + Report(Record("192.0.2.1", "1"))));
  EXPECT_EQ(doc_.records.size(), 1U);
}

TEST_F(AggregateParserTest, IgnoresNamespacesAndReadsRfc9990Fields) {
  std::string xml =
      "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\"><version>1.0</version>"
      "<report_metadata><org_name>X</org_name><report_id>i</report_id><generator>gen 1"
      "</generator><date_range><begin>1</begin><end>2</end></date_range></report_metadata>"
      "<policy_published><domain>example.com</domain><p>none</p><np>Reject</np>"
      "<testing>n</testing><discovery_method>treewalk</discovery_method></policy_published>" +
      Record("192.0.2.1", "1") + "</feedback>";
  ASSERT_TRUE(Parse(xml));
  EXPECT_EQ(doc_.header.xml_namespace, "urn:ietf:params:xml:ns:dmarc-2.0");
  EXPECT_EQ(doc_.header.generator, "gen 1");
  EXPECT_EQ(doc_.header.policy.np, "reject");
  EXPECT_EQ(doc_.header.policy.testing, "n");
  EXPECT_EQ(doc_.header.policy.discovery_method, "treewalk");
  EXPECT_FALSE(doc_.header.policy.pct);
}

TEST_F(AggregateParserTest, WarnsAboutLongDateRange) {
  std::string xml = Report(Record("192.0.2.1", "1"));
  xml.replace(xml.find("1735775999"), 10, "1736467200");
  ASSERT_TRUE(Parse(xml));
  ASSERT_EQ(doc_.warnings.size(), 1U);
  EXPECT_EQ(doc_.warnings[0], "date range longer than 24 hours (about 9 days)");
}

TEST_F(AggregateParserTest, RejectsEndBeforeBegin) {
  std::string xml = Report(Record("192.0.2.1", "1"));
  xml.replace(xml.find("1735775999"), 10, "1735000000");
  auto result = Parse(xml);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::kBadDateRange);
}

TEST_F(AggregateParserTest, CapsTextAndRecords) {
  limits_.max_text_bytes = 16;
  auto too_long = Parse(Report(Record("192.0.2.1", "1")));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, ErrorCode::kTooLarge);

  limits_ = Limits();
  limits_.max_records = 1;
  doc_ = CollectedDocument();
  auto too_many = Parse(Report(Record("192.0.2.1", "1") + Record("192.0.2.2", "1")));
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().code, ErrorCode::kTooManyEntries);
}

TEST_F(AggregateParserTest, TranscodesWindows1252) {
  std::string xml = Report(Record("192.0.2.1", "1"));
  xml.replace(xml.find("UTF-8"), 5, "windows-1252");
  xml.replace(xml.find("Example Mail"), 12, "Geb\xFChr \x80");
  ASSERT_TRUE(Parse(xml, 3));
  EXPECT_EQ(doc_.header.org_name, "Geb\xC3\xBChr \xE2\x82\xAC");
  EXPECT_TRUE(doc_.warnings.empty());
}

TEST_F(AggregateParserTest, EmptyReasonTypeBecomesNullWithWarning) {
  std::string record = Record("192.0.2.1", "1");
  record.insert(record.find("</policy_evaluated>"),
                "<reason><type></type><comment> list </comment></reason>");
  ASSERT_TRUE(Parse(Report(record)));
  ASSERT_EQ(doc_.records[0].reasons.size(), 1U);
  EXPECT_FALSE(doc_.records[0].reasons[0].type);
  EXPECT_EQ(doc_.records[0].reasons[0].comment, "list");
  ASSERT_EQ(doc_.warnings.size(), 1U);
}

TEST(AggregateHeaderTest, ReporterKeyFallsBackToEmailDomain) {
  AggregateHeader header;
  header.email = "noreply@reports.example.net";
  EXPECT_EQ(header.ReporterKey(), "reports.example.net");
  header.org_name = "Example";
  EXPECT_EQ(header.ReporterKey(), "Example");
  EXPECT_EQ(AggregateHeader().ReporterKey(), "");
}

}  // namespace
}  // namespace dmarcd::parser::testing
