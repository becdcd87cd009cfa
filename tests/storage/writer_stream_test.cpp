// The Writer's paths for speed (issue #7): group commit (BeginBatch,
// CommitBatch), inputs read as a stream (IngestSource) and envelopes
// prepared ahead (PrepareEnvelope), which must store exactly what Ingest
// stores.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "storage/prepared_envelope.hpp"
#include "storage/tokens.hpp"
#include "storage/writer.hpp"
#include "temp_database.hpp"

namespace dmarcd::storage {
namespace {

using testing::QueryInt;
using testing::QueryText;
using testing::TempFolder;

std::string ReadData(const std::string& name) {
  const std::filesystem::path path = std::filesystem::path(DMARCD_TEST_DATA_DIR) / "storage" / name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

std::string Gunzip(const std::string& gzip) {
  z_stream stream{};
  inflateInit2(&stream, 15 + 16);
  std::string out;
  std::string buffer(65536, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gzip.data()));
  stream.avail_in = static_cast<uInt>(gzip.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer.data());
    stream.avail_out = static_cast<uInt>(buffer.size());
    rc = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer.data(), buffer.size() - stream.avail_out);
  }
  inflateEnd(&stream);
  EXPECT_EQ(rc, Z_STREAM_END);
  return out;
}

// `data` as a gzip member of stored (uncompressed) blocks.
std::string GzipStored(const std::string& data) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, Z_NO_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&stream, data.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// Bytes in memory served in small, odd-sized chunks, as a file would be;
// it can be told to fail on a given pass.
class StringSource final : public parser::EnvelopeSource {
 public:
  StringSource(std::string bytes, std::string origin)
      : bytes_(std::move(bytes)), origin_(std::move(origin)) {}

  const std::string& Origin() const override { return origin_; }
  uint64_t Size() const override { return bytes_.size(); }
  Result<void> Rewind() override {
    ++passes_;
    at_ = 0;
    return {};
  }
  Result<size_t> Read(std::span<char> buffer) override {
    if (passes_ == fail_on_pass_) return MakeError(ErrorCode::kIo, "the disk went away");
    const size_t n = std::min({buffer.size(), bytes_.size() - at_, size_t{1000}});
    std::copy_n(bytes_.data() + at_, n, buffer.data());
    at_ += n;
    return n;
  }

  int passes_ = 0;
  int fail_on_pass_ = -1;

 private:
  std::string bytes_;
  std::string origin_;
  size_t at_ = 0;
};

class WriterStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Database::Open(path_);
    ASSERT_TRUE(opened) << opened.error().ToString();
    db_ = std::move(*opened);
    writer_ = std::make_unique<Writer>(*db_, parser::Limits{});
  }

  int64_t Count(const std::string& table) {
    return QueryInt(*db_, "SELECT COUNT(*) FROM " + table);
  }

  std::string RawBytes(int64_t id) {
    return QueryText(*db_, "SELECT bytes FROM raw_inputs WHERE id = " + std::to_string(id));
  }

  TempFolder folder_;
  std::string path_ = folder_.File("dmarcd.db");
  std::unique_ptr<Database> db_;
  std::unique_ptr<Writer> writer_;
};

TEST_F(WriterStreamTest, StreamedGzipIsStoredAndArchivedAsReceived) {
  const std::string gzip = ReadData("google_20-records_parsedmarc.xml.gz");
  StringSource source(gzip, "file:google.xml.gz");

  auto outcome = writer_->IngestSource(source);
  ASSERT_TRUE(outcome) << outcome.error().ToString();
  ASSERT_EQ(outcome->parts.size(), 1U);
  EXPECT_EQ(outcome->parts[0].status, PartStatus::kStored);
  EXPECT_EQ(outcome->Records(), 20U);
  EXPECT_EQ(outcome->parts[0].messages, 3047U);
  EXPECT_EQ(Count("records"), 20);

  EXPECT_EQ(QueryText(*db_, "SELECT compression FROM raw_inputs"), "none");
  EXPECT_EQ(QueryText(*db_, "SELECT sha256 FROM raw_inputs"),
            "fecbc1aace22250948a9df8a47b90a8f45aaa84d091d7006a5fc2d3915033dab");
  EXPECT_EQ(RawBytes(outcome->raw_pk), gzip);
}

TEST_F(WriterStreamTest, StreamedXmlIsArchivedCompressedAndStoredLikeIngest) {
  const std::string xml = ReadData("accurateplastics_large-2286-records_parsedmarc.xml");
  StringSource source(xml, "file:large.xml");

  auto outcome = writer_->IngestSource(source);
  ASSERT_TRUE(outcome) << outcome.error().ToString();
  EXPECT_EQ(outcome->Records(), 2286U);
  EXPECT_EQ(outcome->parts[0].messages, 2286U);
  EXPECT_EQ(QueryText(*db_, "SELECT compression FROM raw_inputs"), "gzip");
  EXPECT_EQ(QueryInt(*db_, "SELECT size FROM raw_inputs"), static_cast<int64_t>(xml.size()));
  EXPECT_EQ(QueryText(*db_, "SELECT sha256 FROM raw_inputs"), Sha256Hex(xml));
  EXPECT_EQ(Gunzip(RawBytes(outcome->raw_pk)), xml);

  // The same bytes through Ingest are the same envelope and the same report.
  auto again = writer_->Ingest(parser::Envelope{xml, "file:large-again.xml"});
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->raw_pk, outcome->raw_pk);
  EXPECT_EQ(again->Overall(), PartStatus::kDuplicate);
  EXPECT_EQ(Count("raw_inputs"), 1);
  EXPECT_EQ(Count("records"), 2286);
}

TEST_F(WriterStreamTest, StreamedInputSeenBeforeIsADuplicate) {
  const std::string gzip = ReadData("google_20-records_parsedmarc.xml.gz");
  StringSource first(gzip, "file:a.xml.gz");
  StringSource second(gzip, "file:b.xml.gz");
  ASSERT_TRUE(writer_->IngestSource(first));

  auto outcome = writer_->IngestSource(second);
  ASSERT_TRUE(outcome) << outcome.error().ToString();
  EXPECT_EQ(outcome->Overall(), PartStatus::kDuplicate);
  EXPECT_EQ(Count("raw_inputs"), 1);
  EXPECT_EQ(Count("reports"), 1);
}

TEST_F(WriterStreamTest, StreamedMalformedReportIsRejectedWithItsBytes) {
  const std::string xml = ReadData("synthetic_unclosed-element-malformed_kimon.xml");
  StringSource source(xml, "file:bad.xml");

  auto outcome = writer_->IngestSource(source);
  ASSERT_TRUE(outcome) << outcome.error().ToString();
  ASSERT_EQ(outcome->parts.size(), 1U);
  EXPECT_EQ(outcome->parts[0].status, PartStatus::kRejected);
  ASSERT_TRUE(outcome->parts[0].error);
  EXPECT_EQ(outcome->parts[0].error->code, ErrorCode::kMalformedXml);
  EXPECT_EQ(Count("reports"), 0);

  // The rejected row keeps the archived copy (the gzip of the input), which
  // reparsing reads like the input itself.
  const std::string kept = QueryText(*db_, "SELECT bytes FROM rejected");
  EXPECT_EQ(Gunzip(kept), xml);
  EXPECT_EQ(QueryText(*db_, "SELECT sha256 FROM rejected"), Sha256Hex(kept));
  EXPECT_EQ(QueryInt(*db_, "SELECT raw_input_id FROM rejected"), outcome->raw_pk);
  EXPECT_EQ(QueryText(*db_, "SELECT code FROM rejected"), "malformed_xml");
}

TEST_F(WriterStreamTest, ReadErrorWhileParsingStoresNothing) {
  StringSource source(ReadData("google_20-records_parsedmarc.xml.gz"), "file:gone.xml.gz");
  source.fail_on_pass_ = 3;  // hash, archive copy, then the parser's pass

  auto outcome = writer_->IngestSource(source);
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().code, ErrorCode::kIo);
  EXPECT_EQ(Count("raw_inputs"), 0);
  EXPECT_EQ(Count("reports"), 0);
  EXPECT_EQ(Count("rejected"), 0);
}

TEST_F(WriterStreamTest, BatchStoresEveryEnvelopeAtTheCommit) {
  ASSERT_TRUE(writer_->BeginBatch());
  auto good = writer_->Ingest({ReadData("google_20-records_parsedmarc.xml.gz"), "file:g"});
  auto bad = writer_->Ingest({ReadData("synthetic_not-a-report_kimon.xml"), "file:n"});
  auto other =
      writer_->Ingest({ReadData("fastmail_four-records-multi-dkim_stalwart.xml"), "file:f"});
  ASSERT_TRUE(good && bad && other);
  EXPECT_EQ(good->Overall(), PartStatus::kStored);
  EXPECT_EQ(bad->Overall(), PartStatus::kRejected);
  EXPECT_EQ(other->Overall(), PartStatus::kStored);

  // Another connection sees nothing before the commit.
  auto reader = Database::Open(path_);
  ASSERT_TRUE(reader);
  EXPECT_EQ(QueryInt(**reader, "SELECT COUNT(*) FROM reports"), 0);

  ASSERT_TRUE(writer_->CommitBatch());
  EXPECT_EQ(QueryInt(**reader, "SELECT COUNT(*) FROM reports"), 2);
  EXPECT_EQ(QueryInt(**reader, "SELECT COUNT(*) FROM records"), 24);
  EXPECT_EQ(QueryInt(**reader, "SELECT COUNT(*) FROM rejected"), 1);
  EXPECT_EQ(QueryInt(**reader, "SELECT COUNT(*) FROM raw_inputs"), 3);
}

TEST_F(WriterStreamTest, AbandonedBatchStoresNothingAndTheWriterGoesOn) {
  ASSERT_TRUE(writer_->BeginBatch());
  ASSERT_TRUE(writer_->Ingest({ReadData("google_20-records_parsedmarc.xml.gz"), "file:g"}));
  EXPECT_FALSE(writer_->BeginBatch());
  writer_->AbandonBatch();
  EXPECT_EQ(Count("reports"), 0);
  EXPECT_EQ(Count("raw_inputs"), 0);

  // Outside a batch each envelope commits alone again.
  auto outcome = writer_->Ingest({ReadData("google_20-records_parsedmarc.xml.gz"), "file:g"});
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->Overall(), PartStatus::kStored);
  EXPECT_FALSE(writer_->CommitBatch());
  EXPECT_EQ(Count("reports"), 1);
}

TEST_F(WriterStreamTest, StreamedInputJoinsABatch) {
  ASSERT_TRUE(writer_->BeginBatch());
  StringSource source(ReadData("google_20-records_parsedmarc.xml.gz"), "file:g");
  auto streamed = writer_->IngestSource(source);
  auto held =
      writer_->Ingest({ReadData("fastmail_four-records-multi-dkim_stalwart.xml"), "file:f"});
  ASSERT_TRUE(streamed && held);
  ASSERT_TRUE(writer_->CommitBatch());
  EXPECT_EQ(Count("records"), 24);
}

TEST_F(WriterStreamTest, ArchivingALargeInputTakesNoMemoryOfItsSize) {
  // 24 MiB that inflate to noise: archived in raw_inputs, then rejected,
  // and the rejected row gets a copy. Both blobs are written through
  // incremental blob I/O; since migration 0006 SQLite no longer builds
  // either in memory first (it did, twice over, with `bytes` mid-row).
  std::string noise(std::size_t{24} << 20, '\0');
  std::mt19937_64 random(7);
  for (size_t i = 0; i + 8 <= noise.size(); i += 8) {
    const uint64_t word = random();
    std::memcpy(noise.data() + i, &word, sizeof word);
  }
  const std::string gzip = GzipStored(noise);
  noise = std::string();
  StringSource source(gzip, "file:noise.xml.gz");

  sqlite3_int64 used = 0;
  sqlite3_int64 highest = 0;
  sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &used, &highest, 1);
  auto outcome = writer_->IngestSource(source);
  sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &used, &highest, 0);

  ASSERT_TRUE(outcome) << outcome.error().ToString();
  EXPECT_EQ(outcome->Overall(), PartStatus::kRejected);
  EXPECT_EQ(QueryInt(*db_, "SELECT size FROM raw_inputs"), static_cast<int64_t>(gzip.size()));
  EXPECT_EQ(QueryText(*db_, "SELECT sha256 FROM raw_inputs"), Sha256Hex(gzip));
  EXPECT_EQ(QueryText(*db_, "SELECT sha256 FROM rejected"), Sha256Hex(gzip));
  EXPECT_EQ(QueryInt(*db_, "SELECT length(bytes) FROM rejected"),
            static_cast<int64_t>(gzip.size()));
  // The page cache (4 MiB) and the statements, not 48 MiB of blobs.
  EXPECT_LT(highest, sqlite3_int64{8} << 20);
}

TEST_F(WriterStreamTest, MigrationSixPutsTheArchiveBytesLastAndKeepsEveryRow) {
  ASSERT_TRUE(writer_->Ingest({ReadData("google_20-records_parsedmarc.xml.gz"), "file:g"}));
  ASSERT_TRUE(writer_->Ingest({ReadData("synthetic_not-a-report_kimon.xml"), "file:n"}));
  const std::string raw_rows =
      "SELECT group_concat(id || sha256 || size || compression || origin || received_at || "
      "hex(bytes), '|') FROM (SELECT * FROM raw_inputs ORDER BY id)";
  const std::string rejected_rows =
      "SELECT group_concat(id || received_at || origin || name || code || message || size || "
      "sha256 || raw_input_id || hex(bytes), '|') FROM (SELECT * FROM rejected ORDER BY id)";
  const std::string raw = QueryText(*db_, raw_rows);
  const std::string rejected = QueryText(*db_, rejected_rows);
  ASSERT_EQ(Count("raw_inputs"), 2);
  ASSERT_EQ(Count("rejected"), 1);

  // The tables as schema 5 had them, `bytes` in the middle of the row.
  writer_.reset();
  ASSERT_TRUE(db_->Exec(
      "PRAGMA foreign_keys = OFF; BEGIN; "
      "CREATE TABLE raw_v5 (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, size INTEGER "
      "NOT NULL, compression TEXT NOT NULL, bytes BLOB NOT NULL, origin TEXT NOT NULL, "
      "received_at INTEGER NOT NULL); "
      "INSERT INTO raw_v5 SELECT id, sha256, size, compression, bytes, origin, received_at "
      "FROM raw_inputs; DROP TABLE raw_inputs; ALTER TABLE raw_v5 RENAME TO raw_inputs; "
      "CREATE TABLE rejected_v5 (id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, origin "
      "TEXT NOT NULL, name TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, size "
      "INTEGER NOT NULL, sha256 TEXT NOT NULL UNIQUE, bytes BLOB NOT NULL, raw_input_id INTEGER "
      "REFERENCES raw_inputs (id), recovered_at INTEGER); "
      "INSERT INTO rejected_v5 SELECT id, received_at, origin, name, code, message, size, "
      "sha256, bytes, raw_input_id, recovered_at FROM rejected; DROP TABLE rejected; "
      "ALTER TABLE rejected_v5 RENAME TO rejected; "
      "CREATE INDEX rejected_by_received_at ON rejected (received_at); "
      "PRAGMA user_version = 5; COMMIT; PRAGMA foreign_keys = ON"));
  ASSERT_EQ(QueryText(*db_, "SELECT name FROM pragma_table_info('raw_inputs') WHERE cid = 4"),
            "bytes");
  db_.reset();

  auto reopened = Database::Open(path_);
  ASSERT_TRUE(reopened) << reopened.error().ToString();
  db_ = std::move(*reopened);
  EXPECT_EQ(QueryInt(*db_, "PRAGMA user_version"), 6);
  for (const std::string table : {"raw_inputs", "rejected"}) {
    EXPECT_EQ(QueryText(*db_, "SELECT name FROM pragma_table_info('" + table +
                                  "') ORDER BY cid DESC LIMIT 1"),
              "bytes")
        << table;
  }
  EXPECT_EQ(QueryText(*db_, raw_rows), raw);
  EXPECT_EQ(QueryText(*db_, rejected_rows), rejected);
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
  EXPECT_EQ(QueryInt(*db_, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(QueryInt(*db_,
                     "SELECT COUNT(*) FROM reports r JOIN raw_inputs x ON "
                     "x.id = r.raw_input_id"),
            1);
  EXPECT_EQ(QueryInt(*db_,
                     "SELECT COUNT(*) FROM sqlite_schema WHERE name = "
                     "'rejected_by_received_at'"),
            1);

  // And the writer goes on, on the new tables.
  writer_ = std::make_unique<Writer>(*db_, parser::Limits{});
  auto more =
      writer_->Ingest({ReadData("fastmail_four-records-multi-dkim_stalwart.xml"), "file:f"});
  ASSERT_TRUE(more) << more.error().ToString();
  EXPECT_EQ(more->Overall(), PartStatus::kStored);
  EXPECT_EQ(Count("raw_inputs"), 3);
}

// Every stored row of `db` that does not depend on the clock, as text:
// what ingesting the same envelopes must make the same way.
std::string StoredRows(Database& db) {
  struct Query {
    const char* table;
    const char* columns;
    const char* order;
  };
  const Query queries[] = {
      {"raw_inputs", "sha256, size, compression, hex(bytes), origin", "id"},
      {"reports", "reporter_key, org_name, report_id, domain, date_begin, records, raw_input_id",
       "id"},
      {"records", "id, report_id, seq, source_ip, count, disposition, header_from", "id"},
      {"dkim_results", "*", "record_id, seq"},
      {"spf_results", "*", "record_id, seq"},
      {"report_days", "*", "report_id, day"},
      {"rejected", "origin, name, code, message, size, sha256, hex(bytes)", "id"},
      {"source_days", "*", "domain, day, source_ip"},
      {"source_reports", "*", "domain, source_ip, date_begin, report_id"},
      {"domain_days", "*", "domain, day"},
      {"reporter_days", "*", "domain, day, reporter_key"},
  };
  std::string rows;
  for (const Query& query : queries) {
    const std::string sql = std::string("SELECT ") + query.columns + " FROM " + query.table +
                            " ORDER BY " + query.order;
    sqlite3_stmt* statement = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db.Handle(), sql.c_str(), -1, &statement, nullptr), SQLITE_OK)
        << sql;
    rows += sql;
    rows += '\n';
    while (sqlite3_step(statement) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(statement); ++c) {
        const auto* text = sqlite3_column_text(statement, c);
        rows += text != nullptr ? reinterpret_cast<const char*>(text) : "NULL";
        rows += '|';
      }
      rows += '\n';
    }
    sqlite3_finalize(statement);
  }
  return rows;
}

TEST_F(WriterStreamTest, Issue7PreparedEnvelopesAreStoredAsIngestStoresThem) {
  const std::vector<parser::Envelope> envelopes = {
      {ReadData("google_20-records_parsedmarc.xml.gz"), "file:google.xml.gz"},
      {ReadData("case01_uncompressed-xml-attachment.eml"), "file:case01.eml"},
      {ReadData("outlook-enterprise_zip_avvertix.zip"), "file:outlook.zip"},
      {ReadData("fastmail_four-records-multi-dkim_stalwart.xml"), "file:fastmail.xml"},
      {ReadData("synthetic_unclosed-element-malformed_kimon.xml"), "file:malformed.xml"},
      {ReadData("synthetic_not-a-report_kimon.xml"), "file:not-a-report.xml"},
      // The same report again: a duplicate either way.
      {ReadData("google_20-records_parsedmarc.xml.gz"), "file:google-again.xml.gz"},
  };
  const parser::Limits limits;
  auto prepared_db = Database::Open(folder_.File("prepared.db"));
  ASSERT_TRUE(prepared_db) << prepared_db.error().ToString();
  Writer prepared_writer(**prepared_db, limits);

  for (const parser::Envelope& envelope : envelopes) {
    auto plain = writer_->Ingest(envelope);
    ASSERT_TRUE(plain) << plain.error().ToString();
    const auto prepared = PrepareEnvelope(envelope, limits, 5000);
    ASSERT_TRUE(prepared) << envelope.origin;
    EXPECT_EQ(prepared->sha256, Sha256Hex(envelope.bytes));
    auto replayed = prepared_writer.Ingest(envelope, &*prepared);
    ASSERT_TRUE(replayed) << replayed.error().ToString();

    ASSERT_EQ(replayed->parts.size(), plain->parts.size()) << envelope.origin;
    for (size_t i = 0; i < plain->parts.size(); ++i) {
      EXPECT_EQ(replayed->parts[i].status, plain->parts[i].status) << envelope.origin;
      EXPECT_EQ(replayed->parts[i].records, plain->parts[i].records) << envelope.origin;
      EXPECT_EQ(replayed->parts[i].error.has_value(), plain->parts[i].error.has_value());
    }
  }
  EXPECT_EQ(Count("reports"), 4);
  EXPECT_EQ(Count("rejected"), 2);
  EXPECT_EQ(StoredRows(**prepared_db), StoredRows(*db_));
}

TEST_F(WriterStreamTest, Issue7FailureReportsAndLongReportsAreNotPrepared) {
  const parser::Limits limits;
  const std::string arf = ReadData("../failure/corpus/linkedin_ruf_parsedmarc.eml");
  ASSERT_FALSE(arf.empty());
  EXPECT_FALSE(PrepareEnvelope(parser::Envelope{arf, "file:ruf.eml"}, limits, 5000));

  // More records than the caller allows: parsed by the writer instead.
  const std::string google = ReadData("google_20-records_parsedmarc.xml.gz");
  EXPECT_FALSE(PrepareEnvelope(parser::Envelope{google, "file:google.xml.gz"}, limits, 19));
  const auto prepared = PrepareEnvelope(parser::Envelope{google, "file:google.xml.gz"}, limits, 20);
  ASSERT_TRUE(prepared);
  EXPECT_TRUE(prepared->compressed);
  EXPECT_TRUE(prepared->gzipped.empty());

  // Uncompressed input comes with its archive copy, the gzip of its bytes.
  const std::string xml = ReadData("fastmail_four-records-multi-dkim_stalwart.xml");
  const auto plain = PrepareEnvelope(parser::Envelope{xml, "file:fastmail.xml"}, limits, 5000);
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->compressed);
  EXPECT_EQ(Gunzip(plain->gzipped), xml);
}

}  // namespace
}  // namespace dmarcd::storage
