// The failure report parser over every failure report of the public corpus
// (tests/data/failure/corpus) and the reports written for each variation
// (tests/data/failure/written), field by field.
#include "parser/arf_parser.hpp"

#include <gtest/gtest.h>

#include "tests/parser/collecting_handler.hpp"

namespace dmarcd::parser::testing {
namespace {

FailureReport Parse(const std::string& path) {
  auto report = ParseFailureReport(ReadFile(DataDir() / "failure" / path));
  EXPECT_TRUE(report) << path << ": " << report.error().ToString();
  return report ? *report : FailureReport{};
}

using Strings = std::vector<std::string>;

TEST(ArfParserTest, ReadsEceleritySharepointReport) {
  FailureReport r = Parse("corpus/ecelerity-lua_domain-de-sharepoint_parsedmarc.eml");
  EXPECT_EQ(r.format, FailureFormat::kArf);
  EXPECT_EQ(r.feedback_type, "auth-failure");
  EXPECT_EQ(r.user_agent, "Lua/1.0");
  EXPECT_EQ(r.version, "1.0");
  EXPECT_EQ(r.arrival_date, 1538385627);  // Mon, 01 Oct 2018 11:20:27 +0200
  EXPECT_EQ(r.source_ip, "10.10.10.10");
  EXPECT_EQ(r.original_mail_from, "sharepoint@domain.de");
  EXPECT_EQ(r.original_rcpt_to, Strings{"peter.pan@domain.de"});
  EXPECT_EQ(r.reported_domain, Strings{"domain.de"});
  EXPECT_EQ(r.authentication_results,
            Strings{"dmarc=fail (p=none, dis=none) header.from=domain.de"});
  EXPECT_EQ(r.auth_failure, Strings{"dmarc"});
  EXPECT_EQ(r.delivery_result, "smg-policy-action");
  EXPECT_EQ(r.returned_part_type, "message/rfc822");
  EXPECT_EQ(r.from,
            "\"Interaktive Wettbewerber-\xC3\x9C"
            "bersicht\" <sharepoint@domain.de>");
  EXPECT_EQ(r.message_id, "<38.E7.30937.BD6E1BB5@ mailrelay.de>");
  EXPECT_TRUE(r.headers.starts_with("Received: from Servernameone.domain.local"));
  ASSERT_TRUE(r.body.has_value());
  EXPECT_EQ(r.Domain(), "domain.de");
}

TEST(ArfParserTest, ReadsLinkedinReportWithEmptyMailFrom) {
  FailureReport r = Parse("corpus/linkedin_ruf_parsedmarc.eml");
  EXPECT_EQ(r.original_mail_from, "");
  EXPECT_EQ(r.arrival_date, 1556590140);  // Tue, 30 Apr 2019 02:09:00 +0000
  EXPECT_EQ(r.original_rcpt_to, Strings{"recipient@linkedin.com"});
  EXPECT_EQ(r.reported_domain, Strings{"example.com"});
  EXPECT_EQ(r.delivery_result, "delivered");
  EXPECT_EQ(r.from, "Sender <sender@example.com>");
  EXPECT_EQ(r.subject, "Subject line, could be UTF8 encoded");
  EXPECT_EQ(r.message_id, "<01010101010101010101010101010101@ABAB01MS0016.someserver.loc>");
  EXPECT_TRUE(r.headers.starts_with("Return-Path: <>"));
}

TEST(ArfParserTest, ReadsLuaReporterReport) {
  FailureReport r = Parse("corpus/lua-reporter_dmarc-auth-failure_sisimai.eml");
  EXPECT_EQ(r.source_ip, "192.0.2.222");
  EXPECT_EQ(r.arrival_date, 1430350485);
  EXPECT_EQ(r.original_mail_from, "sironeko@example.org");
  EXPECT_EQ(r.original_rcpt_to, Strings{"kijitora@example.com"});
  EXPECT_EQ(r.reported_domain, Strings{"example.net"});
  EXPECT_EQ(r.auth_failure, Strings{"dmarc"});
  EXPECT_EQ(r.from, "Sironeko <sironeko@example.org>");
  EXPECT_EQ(r.subject, "Nyaan");
  EXPECT_EQ(r.date, "Thu, 29 Apr 2015 23:34:45 +0900 (JST)");
}

TEST(ArfParserTest, ReadsOpendmarcRfc822HeadersWithSourceIpComment) {
  FailureReport r = Parse("corpus/opendmarc_auth-failure-rfc822-headers_stalwart.eml");
  EXPECT_EQ(r.user_agent, "OpenDMARC-Filter/1.3.2");
  EXPECT_EQ(r.version, "1");
  EXPECT_EQ(r.source_ip, "148.163.85.135");
  EXPECT_EQ(r.source_ip_comment, "sainay.interpublication.org");
  EXPECT_FALSE(r.arrival_date.has_value());
  EXPECT_EQ(r.original_mail_from, "info@interpublication.org");
  EXPECT_EQ(r.authentication_results,
            Strings{"box.mydomain.name; dmarc=fail header.from=interpublication.org"});
  EXPECT_EQ(r.returned_part_type, "text/rfc822-headers");
  EXPECT_EQ(r.subject, "Wir kaufen dein Auto!");
  EXPECT_FALSE(r.body.has_value());
}

TEST(ArfParserTest, ReadsOpendmarcIetfListReport) {
  FailureReport r = Parse("corpus/opendmarc_dmarc-auth-failure_sisimai.eml");
  EXPECT_EQ(r.user_agent, "OpenDMARC-Filter/1.3.0");
  EXPECT_EQ(r.source_ip, "203.0.113.2");
  EXPECT_EQ(r.original_mail_from, "dmarc-bounces@ietf.example.org");
  EXPECT_EQ(r.reported_domain, Strings{"example.net"});
  EXPECT_EQ(r.returned_part_type, "text/rfc822-headers");
  EXPECT_EQ(r.from, "<sironeko@example.net>");
  EXPECT_EQ(r.message_id, "<000000000eee@example.net>");
}

TEST(ArfParserTest, ReadsRfc6591BodyhashExample) {
  FailureReport r = Parse("corpus/rfc6591-example_auth-failure-bodyhash_stalwart.eml");
  EXPECT_EQ(r.user_agent, "SomeDKIMFilter/1.0");
  EXPECT_EQ(r.arrival_date, 1271272531);  // Wed, 14 Apr 2010 12:15:31 -0700
  EXPECT_EQ(r.source_ip, "192.0.2.1");
  EXPECT_EQ(r.original_mail_from, "randomuser@example.net");
  EXPECT_EQ(r.original_rcpt_to, Strings{"user@example.com"});
  EXPECT_EQ(r.auth_failure, Strings{"bodyhash"});
  EXPECT_EQ(r.dkim_domain, "example.net");
  EXPECT_EQ(r.subject, "This is a test");
  EXPECT_EQ(r.returned_part_type, "message/rfc822");
}

TEST(ArfParserTest, ReadsSomeispHeadersReportWithDkimFields) {
  FailureReport r = Parse("corpus/someisp-example_auth-failure-headers-7bit_stalwart.eml");
  EXPECT_EQ(r.user_agent, "Someisp!Mail-Feedback/1.0");
  EXPECT_EQ(r.arrival_date, 1318104958);  // 8 Oct 2011 20:15:58 +0000
  EXPECT_EQ(r.auth_failure, Strings{"bodyhash"});
  EXPECT_EQ(r.dkim_domain, "sender.example");
  EXPECT_EQ(r.dkim_selector, "testkey");
  EXPECT_EQ(r.dkim_identity, "@sender.example");
  EXPECT_EQ(r.reported_domain, Strings{"a.sender.example"});
  EXPECT_EQ(r.message_id, "<87913910.1318094604546@out.sender.example>");
  EXPECT_EQ(r.returned_part_type, "text/rfc822-headers");
}

class OtherFeedbackTypeTest : public ::testing::TestWithParam<const char*> {};

TEST_P(OtherFeedbackTypeTest, RejectsAsNotAFailureReport) {
  auto report = ParseFailureReport(ReadFile(DataDir() / "failure" / "corpus" / GetParam()));
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, ErrorCode::kNotAReport);
  EXPECT_EQ(report.error().message, "not a DMARC failure report (feedback type abuse)");
}

INSTANTIATE_TEST_SUITE_P(Corpus, OtherFeedbackTypeTest,
                         ::testing::Values("amazonses_abuse-complaint_sisimai.eml",
                                           "rackspace-returnpath_abuse-qp-8bit_sisimai.eml",
                                           "rfc5965-example_abuse-full_stalwart.eml",
                                           "rfc5965-example_abuse-minimal_stalwart.eml",
                                           "smp-fbl_abuse-crlf_sisimai.eml",
                                           "smp-fbl_abuse-lf_sisimai.eml",
                                           "yahoo_abuse-fbl_sisimai.eml"));

TEST(ArfParserTest, ReadsFoldedRepeatedAndRfc9991Fields) {
  FailureReport r = Parse("written/rfc9991_folded_multi.eml");
  EXPECT_EQ(r.arrival_date, 1735905487);  // ISO 8601 2025-01-03T11:58:07Z
  EXPECT_EQ(r.reporting_mta, "dns; mx.receiver.example.net");
  EXPECT_EQ(r.source_ip, "2001:db8::25");
  EXPECT_EQ(r.incidents, 3U);
  EXPECT_EQ(r.original_envelope_id, "env-7781");
  EXPECT_EQ(r.original_rcpt_to,
            (Strings{"bob.builder@receiver.example.net", "carol.singer@receiver.example.net"}));
  EXPECT_EQ(r.reported_domain, Strings{"example.com"});
  ASSERT_EQ(r.authentication_results.size(), 1U);
  EXPECT_EQ(r.authentication_results[0].find('\n'), std::string::npos);
  EXPECT_NE(r.authentication_results[0].find("spf=fail smtp.mailfrom=spoof.example.org"),
            std::string::npos);
  EXPECT_EQ(r.auth_failure, (Strings{"dmarc", "signature", "spf"}));
  EXPECT_EQ(r.identity_alignment, Strings{"none"});
  EXPECT_EQ(r.delivery_result, "spam");
  EXPECT_EQ(r.dkim_selector, "sel1");
  EXPECT_EQ(r.spf_dns, "txt : spoof.example.org : \"v=spf1 -all\"");
  EXPECT_EQ(r.from, "Caf\xC3\xA9 Team <alice.wonder@example.com>");  // RFC 2047 decoded
  EXPECT_EQ(r.subject, "Your invoice \xE2\x82\xAC 42");
  ASSERT_TRUE(r.body.has_value());
  EXPECT_NE(r.body->find("Pay now"), std::string::npos);
  EXPECT_EQ(r.fields.size(), 21U);
}

TEST(ArfParserTest, AcceptsMissingOptionalFields) {
  FailureReport r = Parse("written/missing_optional.eml");
  EXPECT_EQ(r.feedback_type, "auth-failure");  // "Auth-Failure" in the input: lower-cased
  EXPECT_EQ(r.auth_failure, Strings{"dkim"});
  EXPECT_FALSE(r.source_ip.has_value());
  EXPECT_FALSE(r.arrival_date.has_value());
  EXPECT_FALSE(r.user_agent.has_value());
  EXPECT_FALSE(r.returned_part_type.has_value());
  EXPECT_TRUE(r.headers.empty());
  EXPECT_EQ(r.Domain(), "example.com");
}

TEST(ArfParserTest, ReadsReturnedMessageFromPlainTextPart) {
  FailureReport r = Parse("written/returned_as_text_plain.eml");
  EXPECT_EQ(r.arrival_date, 1735905845);  // 13:04:05 +0100
  EXPECT_EQ(r.identity_alignment, Strings{"dkim"});
  EXPECT_EQ(r.returned_part_type, "text/plain");
  EXPECT_EQ(r.from, "Billing <billing@example.com>");
  EXPECT_EQ(r.subject, "Overdue");
  EXPECT_EQ(r.message_id, "<overdue-1@mail.spoof.example.org>");
}

TEST(ArfParserTest, ReadsNonArfReportAsNonStandard) {
  const std::string email =
      ReadFile(DataDir() / "failure" / "written" / "non_arf_text_and_headers.eml");
  EXPECT_TRUE(LooksLikeNonStandardFailureReport(email));
  FailureReport r = Parse("written/non_arf_text_and_headers.eml");
  EXPECT_EQ(r.format, FailureFormat::kNonStandard);
  EXPECT_EQ(r.source_ip, "192.0.2.77");
  EXPECT_EQ(r.arrival_date, 1735977310);
  EXPECT_EQ(r.reported_domain, Strings{"example.com"});
  EXPECT_EQ(r.auth_failure, Strings{"dmarc"});
  EXPECT_EQ(r.from, "Support <erin.helpdesk@example.com>");
  EXPECT_EQ(r.subject, "Reset your password");
}

TEST(ArfParserTest, AggregateReportEmailIsNotANonStandardFailureReport) {
  EXPECT_FALSE(LooksLikeNonStandardFailureReport(
      ReadFile(DataDir() / "cases" / "01-uncompressed-xml-attachment" / "report.eml")));
}

// What the privacy settings keep must read back to the same report.
TEST(ArfParserTest, WrittenReportReadsBack) {
  for (const char* path : {"written/rfc9991_folded_multi.eml", "written/missing_optional.eml",
                           "written/non_arf_text_and_headers.eml"}) {
    SCOPED_TRACE(path);
    FailureReport original = Parse(path);
    auto again = ParseFailureReport(WriteFailureReport(original, original.envelope_headers));
    ASSERT_TRUE(again) << again.error().ToString();
    EXPECT_EQ(again->format, original.format);
    EXPECT_EQ(again->source_ip, original.source_ip);
    EXPECT_EQ(again->auth_failure, original.auth_failure);
    EXPECT_EQ(again->from, original.from);
    EXPECT_EQ(again->subject, original.subject);
    EXPECT_EQ(again->returned_part_type.has_value(), original.returned_part_type.has_value());
    EXPECT_EQ(again->body.has_value(), original.body.has_value());
    // GMime writes the report's own From again in its own quoting.
    ASSERT_EQ(again->envelope_headers.size(), original.envelope_headers.size());
    EXPECT_EQ(again->envelope_headers[2], original.envelope_headers[2]);
  }
}

// The pipeline hands a failure report to OnFailureReport and another
// feedback type to OnRejected.
class FailureHandler : public CollectingHandler {
 public:
  void OnFailureReport(std::string_view name, std::string_view bytes,
                       const FailureReport& report) override {
    names.emplace_back(name);
    sizes.push_back(bytes.size());
    reports.push_back(report);
  }
  Strings names;
  std::vector<size_t> sizes;
  std::vector<FailureReport> reports;
};

// Found by fuzz_arf: a returned message in which GMime finds no header was
// dropped when the report was written again, and the written report no
// longer read as a failure report.
TEST(ArfParserTest, Issue6ReturnedMessageWithoutHeadersIsWrittenBack) {
  auto original = ParseFailureReport(
      ReadFile(DataDir() / "parser" / "fuzz" / "arf_returned_message_without_headers.eml"));
  ASSERT_TRUE(original) << original.error().ToString();
  EXPECT_EQ(original->format, FailureFormat::kNonStandard);
  EXPECT_EQ(original->returned_part_type, "message/rfc822");
  EXPECT_EQ(original->headers, "REDACTED\n");

  auto again = ParseFailureReport(WriteFailureReport(*original, original->envelope_headers));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->format, FailureFormat::kNonStandard);
  EXPECT_EQ(again->returned_part_type, "message/rfc822");
  EXPECT_EQ(again->headers, "REDACTED\n");
  EXPECT_EQ(again->subject, original->subject);
}

// Found by fuzz_arf: the written report ended at the first NUL byte of a
// field, so it no longer read as a failure report.
TEST(ArfParserTest, Issue6NulByteInAFieldDoesNotCutTheWrittenReport) {
  auto original =
      ParseFailureReport(ReadFile(DataDir() / "parser" / "fuzz" / "arf_nul_byte_in_field.eml"));
  ASSERT_TRUE(original) << original.error().ToString();
  ASSERT_EQ(original->format, FailureFormat::kNonStandard);

  const std::string written = WriteFailureReport(*original, original->envelope_headers);
  EXPECT_NE(written.find('\0'), std::string::npos);
  auto again = ParseFailureReport(written);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->format, FailureFormat::kNonStandard);
  EXPECT_EQ(again->headers, original->headers);
}

// Found by fuzz_arf: a garbled report whose returned message, once it stood
// alone as the message/rfc822 part WriteFailureReport writes, held
// multiparts nested past the cap, so the copy dmarcd keeps could not be read
// again. The returned message is now measured alone at the first read.
TEST(ArfParserTest, Issue6ReturnedMessageIsHeldToTheCapsItMeetsWhenWritten) {
  auto report = ParseFailureReport(
      ReadFile(DataDir() / "parser" / "fuzz" / "arf_returned_message_nested_too_deep.eml"));
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, ErrorCode::kTooDeep);
  EXPECT_EQ(report.error().message,
            "the returned message: email has multiparts nested deeper than 9 levels");
}

// Found by fuzz_arf: a report read as non-ARF skipped the check above, and
// its returned message nests deeper once GMime has written it back.
TEST(ArfParserTest, NonStandardReturnedMessageIsHeldToTheCapsOfItsWrittenForm) {
  const std::string email = ReadFile(DataDir() / "parser" / "fuzz" /
                                     "arf_nonstandard_returned_message_nested_when_written.eml");
  auto report = ParseFailureReport(email);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, ErrorCode::kTooDeep);
  EXPECT_EQ(report.error().message,
            "the returned message: email has multiparts nested deeper than 9 levels");
}

// What ParseFailureReport reads, WriteFailureReport writes so that it
// reads again: every failure report of the test data, the fuzz findings
// included.
TEST(ArfParserTest, EveryReportReadIsWrittenSoThatItReadsAgain) {
  int written = 0;
  for (const char* folder : {"failure/corpus", "failure/written", "parser/fuzz"}) {
    for (const auto& entry : std::filesystem::directory_iterator(DataDir() / folder)) {
      auto report = ParseFailureReport(ReadFile(entry.path()));
      if (!report) continue;
      const std::string bytes = WriteFailureReport(*report, report->envelope_headers);
      auto again = ParseFailureReport(bytes);
      ASSERT_TRUE(again) << entry.path() << ": " << again.error().ToString();
      EXPECT_EQ(again->format, report->format) << entry.path();
      // Written the same way twice: the archive copy is kept once.
      EXPECT_EQ(WriteFailureReport(*report, report->envelope_headers), bytes) << entry.path();
      ++written;
    }
  }
  EXPECT_GE(written, 10);
}

TEST(ArfPipelineTest, RoutesEveryCorpusFile) {
  int failures = 0;
  int rejected = 0;
  for (const auto& entry : std::filesystem::directory_iterator(DataDir() / "failure" / "corpus")) {
    FailureHandler handler;
    ASSERT_TRUE(ParseFile(entry.path(), handler));
    failures += static_cast<int>(handler.reports.size());
    rejected += static_cast<int>(handler.rejections.size());
    EXPECT_TRUE(handler.documents.empty());
  }
  EXPECT_EQ(failures, 7);
  EXPECT_EQ(rejected, 7);
}

TEST(ArfPipelineTest, NonArfReportReachesHandler) {
  FailureHandler handler;
  ASSERT_TRUE(
      ParseFile(DataDir() / "failure" / "written" / "non_arf_text_and_headers.eml", handler));
  ASSERT_EQ(handler.reports.size(), 1U);
  EXPECT_EQ(handler.reports[0].format, FailureFormat::kNonStandard);
  EXPECT_TRUE(handler.rejections.empty());
}

TEST(ArfPipelineTest, DefaultHandlerRejectsAsUnsupported) {
  CollectingHandler handler;
  ASSERT_TRUE(
      ParseFile(DataDir() / "cases" / "22-arf-source-ip-with-comment" / "failure.eml", handler));
  ASSERT_EQ(handler.rejections.size(), 1U);
  EXPECT_EQ(handler.rejections[0].error.code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace dmarcd::parser::testing
