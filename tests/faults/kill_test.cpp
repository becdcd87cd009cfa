// kill -9 of `dmarcd ingest` and `dmarcd serve` at random moments
// (hostile/README.md, "Scenarios that are not files"): after every restart
// the database passes PRAGMA integrity_check, everything acknowledged is
// there, and in the end every report is stored exactly once.
//
// DMARCD_FAULTS_LONG=1 runs 1,000 ingest cycles instead of 200, and 50
// serve cycles instead of 10.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/faults/fault_harness.hpp"

namespace dmarcd::faults {
namespace {

namespace json = boost::json;

std::string SqlQuote(const std::string& text) {
  std::string out = "'";
  for (const char ch : text) {
    out += ch;
    if (ch == '\'') out += '\'';
  }
  return out + "'";
}

// The value of key="..." or key=word in one line of `ingest -v`.
std::string Field(const std::string& line, const std::string& key) {
  const size_t at = line.find(" " + key + "=");
  if (at == std::string::npos) return "";
  size_t start = at + key.size() + 2;
  if (start < line.size() && line[start] == '"') {
    const size_t end = line.find('"', start + 1);
    return line.substr(start + 1, end - start - 1);
  }
  return line.substr(start, line.find(' ', start) - start);
}

// The reports `ingest -v` said were committed (stored, or there already):
// "report_id|domain" each. A line cut short by the kill is not counted.
std::vector<std::string> Acknowledged(const std::string& out) {
  std::vector<std::string> acknowledged;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (lines.eof()) break;  // no newline: the kill came mid-line
    const std::string outcome = Field(line, "outcome");
    if (outcome != "stored" && outcome != "duplicate") continue;
    acknowledged.push_back(Field(line, "report_id") + "|" + Field(line, "domain"));
  }
  return acknowledged;
}

fs::path MakeInputs(const fs::path& folder) {
  fs::create_directories(folder);
  for (const auto& entry : fs::directory_iterator(DataDir() / "corpus")) {
    fs::copy_file(entry.path(), folder / entry.path().filename());
  }
  // Generated next to the real ones, small so that a run is short and the
  // kills land in every phase of it: start-up, parsing, commits.
  EXPECT_TRUE(GenerateReports(folder, 40, 3, "gz", "kill-gz"));
  EXPECT_TRUE(GenerateReports(folder, 20, 2, "eml", "kill-eml"));
  return folder;
}

// Two ways to run the same ingest: a folder, whose files share one group
// commit (storage::Writer::BeginBatch), and an mbox on stdin, whose
// messages are stored one transaction each, so that a kill also lands
// between commits of one run.
struct IngestRun {
  std::vector<std::string> args;
  fs::path stdin_path;
};

// `ingest -v` line-buffered, so that what it printed before the kill is
// what it had acknowledged: the C++ streams write through stdio, whose
// buffering stdbuf sets. ASan must then accept a preloaded library.
pid_t SpawnLineBuffered(const IngestRun& run, const fs::path& out, const fs::path& err) {
  std::vector<std::string> argv = {"stdbuf", "-oL", DmarcdBinary()};
  argv.insert(argv.end(), run.args.begin(), run.args.end());
  const char* asan = std::getenv("ASAN_OPTIONS");
  std::string options = asan != nullptr ? std::string(asan) + ":" : std::string();
  return SpawnProgram(argv, out, err, {{"ASAN_OPTIONS", options + "verify_asan_link_order=0"}},
                      run.stdin_path);
}

// Runs to the end: the exit code.
int RunToEnd(const IngestRun& run, const fs::path& dir) {
  const pid_t pid = SpawnLineBuffered(run, dir / "full.out", dir / "full.err");
  const int code = WaitExit(pid);
  EXPECT_EQ(code, 0) << ReadFile(dir / "full.err");
  return code;
}

TEST(KillIngestTest, EveryReportStoredOnceAfterRandomKills) {
  TempDir dir("dmarcd-kill-ingest");
  const fs::path inputs = MakeInputs(dir.Path() / "inputs");

  const fs::path mbox = dir.Path() / "reports.mbox";
  ASSERT_TRUE(GenerateReports(mbox, 30, 2, "mbox", "kill-mbox"));
  auto runs = [&](const fs::path& db) {
    return std::vector<IngestRun>{
        {{"ingest", "-v", "--db", db.string(), inputs.string()}, "/dev/null"},
        {{"ingest", "-v", "--db", db.string(), "-"}, mbox}};
  };

  // The reference: each run once, not interrupted; how long each takes.
  const fs::path reference = dir.Path() / "reference.db";
  std::vector<std::chrono::microseconds> full_run;
  for (const IngestRun& run : runs(reference)) {
    const auto start = std::chrono::steady_clock::now();
    ASSERT_EQ(RunToEnd(run, dir.Path()), 0);
    full_run.push_back(std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start));
  }
  const StoredReports expected = ReadStoredReports(reference);
  ASSERT_EQ(expected.keys.size(), 102u);
  ASSERT_EQ(expected.rows, 102);

  const int cycles = Repetitions(200, 1000);
  constexpr int kCyclesPerDatabase = 10;
  std::mt19937 random(20261203);
  // Spread over the whole of a run, start-up included, and a little past
  // its end, so that some runs finish before the kill.
  std::uniform_real_distribution<double> share(0.0, 1.1);

  int killed = 0;
  int finished = 0;
  int integrity_failures = 0;
  int acknowledged_missing = 0;
  int acknowledged_total = 0;
  int lost = 0;
  int duplicated = 0;
  for (int cycle = 0; cycle < cycles; cycle += kCyclesPerDatabase) {
    const fs::path db = dir.Path() / ("kill" + std::to_string(cycle) + ".db");
    for (int i = 0; i < kCyclesPerDatabase && cycle + i < cycles; ++i) {
      const fs::path out = dir.Path() / "ingest.out";
      const size_t mode = static_cast<size_t>(i % 2);
      const pid_t pid = SpawnLineBuffered(runs(db)[mode], out, dir.Path() / "ingest.err");
      ASSERT_GT(pid, 0);
      std::this_thread::sleep_for(
          std::chrono::duration_cast<std::chrono::microseconds>(full_run[mode] * share(random)));
      kill(pid, SIGKILL);
      const int code = WaitExit(pid);
      (code == 128 + SIGKILL ? killed : finished) += 1;

      // The restart: what any later process opening the file sees.
      if (!fs::exists(db)) continue;
      const std::string integrity = IntegrityCheck(db);
      EXPECT_EQ(integrity, "ok") << "cycle " << cycle + i;
      integrity_failures += integrity == "ok" ? 0 : 1;
      Sqlite sqlite(db);
      for (const std::string& key : Acknowledged(ReadFile(out))) {
        ++acknowledged_total;
        const size_t bar = key.find('|');
        const auto count = sqlite.Int(
            "SELECT COUNT(*) FROM reports WHERE report_id = " + SqlQuote(key.substr(0, bar)) +
            " AND domain = " + SqlQuote(key.substr(bar + 1)));
        EXPECT_EQ(count, 1) << "acknowledged but not stored once: " << key;
        acknowledged_missing += count == 1 ? 0 : 1;
      }
    }

    // The last restart runs to its end and leaves every report there once.
    for (const IngestRun& run : runs(db)) RunToEnd(run, dir.Path());
    const StoredReports stored = ReadStoredReports(db);
    EXPECT_EQ(stored.keys, expected.keys);
    std::vector<std::string> missing;
    std::set_difference(expected.keys.begin(), expected.keys.end(), stored.keys.begin(),
                        stored.keys.end(), std::back_inserter(missing));
    lost += static_cast<int>(missing.size());
    duplicated += static_cast<int>(stored.rows - static_cast<int64_t>(stored.keys.size()));
    Sqlite sqlite(db);
    // Nothing half-stored: every report has exactly the records it counts.
    EXPECT_EQ(sqlite.Int("SELECT COUNT(*) FROM reports r WHERE r.records != "
                         "(SELECT COUNT(*) FROM records WHERE report_id = r.id)"),
              0);
    fs::remove(db);
  }

  std::printf(
      "kill -9 ingest: cycles=%d killed=%d finished_before_kill=%d acknowledged=%d "
      "acknowledged_missing=%d lost=%d duplicated=%d integrity_failures=%d "
      "folder_run_ms=%lld mbox_run_ms=%lld\n",
      cycles, killed, finished, acknowledged_total, acknowledged_missing, lost, duplicated,
      integrity_failures, static_cast<long long>(full_run[0].count() / 1000),
      static_cast<long long>(full_run[1].count() / 1000));
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_EQ(integrity_failures, 0);
  EXPECT_EQ(acknowledged_missing, 0);
  // The kills must have hit running processes, not only finished ones
  // (fewer when the machine got faster than during the reference runs).
  EXPECT_GT(killed, cycles / 4);
}

// Uploads from four clients at once while `serve` is killed and started
// again: every upload answered 201 or 200 is there after the restart.
TEST(KillServeTest, EveryAcknowledgedUploadSurvivesKills) {
  TempDir dir("dmarcd-kill-serve");
  const fs::path uploads = dir.Path() / "uploads";
  ASSERT_TRUE(GenerateReports(uploads, 80, 3, "xml", "kill-serve"));
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(uploads)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 80u);

  const fs::path db = dir.Path() / "dmarcd.db";
  const std::string token = AddIngestToken(db, dir.Path());
  const int cycles = Repetitions(10, 50);
  std::mt19937 random(6);
  std::uniform_int_distribution<int> delay_ms(50, 800);

  std::mutex mutex;
  std::set<std::string> acknowledged;  // report ids answered 201 or 200
  std::vector<size_t> pending(files.size());
  for (size_t i = 0; i < files.size(); ++i) pending[i] = i;
  int answered_500 = 0;

  for (int cycle = 0; cycle <= cycles; ++cycle) {
    Server server(db, dir.Path());
    std::string error;
    ASSERT_TRUE(server.Start(&error)) << error;
    EXPECT_EQ(IntegrityCheck(db), "ok") << "after restart " << cycle;
    {
      Sqlite sqlite(db);
      std::lock_guard lock(mutex);
      for (const std::string& id : acknowledged) {
        EXPECT_EQ(sqlite.Int("SELECT COUNT(*) FROM reports WHERE report_id = " + SqlQuote(id)), 1)
            << "acknowledged upload lost: " << id;
      }
    }

    // The last round is not killed: it uploads what is left.
    const bool last = cycle == cycles;
    std::atomic<bool> stop{false};
    constexpr int kClients = 4;
    std::vector<std::thread> clients;
    clients.reserve(kClients);
    for (int c = 0; c < kClients; ++c) {
      clients.emplace_back([&] {
        while (!stop) {
          size_t index = 0;
          {
            std::lock_guard lock(mutex);
            if (pending.empty()) return;
            index = pending.back();
            pending.pop_back();
          }
          const HttpResult result =
              Http(server.Port(), "POST", "/api/v1/reports", ReadFile(files[index]), token, 30);
          std::lock_guard lock(mutex);
          if (result.status == 201 || result.status == 200) {
            const json::value body = json::parse(result.body);
            acknowledged.insert(
                std::string(body.at("parts").at(0).at("report").at("report_id").as_string()));
          } else {
            answered_500 += result.status >= 500 && result.status != 503 ? 1 : 0;
            pending.push_back(index);  // no answer (killed) or 503: send again
          }
        }
      });
    }
    if (!last) {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
      server.Kill();
      stop = true;
    }
    for (std::thread& client : clients) client.join();
    if (last) {
      EXPECT_EQ(server.Stop(), 0);
    }
  }

  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(answered_500, 0);
  EXPECT_EQ(acknowledged.size(), files.size());
  const StoredReports stored = ReadStoredReports(db);
  EXPECT_EQ(stored.rows, static_cast<int64_t>(files.size()));
  EXPECT_EQ(stored.keys.size(), files.size());
  EXPECT_EQ(IntegrityCheck(db), "ok");
  std::printf("kill -9 serve: cycles=%d uploads=%zu stored=%lld duplicated=%lld\n", cycles,
              files.size(), static_cast<long long>(stored.rows),
              static_cast<long long>(stored.rows - static_cast<int64_t>(stored.keys.size())));
}

}  // namespace
}  // namespace dmarcd::faults
