// Issue #6, time linear in size: megabyte-scale inputs shaped after the
// known worst cases of GMime (many and deeply nested parts, chains of
// attached emails, many and huge headers), libxml2 (many attributes and
// namespace declarations in one tag, huge comments, many elements), libzip
// (many entries), the ARF reader and the UTF-8 repair. Each test asserts
// the outcome; the time limit only catches a hang (the quadratic cases took
// minutes before the guards), never speed.
#include <gtest/gtest.h>
#include <zlib.h>

#include <chrono>
#include <string>

#include "parser/arf_parser.hpp"
#include "parser/mime_walker.hpp"
#include "parser/utf8_sanitizer.hpp"
#include "parser/xml_shape_guard.hpp"
#include "parser/zip_archive.hpp"
#include "tests/parser/collecting_handler.hpp"

namespace dmarcd::parser::testing {
namespace {

constexpr auto kHang = std::chrono::seconds(120);

class Stopwatch {
 public:
  std::chrono::steady_clock::duration Elapsed() const {
    return std::chrono::steady_clock::now() - start_;
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

std::string Repeat(std::string_view text, size_t times) {
  std::string out;
  out.reserve(text.size() * times);
  for (size_t i = 0; i < times; ++i) out += text;
  return out;
}

std::string ControlXml() {
  return ReadFile(DataDir() / "parser/hostile/control_valid_aggregate.xml");
}

// The control report with `inside` placed right after <feedback>'s start tag,
// and `attributes` inside that tag.
std::string XmlWith(std::string_view attributes, std::string_view inside) {
  std::string xml = ControlXml();
  const size_t at = xml.find("<feedback>");
  EXPECT_NE(at, std::string::npos);
  return xml.substr(0, at) + "<feedback" + std::string(attributes) + ">" + std::string(inside) +
         xml.substr(at + 10);
}

std::string Attributes(std::string_view name_prefix, std::string_view value_prefix, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    // Appended piece by piece: one operator+ chain starting from " " trips
    // g++ 12's -Wrestrict false positive at -O2.
    out += ' ';
    out += name_prefix;
    out += std::to_string(i);
    out += "=\"";
    out += value_prefix;
    out += std::to_string(i);
    out += '"';
  }
  return out;
}

// The control email's gzip attachment, base64 as it is in the file.
std::string ControlAttachment() {
  std::string eml = ReadFile(DataDir() / "parser/hostile/control_valid_aggregate.eml");
  const size_t start = eml.find("H4sI");
  const size_t end = eml.find("\n--=_dmarc_b1--");
  EXPECT_NE(start, std::string::npos);
  return eml.substr(start, end - start);
}

// An email holding the control report, with `headers` among its own.
std::string EmailWith(std::string_view headers) {
  return "From: reporter@example.com\r\nTo: dmarc@example.com\r\n" + std::string(headers) +
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n"
         "Content-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
         ControlAttachment() + "\r\n--B--\r\n";
}

// multipart/mixed nested `levels` deep, one text part at the bottom.
std::string NestedEmail(int levels) {
  std::string email =
      "From: a@example.com\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n";
  for (int i = 0; i < levels; ++i) {
    email += "--b" + std::to_string(i) + "\r\nContent-Type: multipart/mixed; boundary=\"b" +
             std::to_string(i + 1) + "\"\r\n\r\n";
  }
  email += "--b" + std::to_string(levels) + "\r\nContent-Type: text/plain\r\n\r\nx\r\n";
  for (int i = levels; i >= 0; --i) email += "--b" + std::to_string(i) + "--\r\n";
  return email;
}

Error FirstError(const CollectingHandler& handler) {
  const auto errors = handler.Errors();
  if (errors.empty()) return Error(ErrorCode::kInternal, "no error");
  return errors.front();
}

void ExpectRefused(const std::string& bytes, ErrorCode code) {
  CollectingHandler handler;
  Stopwatch watch;
  ASSERT_TRUE(ParseBytes(bytes, handler));
  EXPECT_LT(watch.Elapsed(), kHang);
  EXPECT_TRUE(handler.Accepted().empty());
  EXPECT_EQ(ErrorCodeName(FirstError(handler).code), ErrorCodeName(code))
      << FirstError(handler).ToString();
}

void ExpectControlAccepted(const std::string& bytes) {
  CollectingHandler handler;
  Stopwatch watch;
  ASSERT_TRUE(ParseBytes(bytes, handler));
  EXPECT_LT(watch.Elapsed(), kHang);
  EXPECT_TRUE(handler.Errors().empty()) << FirstError(handler).ToString();
  ASSERT_EQ(handler.Accepted().size(), 1U);
  EXPECT_EQ(handler.Accepted()[0]->records.size(), 2U);
}

// --- MIME: the shape scan in front of GMime ------------------------------

TEST(MimeShapeTest, CountsPartsDepthAndHeaderOfANestedEmail) {
  const std::string email =
      "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"A\"\r\n\r\n"
      "--A\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
      "--A\r\nContent-Type: multipart/alternative;\r\n boundary=B\r\n\r\n"
      "--B\r\nContent-Type: text/plain\r\n\r\nx\r\n"
      "--B \r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n"
      "--B--\r\n--A--\r\n";
  auto shape = ScanMimeShape(email, Limits());
  ASSERT_TRUE(shape) << shape.error().ToString();
  EXPECT_EQ(shape->parts, 5);  // the email, two parts of A, two of B
  EXPECT_EQ(shape->depth, 2);
  // The email's own: two lines and the empty line that ends them.
  EXPECT_EQ(shape->largest_header, 21U + 45U + 2U);
}

TEST(MimeShapeTest, DashLinesOfUndeclaredBoundariesAreText) {
  const std::string email =
      "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"A\"\r\n\r\n"
      "--A\r\nContent-Type: text/plain\r\n\r\n" +
      Repeat("--not-a-boundary\r\n-- \r\n----------\r\n", 1000) + "--A--\r\n";
  auto shape = ScanMimeShape(email, Limits());
  ASSERT_TRUE(shape) << shape.error().ToString();
  EXPECT_EQ(shape->parts, 2);
  EXPECT_EQ(shape->depth, 1);
}

TEST(MimeShapeTest, AttachedEmailIsAPart) {
  const std::string email =
      "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=A\r\n\r\n"
      "--A\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@example.com\r\nSubject: x\r\n\r\nbody\r\n"
      "--A\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\n"
      "--A--\r\n";
  auto shape = ScanMimeShape(email, Limits());
  ASSERT_TRUE(shape) << shape.error().ToString();
  EXPECT_EQ(shape->parts, 4);  // the email, two parts, the attached email
}

TEST(MimeShapeTest, RefusesNestingDeeperThanTheLimit) {
  Limits limits;
  limits.max_mime_depth = 3;
  EXPECT_TRUE(ScanMimeShape(NestedEmail(2), limits));
  auto deep = ScanMimeShape(NestedEmail(3), limits);
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().code, ErrorCode::kTooDeep);
}

TEST(MimeShapeTest, SameBoundaryAtEveryLevelIsStillNesting) {
  Limits limits;
  limits.max_mime_depth = 3;
  const std::string level = "--B\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n";
  const std::string head =
      "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n";
  // Each level opens with a delimiter of the one around it; the last part's
  // own multipart, without a delimiter, holds nothing.
  auto shallow = ScanMimeShape(head + Repeat(level, 3) + "--B--\r\n", limits);
  ASSERT_TRUE(shallow) << shallow.error().ToString();
  EXPECT_EQ(shallow->depth, 3);
  auto deep = ScanMimeShape(head + Repeat(level, 4) + "--B--\r\n", limits);
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().code, ErrorCode::kTooDeep);
}

TEST(MimeShapeTest, RefusesMorePartsThanTheLimit) {
  Limits limits;
  limits.max_mime_parts = 10;
  const std::string head =
      "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=A\r\n\r\n";
  const std::string part = "--A\r\nContent-Type: text/plain\r\n\r\nx\r\n";
  EXPECT_TRUE(ScanMimeShape(head + Repeat(part, 9) + "--A--\r\n", limits));
  auto many = ScanMimeShape(head + Repeat(part, 10) + "--A--\r\n", limits);
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().code, ErrorCode::kTooManyEntries);
}

TEST(MimeShapeTest, RefusesAHeaderBlockAboveTheLimitFoldedLinesIncluded) {
  Limits limits;
  limits.max_header_bytes = 1024;
  auto folded = ScanMimeShape(
      "From: a@example.com\r\nSubject: x\r\n" + Repeat(" folded\r\n", 200) + "\r\nbody\r\n",
      limits);
  ASSERT_FALSE(folded);
  EXPECT_EQ(folded.error().code, ErrorCode::kTooLarge);
  // The body does not count, however long.
  EXPECT_TRUE(ScanMimeShape("From: a@example.com\r\n\r\n" + Repeat("body\r\n", 1000), limits));
}

TEST(LinearTimeTest, Mime20000NestedMultipartsRefusedAsTooDeep) {
  ExpectRefused(NestedEmail(20000), ErrorCode::kTooDeep);
}

TEST(LinearTimeTest, Mime100000PartsRefusedBeforeGmime) {
  const std::string email =
      "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=A\r\n"
      "\r\n" +
      Repeat("--A\r\nContent-Type: text/plain\r\n\r\nx\r\n", 100000) + "--A--\r\n";
  ExpectRefused(email, ErrorCode::kTooManyEntries);
}

TEST(LinearTimeTest, Mime50000AttachedEmailsInARowRefused) {
  const std::string email = "From: a@example.com\r\nMIME-Version: 1.0\r\n" +
                            Repeat("Content-Type: message/rfc822\r\n\r\nSubject: x\r\n", 50000) +
                            "\r\nbody\r\n";
  ExpectRefused(email, ErrorCode::kTooManyEntries);
}

TEST(LinearTimeTest, Mime200000HeaderFieldsStillDeliverTheReport) {
  std::string headers;
  for (int i = 0; i < 200000; ++i) headers += "X-H" + std::to_string(i) + ": v\r\n";
  ExpectControlAccepted(EmailWith(headers));
}

// GMime grows the unfolded value step by step: linear in a release build
// (realloc moves pages), slower under AddressSanitizer, which copies; the
// 4 MiB header cap bounds both.
TEST(LinearTimeTest, MimeSubjectFoldedOver100000LinesStillDeliversTheReport) {
  ExpectControlAccepted(EmailWith("Subject: s\r\n" + Repeat(" x\r\n", 100000)));
}

TEST(LinearTimeTest, MimeHeaderOf8MiBRefusedAsTooLarge) {
  ExpectRefused(EmailWith("Subject: " + std::string(size_t{8} << 20, 'x') + "\r\n"),
                ErrorCode::kTooLarge);
}

// --- ARF ------------------------------------------------------------------

std::string ArfWith(std::string_view fields) {
  std::string arf = ReadFile(DataDir() / "parser/hostile/control_valid_forensic_arf.eml");
  const size_t at = arf.find("Feedback-Type: auth-failure");
  EXPECT_NE(at, std::string::npos);
  return arf.substr(0, at) + std::string(fields) + arf.substr(at);
}

TEST(LinearTimeTest, ArfNestedMultipartsRefusedBeforeGmime) {
  Stopwatch watch;
  auto report = ParseFailureReport(NestedEmail(20000));
  EXPECT_LT(watch.Elapsed(), kHang);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, ErrorCode::kTooDeep);
}

TEST(LinearTimeTest, Arf50000FieldsRead) {
  Stopwatch watch;
  auto report = ParseFailureReport(ArfWith(Repeat("Reported-Domain: example.com\r\n", 50000)));
  EXPECT_LT(watch.Elapsed(), kHang);
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(report->reported_domain.size(), 50001U);
  ASSERT_TRUE(report->source_ip);
  EXPECT_EQ(*report->source_ip, "192.0.2.77");
}

TEST(LinearTimeTest, ArfFieldOf1MiBSemicolonsAndNestedCommentsRead) {
  Stopwatch watch;
  auto report = ParseFailureReport(ArfWith("Auth-Failure: " + std::string(size_t{1} << 20, ';') +
                                           "\r\nSource-IP: " + std::string(size_t{1} << 19, '(') +
                                           std::string(size_t{1} << 19, ')') + "\r\n"));
  EXPECT_LT(watch.Elapsed(), kHang);
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(report->feedback_type, "auth-failure");
}

// --- XML: libxml2 and the guard in front of it ----------------------------

TEST(XmlShapeGuardTest, CountsAttributesOfOneTagWhateverTheChunks) {
  const std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a x=\"=\" y='=' z=\"1\">";
  XmlShapeGuard whole(3);
  EXPECT_TRUE(whole.Feed(xml));
  XmlShapeGuard bytewise(2);
  Result<void> outcome;
  for (char c : xml) {
    outcome = bytewise.Feed(std::string_view(&c, 1));
    if (!outcome) break;
  }
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code, ErrorCode::kTooManyEntries);
}

TEST(XmlShapeGuardTest, CommentsCDataAndInstructionsHoldNoAttributes) {
  XmlShapeGuard guard(1);
  EXPECT_TRUE(
      guard.Feed("<a b=\"1\"><!-- c=1 d=2 -- e=3 --><![CDATA[ <x a=1 b=2> ]] ]]>"
                 "<?pi a=1 b=2 ?><b c='1'/>a=b=c</b></a>"));
  EXPECT_FALSE(guard.Feed("<c d=\"1\" e=\"2\">"));
}

TEST(LinearTimeTest, Xml64AttributesAcceptedAnd65Refused) {
  ExpectControlAccepted(XmlWith(Attributes("a", "", 64), ""));
  ExpectRefused(XmlWith(Attributes("a", "", 65), ""), ErrorCode::kTooManyEntries);
}

TEST(LinearTimeTest, Xml200000AttributesRefusedBeforeLibxml2) {
  ExpectRefused(XmlWith(Attributes("a", "", 200000), ""), ErrorCode::kTooManyEntries);
}

TEST(LinearTimeTest, Xml50000NamespaceDeclarationsRefusedBeforeLibxml2) {
  ExpectRefused(XmlWith(Attributes("xmlns:n", "urn:example:", 50000), ""),
                ErrorCode::kTooManyEntries);
}

TEST(LinearTimeTest, Xml8MiBCommentAndProcessingInstructionSkipped) {
  ExpectControlAccepted(XmlWith("", "<!--" + std::string(size_t{8} << 20, '=') + "-->"));
  ExpectControlAccepted(XmlWith("", "<?pi " + std::string(size_t{8} << 20, '=') + "?>"));
}

TEST(LinearTimeTest, Xml1MillionEmptyElementsSkipped) {
  ExpectControlAccepted(XmlWith("", "<extension>" + Repeat("<a/>", 1000000) + "</extension>"));
}

TEST(LinearTimeTest, Xml8MiBAttributeValueSkipped) {
  ExpectControlAccepted(
      XmlWith("", "<extension a=\"" + std::string(size_t{8} << 20, 'x') + "\"/>"));
}

TEST(LinearTimeTest, Utf8SanitizerRepairs8MiBOfBadBytes) {
  const std::string bad = Repeat("\xFF\xC3", size_t{4} << 20);
  Utf8Sanitizer sanitizer;
  std::string out;
  Stopwatch watch;
  for (size_t at = 0; at < bad.size(); at += 65536) sanitizer.Feed(bad.substr(at, 65536), out);
  sanitizer.Finish(out);
  EXPECT_LT(watch.Elapsed(), kHang);
  // Each 0xFF and each 0xC3 cut short by the next 0xFF is one U+FFFD.
  EXPECT_EQ(sanitizer.Replacements(), uint64_t{8} << 20);
  EXPECT_EQ(out.size(), (size_t{8} << 20) * 3);
}

// --- zip --------------------------------------------------------------------

// `value` as `bytes` (at most 8) little-endian bytes.
void PutLe(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

void PutZeros(std::string& out, size_t bytes) { out.append(bytes, '\0'); }

// A zip (APPNOTE.TXT sections 4.3.7, 4.3.12, 4.3.16) of `count` empty stored
// files.
std::string ZipOfEmptyFiles(int count) {
  std::string local;
  std::string central;
  for (int i = 0; i < count; ++i) {
    const std::string name = "f" + std::to_string(i);
    const auto offset = local.size();
    PutLe(local, 0x04034b50, 4);
    PutLe(local, 20, 2);
    PutZeros(local, 2 + 2 + 2 + 2 + 4 + 4 + 4);  // flags .. sizes: all zero
    PutLe(local, name.size(), 2);
    PutLe(local, 0, 2);
    local += name;
    PutLe(central, 0x02014b50, 4);
    PutLe(central, 20, 2);
    PutLe(central, 20, 2);
    PutZeros(central, 2 + 2 + 2 + 2 + 4 + 4 + 4);
    PutLe(central, name.size(), 2);
    PutZeros(central, 2 + 2 + 2 + 2 + 4);
    PutLe(central, offset, 4);
    central += name;
  }
  std::string zip = local + central;
  PutLe(zip, 0x06054b50, 4);
  PutZeros(zip, 2 + 2);
  PutLe(zip, static_cast<uint64_t>(count), 2);
  PutLe(zip, static_cast<uint64_t>(count), 2);
  PutLe(zip, central.size(), 4);
  PutLe(zip, local.size(), 4);
  PutLe(zip, 0, 2);
  return zip;
}

TEST(LinearTimeTest, Zip60000EntriesRefusedByTheEntryCap) {
  const std::string small = ZipOfEmptyFiles(3);
  auto archive = ZipArchive::Open(small, Limits());
  ASSERT_TRUE(archive) << archive.error().ToString();
  EXPECT_EQ(archive->EntryCount(), 3U);

  ExpectRefused(ZipOfEmptyFiles(60000), ErrorCode::kTooManyEntries);
}

}  // namespace
}  // namespace dmarcd::parser::testing
