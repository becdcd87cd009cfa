// ParseEnvelope's unpacking: gzip, zip, MIME and content sniffing, with the
// archives built here so each test shows exactly what it feeds.
#include <glib.h>
#include <gtest/gtest.h>
#include <zip.h>
#include <zlib.h>

#include "parser/pipeline.hpp"
#include "tests/parser/collecting_handler.hpp"

namespace dmarcd::parser::testing {
namespace {

std::string ReportXml(std::string_view report_id = "u-1", int records = 2) {
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback><report_metadata><org_name>Unpack"
      "</org_name><report_id>" +
      std::string(report_id) +
      "</report_id><date_range><begin>1735689600</begin><end>1735775999</end></date_range>"
      "</report_metadata><policy_published><domain>example.com</domain><p>none</p>"
      "</policy_published>";
  for (int i = 0; i < records; ++i) {
    xml += "<record><row><source_ip>192.0.2." + std::to_string(i + 1) +
           "</source_ip><count>2</count></row><identifiers><header_from>example.com"
           "</header_from></identifiers></record>";
  }
  return xml + "</feedback>\n";
}

std::string Gzip(std::string_view data) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&stream, data.size()) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

struct ZipMember {
  std::string name;
  std::string data;  // ignored for directories (names ending in '/')
};

// Builds a zip archive in memory with libzip. `password` encrypts members.
std::string Zip(const std::vector<ZipMember>& members, const char* password = nullptr) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* buffer = zip_source_buffer_create(nullptr, 0, 0, &error);
  zip_source_keep(buffer);
  zip_t* archive = zip_open_from_source(buffer, ZIP_TRUNCATE, &error);
  for (const auto& member : members) {
    if (member.name.ends_with('/')) {
      zip_dir_add(archive, member.name.c_str(), ZIP_FL_ENC_UTF_8);
      continue;
    }
    zip_source_t* source = zip_source_buffer(archive, member.data.data(), member.data.size(), 0);
    zip_int64_t index = zip_file_add(archive, member.name.c_str(), source, ZIP_FL_ENC_UTF_8);
    if (password != nullptr) {
      zip_file_set_encryption(archive, static_cast<zip_uint64_t>(index), ZIP_EM_AES_256, password);
    }
  }
  EXPECT_EQ(zip_close(archive), 0);

  std::string out;
  zip_source_open(buffer);
  zip_source_seek(buffer, 0, SEEK_END);
  out.resize(static_cast<size_t>(zip_source_tell(buffer)));
  zip_source_seek(buffer, 0, SEEK_SET);
  zip_source_read(buffer, out.data(), out.size());
  zip_source_close(buffer);
  zip_source_free(buffer);
  return out;
}

std::string Base64(std::string_view data) {
  gchar* encoded = g_base64_encode(reinterpret_cast<const guchar*>(data.data()), data.size());
  std::string out(encoded);
  g_free(encoded);
  for (size_t at = 76; at < out.size(); at += 78) out.insert(at, "\r\n");
  return out;
}

std::string Email(std::string_view parts) {
  return "From: dmarc@reporter.example.net\r\nTo: rua@example.com\r\nSubject: Report\r\n"
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
         std::string(parts) + "--b1--\r\n";
}

std::string Part(std::string_view headers, std::string_view body) {
  return "--b1\r\n" + std::string(headers) + "\r\n\r\n" + std::string(body) + "\r\n";
}

std::vector<ErrorCode> Codes(const CollectingHandler& handler) {
  std::vector<ErrorCode> codes;
  for (const auto& error : handler.Errors()) codes.push_back(error.code);
  return codes;
}

TEST(UnpackTest, SniffsPayloadsByContent) {
  EXPECT_EQ(SniffPayload(Gzip("x")), PayloadKind::kGzip);
  EXPECT_EQ(SniffPayload(Zip({{"a.xml", "x"}})), PayloadKind::kZip);
  EXPECT_EQ(SniffPayload(std::string_view("PK\x05\x06\0\0", 6)), PayloadKind::kZip);
  EXPECT_EQ(SniffPayload("\xEF\xBB\xBF\n <feedback/>"), PayloadKind::kXml);
  EXPECT_EQ(SniffPayload("Received: from x\r\n\r\nbody"), PayloadKind::kEmail);
  EXPECT_EQ(SniffPayload("unused"), PayloadKind::kUnknown);
}

TEST(UnpackTest, ReadsMultiMemberGzipAsOneStream) {
  std::string xml = ReportXml();
  size_t half = xml.size() / 2;
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Gzip(xml.substr(0, half)) + Gzip(xml.substr(half)), handler));
  ASSERT_EQ(handler.Accepted().size(), 1U) << ::testing::PrintToString(Codes(handler).size());
  EXPECT_EQ(handler.Accepted()[0]->records.size(), 2U);
  EXPECT_EQ(handler.Accepted()[0]->inflated_bytes, xml.size());
}

TEST(UnpackTest, InflatesLongRunsCompletely) {
  // 300 kB of one byte compress to a few hundred bytes: many output slices
  // come from a single input slice, and none may be lost.
  std::string xml = ReportXml();
  xml.insert(xml.rfind("</feedback>"), std::string(300000, ' '));
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Gzip(xml), handler));
  EXPECT_TRUE(handler.Errors().empty()) << handler.Errors().front().ToString();
  ASSERT_EQ(handler.Accepted().size(), 1U);
  EXPECT_EQ(handler.Accepted()[0]->inflated_bytes, xml.size());
}

TEST(UnpackTest, IgnoresTrailingGarbageAfterGzip) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Gzip(ReportXml()) + std::string("\0\0garbage\x1f", 10), handler));
  EXPECT_EQ(handler.Accepted().size(), 1U);
  EXPECT_TRUE(handler.Errors().empty());
}

TEST(UnpackTest, SaysWhatAGzipOfSomethingElseHolds) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Gzip("unused"), handler));
  EXPECT_TRUE(handler.Accepted().empty());
  ASSERT_EQ(Codes(handler), std::vector<ErrorCode>{ErrorCode::kNotXml});
  const std::string message = handler.Errors()[0].message;
  EXPECT_NE(message.find("inflates to"), std::string::npos) << message;
  EXPECT_NE(message.find("starts \"unused\""), std::string::npos) << message;
}

TEST(UnpackTest, ShowsBinaryBytesEscapedInTheReason) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Gzip(std::string("\x01\xff\"ab", 5)), handler));
  ASSERT_EQ(Codes(handler), std::vector<ErrorCode>{ErrorCode::kNotXml});
  const std::string message = handler.Errors()[0].message;
  EXPECT_NE(message.find(R"(starts "\x01\xff\x22ab")"), std::string::npos) << message;
}

TEST(UnpackTest, RejectsTruncatedGzip) {
  std::string gzip = Gzip(ReportXml("t", 200));
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(gzip.substr(0, gzip.size() - 12), handler));
  EXPECT_TRUE(handler.Accepted().empty());
  ASSERT_EQ(Codes(handler), std::vector<ErrorCode>{ErrorCode::kBadArchive});
  EXPECT_NE(handler.Errors()[0].message.find("truncated"), std::string::npos);
}

TEST(UnpackTest, SkipsZipDirectoryEntries) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Zip({{"reports/", ""}, {"reports/a.xml", ReportXml()}}), handler, Limits(),
                         "upload.zip"));
  ASSERT_EQ(handler.Accepted().size(), 1U);
  EXPECT_EQ(handler.Accepted()[0]->name, "upload.zip/reports/a.xml");
  EXPECT_TRUE(handler.Errors().empty());
}

TEST(UnpackTest, ReadsEachZipMemberAsItsOwnDocument) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Zip({{"a.xml", ReportXml("a", 1)}, {"b.xml", ReportXml("b", 3)}}), handler,
                         Limits(), "two.zip"));
  auto accepted = handler.Accepted();
  ASSERT_EQ(accepted.size(), 2U);
  EXPECT_EQ(accepted[0]->name, "two.zip/a.xml");
  EXPECT_EQ(accepted[0]->header.report_id, "a");
  EXPECT_EQ(accepted[1]->name, "two.zip/b.xml");
  EXPECT_EQ(accepted[1]->records.size(), 3U);
}

TEST(UnpackTest, ZipMemberNamesAreOnlyText) {
  std::vector<ZipMember> members = {{"../../../evil.xml", ReportXml("a", 1)},
                                    {"/abs/evil.xml", ReportXml("b", 1)},
                                    {"C:/evil.xml", ReportXml("c", 1)},
                                    {"..\\..\\evil.xml", ReportXml("d", 1)}};
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Zip(members), handler, Limits(), "slip.zip"));
  auto accepted = handler.Accepted();
  ASSERT_EQ(accepted.size(), 4U);
  EXPECT_EQ(accepted[0]->name, "slip.zip/../../../evil.xml");
  EXPECT_EQ(accepted[1]->name, "slip.zip//abs/evil.xml");
  EXPECT_EQ(accepted[3]->header.report_id, "d");
}

TEST(UnpackTest, BadZipMemberDoesNotSpoilItsSibling) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Zip({{"bad.xml", "unused"}, {"good.xml", ReportXml()}}), handler));
  EXPECT_EQ(handler.Accepted().size(), 1U);
  ASSERT_EQ(handler.rejections.size(), 1U);
  EXPECT_EQ(handler.rejections[0].error.code, ErrorCode::kNotXml);
  EXPECT_EQ(handler.rejections[0].name, "test/bad.xml");
}

TEST(UnpackTest, ReadsArchivesInsideArchives) {
  CollectingHandler handler;
  std::string zip = Zip({{"inner.xml.gz", Gzip(ReportXml())}});
  ASSERT_TRUE(ParseBytes(Gzip(zip), handler, Limits(), "outer.gz"));
  ASSERT_EQ(handler.Accepted().size(), 1U);
  EXPECT_EQ(handler.Accepted()[0]->name, "outer.gz/inner.xml.gz");
}

TEST(UnpackTest, RejectsArchivesNestedTooDeep) {
  std::string payload = ReportXml();
  for (int i = 0; i < 5; ++i) payload = Gzip(payload);
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(payload, handler));
  EXPECT_EQ(Codes(handler), std::vector<ErrorCode>{ErrorCode::kTooDeep});

  Limits deeper;
  deeper.max_nesting_depth = 5;
  CollectingHandler accepted;
  ASSERT_TRUE(ParseBytes(payload, accepted, deeper));
  EXPECT_EQ(accepted.Accepted().size(), 1U);
}

TEST(UnpackTest, StopsACompressionBombByRatio) {
  std::string bomb = ReportXml();
  bomb.insert(bomb.find("<feedback>"), std::string(8 << 20, ' '));
  Limits limits;
  limits.ratio_grace_bytes = 1 << 20;
  limits.max_compression_ratio = 100;
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Gzip(bomb), handler, limits));
  EXPECT_TRUE(handler.Accepted().empty());
  EXPECT_EQ(Codes(handler), std::vector<ErrorCode>{ErrorCode::kRatioExceeded});

  // The same report with the ratio cap relaxed is fine.
  limits.max_compression_ratio = 1e6;
  CollectingHandler relaxed;
  ASSERT_TRUE(ParseBytes(Gzip(bomb), relaxed, limits));
  EXPECT_EQ(relaxed.Accepted().size(), 1U);
}

TEST(UnpackTest, StopsAZipBombByRatioAndSize) {
  std::string bomb = std::string(4 << 20, ' ') + ReportXml();
  Limits limits;
  limits.ratio_grace_bytes = 1 << 20;
  limits.max_compression_ratio = 100;
  CollectingHandler ratio;
  ASSERT_TRUE(ParseBytes(Zip({{"bomb.xml", bomb}}), ratio, limits));
  EXPECT_EQ(Codes(ratio), std::vector<ErrorCode>{ErrorCode::kRatioExceeded});

  limits = Limits();
  limits.max_inflated_bytes = 1 << 20;
  CollectingHandler size;
  ASSERT_TRUE(ParseBytes(Zip({{"bomb.xml", bomb}}), size, limits));
  EXPECT_EQ(Codes(size), std::vector<ErrorCode>{ErrorCode::kTooLarge});
}

TEST(UnpackTest, StopsAtTheInflatedBudgetOfTheWholeEnvelope) {
  const std::string xml = ReportXml("m", 40);
  std::vector<ZipMember> members;
  members.reserve(4);
  for (int i = 0; i < 4; ++i) {
    members.push_back(
        {"r" + std::to_string(i) + ".xml.gz", Gzip(ReportXml(std::to_string(i), 40))});
  }
  Limits limits;
  limits.max_envelope_inflated_bytes = 2 * xml.size() + xml.size() / 2;
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Zip(members), handler, limits, "many.zip"));
  // Members are read in order: two fit, the third passes the budget, and
  // so does every one after it.
  auto accepted = handler.Accepted();
  ASSERT_EQ(accepted.size(), 2U);
  EXPECT_EQ(accepted[0]->header.report_id, "0");
  EXPECT_EQ(accepted[1]->header.report_id, "1");
  EXPECT_EQ(Codes(handler), (std::vector<ErrorCode>{ErrorCode::kTooLarge, ErrorCode::kTooLarge}));
  EXPECT_NE(handler.Errors()[0].message.find("in total"), std::string::npos);

  CollectingHandler unlimited;
  ASSERT_TRUE(ParseBytes(Zip(members), unlimited, Limits(), "many.zip"));
  EXPECT_EQ(unlimited.Accepted().size(), 4U);
}

TEST(UnpackTest, RejectsZipWithTooManyEntries) {
  std::vector<ZipMember> members;
  members.reserve(5);
  for (int i = 0; i < 5; ++i) members.push_back({"r" + std::to_string(i) + ".xml", ReportXml()});
  Limits limits;
  limits.max_zip_entries = 4;
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Zip(members), handler, limits));
  EXPECT_TRUE(handler.Accepted().empty());
  EXPECT_EQ(Codes(handler), std::vector<ErrorCode>{ErrorCode::kTooManyEntries});
}

TEST(UnpackTest, RejectsEmptyAndCorruptZip) {
  // libzip writes nothing for an archive without members; this is the
  // 22-byte end-of-central-directory record such an archive consists of.
  std::string empty_zip = std::string("PK\x05\x06", 4) + std::string(18, '\0');
  CollectingHandler empty;
  ASSERT_TRUE(ParseBytes(empty_zip, empty));
  EXPECT_EQ(Codes(empty), std::vector<ErrorCode>{ErrorCode::kNoReport});

  std::string zip = Zip({{"a.xml", ReportXml("z", 100)}});
  CollectingHandler corrupt;
  ASSERT_TRUE(ParseBytes(zip.substr(0, zip.size() / 2), corrupt));
  EXPECT_EQ(Codes(corrupt), std::vector<ErrorCode>{ErrorCode::kBadArchive});
}

TEST(UnpackTest, RejectsEncryptedZipMember) {
  std::string zip = Zip({{"secret.xml", ReportXml()}}, "password");
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(zip, handler));
  EXPECT_TRUE(handler.Accepted().empty());
  ASSERT_EQ(Codes(handler), std::vector<ErrorCode>{ErrorCode::kBadArchive});
  EXPECT_NE(handler.Errors()[0].message.find("secret.xml"), std::string::npos);
}

TEST(UnpackTest, AcceptsXmlWithUtf8Bom) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes("\xEF\xBB\xBF" + ReportXml(), handler));
  EXPECT_EQ(handler.Accepted().size(), 1U);
  EXPECT_TRUE(handler.Errors().empty());
}

TEST(UnpackTest, SniffsAttachmentsWhateverTheirContentType) {
  std::string parts =
      Part("Content-Type: text/plain; charset=us-ascii", "Here is your report.") +
      Part("Content-Type: text/html; charset=us-ascii", "<html><body>Report</body></html>") +
      Part("Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64",
           Base64(Gzip(ReportXml("gz-as-pdf")))) +
      Part(
          "Content-Type: application/gzip; name=\"b.xml.gz\"\r\nContent-Transfer-Encoding: "
          "base64",
          Base64(Zip({{"b.xml", ReportXml("zip-as-gz")}}))) +
      Part(
          "ContentType: application/gzip\r\nContent-Disposition: attachment; "
          "filename=\"c.xml.gz\"\r\nContent-Transfer-Encoding: base64",
          Base64(Gzip(ReportXml("misspelled"))));
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Email(parts), handler));
  EXPECT_TRUE(handler.Errors().empty()) << handler.Errors().front().ToString();
  auto accepted = handler.Accepted();
  ASSERT_EQ(accepted.size(), 3U);
  EXPECT_EQ(accepted[0]->header.report_id, "gz-as-pdf");
  EXPECT_EQ(accepted[1]->name, "b.xml.gz/b.xml");
  EXPECT_EQ(accepted[2]->header.report_id, "misspelled");
  EXPECT_EQ(accepted[2]->name, "c.xml.gz");
}

TEST(UnpackTest, DecodesBase64WithoutPadding) {
  std::string encoded = Base64(Gzip(ReportXml()));
  while (encoded.ends_with('=')) encoded.pop_back();
  ASSERT_FALSE(encoded.ends_with('='));
  std::string parts = Part(
      "Content-Type: application/octet-stream; name=\"r.gz\"\r\nContent-Transfer-Encoding: base64",
      encoded);
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Email(parts), handler));
  EXPECT_EQ(handler.Accepted().size(), 1U);
  EXPECT_TRUE(handler.Errors().empty()) << handler.Errors().front().ToString();
}

TEST(UnpackTest, RejectsEmailWithoutReport) {
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Email(Part("Content-Type: text/plain", "no report today")), handler,
                         Limits(), "imap:INBOX/1"));
  ASSERT_EQ(handler.rejections.size(), 1U);
  EXPECT_EQ(handler.rejections[0].error.code, ErrorCode::kNoReport);
  EXPECT_EQ(handler.rejections[0].name, "imap:INBOX/1");
  EXPECT_EQ(handler.rejections[0].error.message, "no report attachment found");
}

TEST(UnpackTest, ReadsReportInAttachedEmail) {
  std::string inner = Email(Part("Content-Type: text/xml; name=\"r.xml\"", ReportXml("inner")));
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Email(Part("Content-Type: message/rfc822", inner)), handler));
  ASSERT_EQ(handler.Accepted().size(), 1U);
  EXPECT_EQ(handler.Accepted()[0]->header.report_id, "inner");
}

TEST(UnpackTest, RejectsTooManyMimeParts) {
  std::string parts;
  for (int i = 0; i < 10; ++i) parts += Part("Content-Type: text/plain", "x");
  Limits limits;
  limits.max_mime_parts = 5;
  CollectingHandler handler;
  ASSERT_TRUE(ParseBytes(Email(parts), handler, limits));
  EXPECT_EQ(Codes(handler), std::vector<ErrorCode>{ErrorCode::kTooManyEntries});
}

TEST(UnpackTest, StopsInflatingWhenSinkStops) {
  CollectingHandler handler;
  handler.stop_after_header = true;
  std::string xml = ReportXml("dup", 5000);
  ASSERT_TRUE(ParseBytes(Gzip(xml), handler));
  ASSERT_EQ(handler.documents.size(), 1U);
  EXPECT_TRUE(handler.documents[0].records.empty());
  EXPECT_FALSE(handler.documents[0].error);
  EXPECT_LT(handler.documents[0].inflated_bytes, xml.size());
}

}  // namespace
}  // namespace dmarcd::parser::testing
