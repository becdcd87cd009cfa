#include "tests/faults/fault_harness.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

extern char** environ;

namespace dmarcd::faults {
namespace {

size_t Collect(char* data, size_t size, size_t count, void* target) {
  static_cast<std::string*>(target)->append(data, size * count);
  return size * count;
}

// The environment of a child: this process's, without any DMARCD_ setting
// a developer may have exported, plus the test's own.
std::vector<std::string> ChildEnvironment(const std::map<std::string, std::string>& env) {
  std::vector<std::string> entries;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (entry.rfind("DMARCD_", 0) != 0 && env.count(name) == 0) entries.push_back(entry);
  }
  for (const auto& [key, value] : env) {
    std::string entry = key;
    entry += '=';
    entry += value;
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

pid_t SpawnProgram(const std::vector<std::string>& argv_strings, const fs::path& stdout_path,
                   const fs::path& stderr_path, const std::map<std::string, std::string>& env,
                   const fs::path& stdin_path) {
  std::vector<std::string> args = argv_strings;
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = ChildEnvironment(env);
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (std::string& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << argv[0];
  return rc == 0 ? pid : -1;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << bytes;
}

TempDir::TempDir(const std::string& prefix) {
  std::random_device random;
  path_ = fs::temp_directory_path() /
          (prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(random()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string DmarcdBinary() { return DMARCD_BINARY; }

pid_t SpawnDmarcd(const std::vector<std::string>& args, const fs::path& stdout_path,
                  const fs::path& stderr_path, const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv = {DMARCD_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return SpawnProgram(argv, stdout_path, stderr_path, env);
}

int WaitExit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

RunResult RunDmarcd(const std::vector<std::string>& args, const fs::path& work_dir,
                    const std::map<std::string, std::string>& env) {
  static std::atomic<int> runs{0};
  const std::string n = std::to_string(runs++);
  const fs::path out = work_dir / ("run" + n + ".out");
  const fs::path err = work_dir / ("run" + n + ".err");
  RunResult result;
  const pid_t pid = SpawnDmarcd(args, out, err, env);
  if (pid < 0) return result;
  result.exit_code = WaitExit(pid);
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  fs::remove(out);
  fs::remove(err);
  return result;
}

std::string AddIngestToken(const fs::path& db, const fs::path& work_dir) {
  RunResult run =
      RunDmarcd({"token", "add", "faults", "--scope", "ingest", "--db", db.string()}, work_dir);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::string secret = run.out;
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  return secret;
}

HttpResult Http(int port, const std::string& method, const std::string& path,
                const std::string& body, const std::string& token, long timeout_seconds) {
  HttpResult result;
  CURL* curl = curl_easy_init();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &result.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_seconds);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_slist* headers = curl_slist_append(nullptr, "Expect:");
  if (!token.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  }
  if (method == "POST") {
    headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  const auto start = std::chrono::steady_clock::now();
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return result;
}

Server::Server(fs::path db, fs::path work_dir, std::map<std::string, std::string> env)
    : db_(std::move(db)), work_dir_(std::move(work_dir)), env_(std::move(env)) {}

Server::~Server() {
  if (pid_ > 0) Kill();
}

bool Server::Start(std::string* error) {
  const fs::path port_file = work_dir_ / "serve.port";
  fs::remove(port_file);
  pid_ = SpawnDmarcd(
      {"serve", "--db", db_.string(), "--listen", "127.0.0.1:0", "--port-file", port_file.string()},
      work_dir_ / "serve.out", work_dir_ / "serve.err", env_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pid_ > 0 && !fs::exists(port_file) && std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (pid_ <= 0 || !fs::exists(port_file)) {
    if (error != nullptr) *error = "serve did not start: " + Log();
    return false;
  }
  port_ = std::stoi(ReadFile(port_file));
  return port_ > 0;
}

int Server::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const int code = WaitExit(pid_);
  pid_ = -1;
  return code;
}

void Server::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  WaitExit(pid_);
  pid_ = -1;
}

Sqlite::Sqlite(const fs::path& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db_);
  }
  sqlite3_busy_timeout(db_, 10000);
}

Sqlite::~Sqlite() { sqlite3_close_v2(db_); }

bool Sqlite::Exec(const std::string& sql, std::string* error) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK && error != nullptr) *error = message != nullptr ? message : "error";
  sqlite3_free(message);
  return rc == SQLITE_OK;
}

std::optional<int64_t> Sqlite::Int(const std::string& sql) {
  sqlite3_stmt* statement = nullptr;
  std::optional<int64_t> value;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
      sqlite3_step(statement) == SQLITE_ROW) {
    value = sqlite3_column_int64(statement, 0);
  }
  sqlite3_finalize(statement);
  return value;
}

std::optional<std::string> Sqlite::Text(const std::string& sql) {
  std::vector<std::string> column = Column(sql);
  if (column.empty()) return std::nullopt;
  return column.front();
}

std::vector<std::string> Sqlite::Column(const std::string& sql) {
  sqlite3_stmt* statement = nullptr;
  std::vector<std::string> values;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &statement, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
    return values;
  }
  while (sqlite3_step(statement) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(statement, 0);
    values.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
  }
  sqlite3_finalize(statement);
  return values;
}

StoredReports ReadStoredReports(const fs::path& db) {
  Sqlite sqlite(db);
  StoredReports stored;
  stored.keys = sqlite.Column(
      "SELECT reporter_key || '|' || report_id || '|' || domain || '|' || date_begin || '|' || "
      "date_end FROM reports GROUP BY reporter_key, report_id, domain, date_begin, date_end "
      "ORDER BY 1");
  stored.rows = sqlite.Int("SELECT COUNT(*) FROM reports").value_or(-1);
  return stored;
}

std::string IntegrityCheck(const fs::path& db) {
  Sqlite sqlite(db);
  std::vector<std::string> answer = sqlite.Column("PRAGMA integrity_check");
  std::string joined;
  for (const std::string& line : answer) joined += (joined.empty() ? "" : "; ") + line;
  return joined;
}

bool GenerateReports(const fs::path& folder, int count, int records, const std::string& format,
                     const std::string& seed) {
  fs::create_directories(format == "mbox" ? folder.parent_path() : folder);
  const std::string command = "python3 '" + std::string(DMARCD_GEN_AGGREGATE) + "' --reports " +
                              std::to_string(count) + " --records " + std::to_string(records) +
                              " --format " + format + " --seed '" + seed + "' --out '" +
                              folder.string() + "' > /dev/null";
  return std::system(command.c_str()) == 0;
}

fs::path DataDir() { return fs::path(DMARCD_TEST_DATA_DIR) / "faults"; }

int Repetitions(int suite, int long_run) {
  const char* value = std::getenv("DMARCD_FAULTS_LONG");
  return value != nullptr && std::string(value) == "1" ? long_run : suite;
}

}  // namespace dmarcd::faults
