// What the fault tests share: the real dmarcd binary started as a child
// process (and killed), an HTTP client on libcurl, direct SQLite access to
// the database the binary writes, and report files to feed it.
//
// Nothing here is thread-safe except Http, which may run on many threads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace dmarcd::faults {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path);
void WriteFile(const fs::path& path, const std::string& bytes);

// A fresh folder under the system's temporary folder, removed with its
// contents at destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& Path() const { return path_; }

 private:
  fs::path path_;
};

// Starts a program (found on PATH) with its arguments, as SpawnDmarcd does.
pid_t SpawnProgram(const std::vector<std::string>& argv, const fs::path& stdout_path,
                   const fs::path& stderr_path, const std::map<std::string, std::string>& env = {},
                   const fs::path& stdin_path = "/dev/null");

// The path of the dmarcd binary under test.
std::string DmarcdBinary();

// Starts the dmarcd binary with `args`; stdin reads /dev/null, stdout and
// stderr go to the files named. The DMARCD_ variables of this process are
// not passed on; `env` adds its own.
pid_t SpawnDmarcd(const std::vector<std::string>& args, const fs::path& stdout_path,
                  const fs::path& stderr_path, const std::map<std::string, std::string>& env = {});

// Waits for the child: its exit code, or 128 + the signal that ended it.
int WaitExit(pid_t pid);

// Runs dmarcd to its end; the exit code and what it printed.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult RunDmarcd(const std::vector<std::string>& args, const fs::path& work_dir,
                    const std::map<std::string, std::string>& env = {});

// "dmarcd token add NAME --scope ingest" on the database: the secret.
std::string AddIngestToken(const fs::path& db, const fs::path& work_dir);

struct HttpResult {
  long status = 0;  // 0 when the request did not get an answer
  std::string body;
  std::string headers;
  double seconds = 0;
};
// One request to 127.0.0.1:port; a POST sends `body` with the bearer token.
HttpResult Http(int port, const std::string& method, const std::string& path,
                const std::string& body = "", const std::string& token = "",
                long timeout_seconds = 60);

// `dmarcd serve` on a free port of 127.0.0.1.
class Server {
 public:
  Server(fs::path db, fs::path work_dir, std::map<std::string, std::string> env = {});
  ~Server();  // kills the process if it still runs
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts and waits until it listens; false (with the log in `error`) if
  // it did not within 30 s.
  bool Start(std::string* error);
  // SIGTERM and wait: the exit code.
  int Stop();
  // SIGKILL and wait.
  void Kill();
  int Port() const { return port_; }
  std::string Log() const { return ReadFile(work_dir_ / "serve.err"); }

 private:
  fs::path db_;
  fs::path work_dir_;
  std::map<std::string, std::string> env_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A connection of the test's own to the database: another process, as far
// as dmarcd is concerned.
class Sqlite {
 public:
  explicit Sqlite(const fs::path& path);
  ~Sqlite();
  Sqlite(const Sqlite&) = delete;
  Sqlite& operator=(const Sqlite&) = delete;

  // Runs statements that return nothing; false with the message on error.
  bool Exec(const std::string& sql, std::string* error = nullptr);
  // The first column of the first row, or nullopt on error / no row.
  std::optional<int64_t> Int(const std::string& sql);
  std::optional<std::string> Text(const std::string& sql);
  // Every row's first column as text.
  std::vector<std::string> Column(const std::string& sql);

 private:
  sqlite3* db_ = nullptr;
};

// The key that makes a report a duplicate, one string per stored report:
// "reporter_key|report_id|domain|begin|end", sorted; and how many rows
// exist in total (more than keys.size() would be a duplicate).
struct StoredReports {
  std::vector<std::string> keys;
  int64_t rows = 0;
};
StoredReports ReadStoredReports(const fs::path& db);

// PRAGMA integrity_check's answer ("ok" when sound).
std::string IntegrityCheck(const fs::path& db);

// Writes `count` aggregate reports made by bench/gen_aggregate.py with a
// fixed seed into `folder` (format "xml", "gz", "zip" or "eml"), or into
// the one file `folder` names for "mbox"; false when python3 or the
// generator failed.
bool GenerateReports(const fs::path& folder, int count, int records, const std::string& format,
                     const std::string& seed);

// The folder of this test's data: tests/data/faults.
fs::path DataDir();

// How many times to repeat a long test: `suite` normally, `long_run` when
// the environment variable DMARCD_FAULTS_LONG is set to 1.
int Repetitions(int suite, int long_run);

}  // namespace dmarcd::faults
