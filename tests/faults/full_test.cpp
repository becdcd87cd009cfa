// A full database: [database] max_size (PRAGMA max_page_count) set just
// above the empty schema, and a real small filesystem where one can be
// mounted. At the limit SQLITE_FULL rolls the envelope's
// transaction back whole: the upload gets 503 with Retry-After, `ingest`
// exits 3, /healthz says degraded, reads go on. Once rows are deleted (or
// the limit is raised for a new process) ingest resumes by itself.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "tests/faults/fault_harness.hpp"

namespace dmarcd::faults {
namespace {

namespace json = boost::json;

struct Counts {
  int64_t reports = 0;
  int64_t records = 0;
  int64_t raw_inputs = 0;
  int64_t rejected = 0;
  bool operator==(const Counts&) const = default;
};

Counts CountRows(const fs::path& db) {
  Sqlite sqlite(db);
  return Counts{sqlite.Int("SELECT COUNT(*) FROM reports").value_or(-1),
                sqlite.Int("SELECT COUNT(*) FROM records").value_or(-1),
                sqlite.Int("SELECT COUNT(*) FROM raw_inputs").value_or(-1),
                sqlite.Int("SELECT COUNT(*) FROM rejected").value_or(-1)};
}

// Reports whose record rows are not all there: a partial store.
int64_t PartialReports(const fs::path& db) {
  Sqlite sqlite(db);
  return sqlite
      .Int(
          "SELECT COUNT(*) FROM reports r WHERE r.records != "
          "(SELECT COUNT(*) FROM records WHERE report_id = r.id)")
      .value_or(-1);
}

int64_t DatabaseBytes(const fs::path& db) {
  Sqlite sqlite(db);
  return sqlite.Int("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")
      .value_or(-1);
}

std::vector<fs::path> Files(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(DatabaseFullTest, UploadGets503NothingPartialAndResumesOnceRowsAreDeleted) {
  TempDir dir("dmarcd-full");
  const fs::path db = dir.Path() / "dmarcd.db";
  const std::string token = AddIngestToken(db, dir.Path());
  ASSERT_TRUE(GenerateReports(dir.Path() / "reports", 60, 40, "xml", "full-upload"));
  const std::vector<fs::path> files = Files(dir.Path() / "reports");
  const int64_t limit = DatabaseBytes(db) + int64_t{128} * 1024;
  Server server(db, dir.Path(), {{"DMARCD_DATABASE_MAX_SIZE", std::to_string(limit)}});
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;

  // Upload until the database is full.
  size_t full_at = files.size();
  HttpResult refused;
  Counts before_refusal;
  for (size_t i = 0; i < files.size(); ++i) {
    before_refusal = CountRows(db);
    const HttpResult result =
        Http(server.Port(), "POST", "/api/v1/reports", ReadFile(files[i]), token);
    if (result.status == 201) continue;
    refused = result;
    full_at = i;
    break;
  }
  ASSERT_LT(full_at, files.size()) << "the database never filled up";
  ASSERT_GT(full_at, 0u) << "not even one report fitted";
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.headers.find("Retry-After:"), std::string::npos) << refused.headers;
  EXPECT_EQ(json::parse(refused.body).at("error").at("code").as_string(), "database")
      << refused.body;

  // Rolled back whole: not one row more than before the refused upload.
  EXPECT_EQ(CountRows(db), before_refusal);
  EXPECT_EQ(PartialReports(db), 0);
  EXPECT_EQ(IntegrityCheck(db), "ok");
  EXPECT_LE(DatabaseBytes(db), limit + 4096);

  const HttpResult health = Http(server.Port(), "GET", "/healthz");
  EXPECT_EQ(health.status, 503);
  const json::value health_body = json::parse(health.body);
  EXPECT_EQ(health_body.at("status").as_string(), "degraded") << health.body;
  EXPECT_NE(std::string(health_body.at("checks").at("writer").as_string()).find("full"),
            std::string::npos)
      << health.body;
  EXPECT_EQ(Http(server.Port(), "GET", "/api/v1/reports").status, 200);

  // Still full: the same answer, nothing stored.
  EXPECT_EQ(Http(server.Port(), "POST", "/api/v1/reports", ReadFile(files[full_at]), token).status,
            503);
  EXPECT_EQ(CountRows(db), before_refusal);

  // An operator deletes the reports and the envelopes they came in.
  {
    Sqlite sqlite(db);
    std::string sql_error;
    ASSERT_TRUE(
        sqlite.Exec("PRAGMA foreign_keys = ON; BEGIN; DELETE FROM reports; "
                    "DELETE FROM raw_inputs; COMMIT;",
                    &sql_error))
        << sql_error;
  }

  // The next upload goes through, on the same server, and health is back.
  const HttpResult resumed =
      Http(server.Port(), "POST", "/api/v1/reports", ReadFile(files[full_at]), token);
  EXPECT_EQ(resumed.status, 201) << resumed.body;
  EXPECT_EQ(Http(server.Port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(PartialReports(db), 0);
  EXPECT_EQ(IntegrityCheck(db), "ok");
  EXPECT_EQ(server.Stop(), 0);
  std::printf("database full: limit_bytes=%lld reports_before_full=%zu\n",
              static_cast<long long>(limit), full_at);
}

// `dmarcd ingest` at the limit: what fits is stored whole, the rest is
// left unstored (exit 3); a later run with the limit raised stores the
// rest, each report once.
TEST(DatabaseFullTest, IngestStoresWhatFitsAndTheRestOnceTheLimitIsRaised) {
  TempDir dir("dmarcd-full-ingest");
  const fs::path db = dir.Path() / "dmarcd.db";
  const fs::path reports = dir.Path() / "reports";
  ASSERT_TRUE(GenerateReports(reports, 12, 40, "gz", "full-ingest"));
  ASSERT_EQ(RunDmarcd({"migrate", "--db", db.string()}, dir.Path()).exit_code, 0);
  const std::string limit = std::to_string(DatabaseBytes(db) + int64_t{96} * 1024);

  const RunResult full = RunDmarcd({"ingest", "--db", db.string(), reports.string()}, dir.Path(),
                                   {{"DMARCD_DATABASE_MAX_SIZE", limit}});
  EXPECT_EQ(full.exit_code, 3) << full.out << full.err;
  EXPECT_NE(full.err.find("full"), std::string::npos) << full.err;
  const Counts partial = CountRows(db);
  EXPECT_GT(partial.reports, 0);
  EXPECT_LT(partial.reports, 12);
  EXPECT_EQ(partial.rejected, 0);
  EXPECT_EQ(PartialReports(db), 0);
  EXPECT_EQ(IntegrityCheck(db), "ok");

  const RunResult raised = RunDmarcd({"ingest", "--db", db.string(), reports.string()}, dir.Path(),
                                     {{"DMARCD_DATABASE_MAX_SIZE", "0"}});
  EXPECT_EQ(raised.exit_code, 0) << raised.err;
  const StoredReports stored = ReadStoredReports(db);
  EXPECT_EQ(stored.rows, 12);
  EXPECT_EQ(stored.keys.size(), 12u);
  EXPECT_EQ(PartialReports(db), 0);
}

// A real small filesystem (a 4 MiB tmpfs, when this process may mount
// one: root outside a locked-down container) that the database fills:
// SQLite's SQLITE_FULL comes from the disk now, not from max_page_count.
// Once a file beside the database is deleted, uploads go through again on
// the same server. Skipped where mounting is not allowed.
TEST(DatabaseFullTest, RealFilesystemFillsUpAndIngestResumesWhenSpaceIsFreed) {
  TempDir dir("dmarcd-tmpfs");
  const fs::path mount_point = dir.Path() / "small";
  fs::create_directories(mount_point);
  // 4 MiB: the empty schema takes about 0.7 MiB in 16 KiB pages, and each
  // commit a few hundred KiB of WAL.
  if (mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=4m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    fs::path path;
    ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
  } unmount{mount_point};

  const fs::path db = mount_point / "dmarcd.db";
  const std::string token = AddIngestToken(db, dir.Path());
  // Space an operator can free later.
  WriteFile(mount_point / "ballast", std::string(size_t{1024} * 1024, 'x'));
  ASSERT_TRUE(GenerateReports(dir.Path() / "reports", 60, 40, "xml", "tmpfs-upload"));
  const std::vector<fs::path> files = Files(dir.Path() / "reports");
  Server server(db, dir.Path());
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;

  size_t full_at = files.size();
  Counts before_refusal;
  for (size_t i = 0; i < files.size(); ++i) {
    before_refusal = CountRows(db);
    const HttpResult result =
        Http(server.Port(), "POST", "/api/v1/reports", ReadFile(files[i]), token);
    if (result.status == 201) continue;
    EXPECT_EQ(result.status, 503) << result.body;
    full_at = i;
    break;
  }
  ASSERT_LT(full_at, files.size()) << "the filesystem never filled up";
  EXPECT_EQ(CountRows(db), before_refusal);
  EXPECT_EQ(PartialReports(db), 0);
  EXPECT_EQ(Http(server.Port(), "GET", "/healthz").status, 503);
  EXPECT_EQ(Http(server.Port(), "GET", "/api/v1/reports").status, 200);

  fs::remove(mount_point / "ballast");
  const HttpResult resumed =
      Http(server.Port(), "POST", "/api/v1/reports", ReadFile(files[full_at]), token);
  EXPECT_EQ(resumed.status, 201) << resumed.body;
  EXPECT_EQ(Http(server.Port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(server.Stop(), 0);
  EXPECT_EQ(IntegrityCheck(db), "ok");
  EXPECT_EQ(PartialReports(db), 0);
  std::printf("tmpfs full: reports_before_full=%zu\n", full_at);
}

}  // namespace
}  // namespace dmarcd::faults
