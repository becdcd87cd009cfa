// The same report through 8 parallel uploads and a `dmarcd ingest` of its
// own (another process on the same database) at once, many times: stored
// exactly once every time, and every other channel answers "duplicate"
// (200), never 500.
//
// DMARCD_FAULTS_LONG=1 runs 1,000 trials instead of 50.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/faults/fault_harness.hpp"

namespace dmarcd::faults {
namespace {

namespace json = boost::json;

// The control report with a report id of the trial's own, so that each
// trial starts with a report the database has never seen.
std::string ReportForTrial(const std::string& control, int trial) {
  std::string report = control;
  const std::string id = "control-0001";
  report.replace(report.find(id), id.size(), "concurrent-" + std::to_string(trial));
  return report;
}

TEST(ConcurrentDuplicateTest, StoredOnceThroughEightUploadsAndAnIngest) {
  TempDir dir("dmarcd-duplicates");
  const fs::path db = dir.Path() / "dmarcd.db";
  const std::string token = AddIngestToken(db, dir.Path());
  Server server(db, dir.Path());
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  const std::string control = ReadFile(DataDir() / "control_valid_aggregate.xml");
  ASSERT_NE(control.find("control-0001"), std::string::npos);

  const int trials = Repetitions(50, 1000);
  std::mt19937 random(8);
  std::uniform_int_distribution<int> delay_ms(0, 400);
  constexpr int kUploads = 8;
  std::map<long, int> statuses;
  int ingest_stored = 0;
  int ingest_duplicate = 0;
  int stored_once = 0;
  for (int trial = 0; trial < trials; ++trial) {
    const std::string report = ReportForTrial(control, trial);
    const fs::path file = dir.Path() / "report.xml";
    WriteFile(file, report);

    // The ingest process starts first and the uploads after a random part
    // of its start-up, so that either side wins the race in some trials.
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<HttpResult> results(kUploads);
    std::vector<std::thread> uploads;
    uploads.reserve(kUploads);
    for (int i = 0; i < kUploads; ++i) {
      uploads.emplace_back([&, i] {
        ++ready;
        while (!go) std::this_thread::yield();
        results[i] = Http(server.Port(), "POST", "/api/v1/reports", report, token);
      });
    }
    while (ready < kUploads) std::this_thread::yield();
    const fs::path out = dir.Path() / "ingest.out";
    const pid_t pid =
        SpawnDmarcd({"ingest", "--db", db.string(), file.string()}, out, dir.Path() / "ingest.err");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
    go = true;
    RunResult ingest;
    ingest.exit_code = WaitExit(pid);
    ingest.out = ReadFile(out);
    ingest.err = ReadFile(dir.Path() / "ingest.err");
    for (std::thread& upload : uploads) upload.join();

    int created = 0;
    for (const HttpResult& result : results) {
      ++statuses[result.status];
      EXPECT_TRUE(result.status == 201 || result.status == 200 || result.status == 409)
          << "trial " << trial << ": " << result.status << " " << result.body;
      created += result.status == 201 ? 1 : 0;
      if (result.status == 200) {
        EXPECT_EQ(json::parse(result.body).at("status").as_string(), "duplicate");
      }
    }
    EXPECT_EQ(ingest.exit_code, 0) << ingest.err;
    const bool ingest_stored_it = ingest.out.find(" stored=1 ") != std::string::npos;
    const bool ingest_found_it = ingest.out.find(" duplicate=1 ") != std::string::npos;
    EXPECT_NE(ingest_stored_it, ingest_found_it) << ingest.out;
    ingest_stored += ingest_stored_it ? 1 : 0;
    ingest_duplicate += ingest_found_it ? 1 : 0;
    EXPECT_EQ(created + (ingest_stored_it ? 1 : 0), 1) << "trial " << trial;

    Sqlite sqlite(db);
    const auto rows = sqlite.Int("SELECT COUNT(*) FROM reports WHERE report_id = 'concurrent-" +
                                 std::to_string(trial) + "'");
    EXPECT_EQ(rows, 1) << "trial " << trial;
    stored_once += rows == 1 ? 1 : 0;
  }
  EXPECT_EQ(stored_once, trials);
  EXPECT_EQ(statuses.count(500), 0u);
  EXPECT_EQ(server.Stop(), 0);

  std::printf(
      "concurrent duplicates: trials=%d stored_once=%d ingest_stored=%d "
      "ingest_duplicate=%d",
      trials, stored_once, ingest_stored, ingest_duplicate);
  for (const auto& [status, count] : statuses) std::printf(" http_%ld=%d", status, count);
  std::printf("\n");
}

}  // namespace
}  // namespace dmarcd::faults
