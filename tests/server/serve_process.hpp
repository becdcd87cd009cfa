// Test support for the HTTP front door: runs `dmarcd serve` (the real
// binary) in a temporary folder with settings passed as DMARCD_* variables,
// and talks to it over raw sockets (so a test controls every byte, the
// source address and the pace) or libcurl (for TLS).
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace dmarcd::server::testing {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

inline std::string HostilePath(const std::string& name) {
  return std::string(DMARCD_TEST_DATA_DIR) + "/server/hostile_http/" + name;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A client socket, optionally bound to a source address first (Linux routes
// all of 127.0.0.0/8 to the loopback interface).
class RawClient {
 public:
  RawClient(int port, const std::string& source = "127.0.0.1") {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &local.sin_addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return;
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&remote), sizeof remote) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  RawClient(RawClient&& other) noexcept : fd_(other.fd_), connected_(other.connected_) {
    other.fd_ = -1;
  }
  RawClient& operator=(RawClient&&) = delete;

  bool Connected() const { return connected_; }

  // False once the peer has closed (EPIPE, ECONNRESET).
  bool Send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads until the peer closes or `timeout` passes; `closed` says which.
  std::string ReadAll(std::chrono::milliseconds timeout, bool* closed = nullptr) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    bool eof = false;
    while (!eof) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) break;
      char buffer[16384];
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) {
        eof = true;
      } else {
        out.append(buffer, static_cast<size_t>(n));
      }
    }
    if (closed != nullptr) *closed = eof;
    return out;
  }

  // Reads one response whose body length is given by Content-Length.
  std::string ReadResponse(std::chrono::milliseconds timeout) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      const size_t end = out.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const size_t at = out.find("Content-Length: ");
        if (at != std::string::npos && at < end) length = std::stoul(out.substr(at + 16));
        if (out.size() >= end + 4 + length) return out;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 1))) <= 0) continue;
      char buffer[16384];
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Sends a request on a new connection and reads until the server closes.
inline std::string Exchange(int port, const std::string& request,
                            const std::string& source = "127.0.0.1") {
  RawClient client(port, source);
  EXPECT_TRUE(client.Connected());
  client.Send(request);
  return client.ReadAll(std::chrono::milliseconds(10000));
}

// "HTTP/1.1 401 Unauthorized..." -> 401; 0 when there is no status line.
inline int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

inline size_t CountOf(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++count;
  }
  return count;
}

// The schema as SQLite keeps it: unchanged by any request.
inline std::string SchemaOf(const std::string& db_path) {
  sqlite3* db = nullptr;
  std::string schema;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* statement = nullptr;
    sqlite3_prepare_v2(db, "SELECT type, name, sql FROM sqlite_master ORDER BY name", -1,
                       &statement, nullptr);
    while (statement != nullptr && sqlite3_step(statement) == SQLITE_ROW) {
      for (int i = 0; i < 3; ++i) {
        const unsigned char* text = sqlite3_column_text(statement, i);
        schema += text != nullptr ? reinterpret_cast<const char*>(text) : "";
        schema += '\n';
      }
    }
    sqlite3_finalize(statement);
  }
  sqlite3_close(db);
  return schema;
}

inline int64_t CountRows(const std::string& db_path, const std::string& table) {
  sqlite3* db = nullptr;
  int64_t count = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* statement = nullptr;
    const std::string sql = "SELECT count(*) FROM " + table;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr);
    if (statement != nullptr && sqlite3_step(statement) == SQLITE_ROW) {
      count = sqlite3_column_int64(statement, 0);
    }
    sqlite3_finalize(statement);
  }
  sqlite3_close(db);
  return count;
}

struct CommandResult {
  int status = -1;  // exit status, or -1 when killed by a signal
  std::string out;
  std::string err;
};

// The test's own file limit: the slow-client tests open hundreds of sockets.
inline void RaiseOwnFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// A temporary folder with a database, and `dmarcd serve` in it.
class ServeProcess {
 public:
  ServeProcess() {
    dir_ = fs::temp_directory_path() / ("dmarcd-front-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    db_ = (dir_ / "dmarcd.db").string();
    std::ofstream(dir_ / "empty");
  }
  ~ServeProcess() {
    Stop();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  ServeProcess(ServeProcess&&) = delete;
  ServeProcess& operator=(ServeProcess&&) = delete;

  const fs::path& Dir() const { return dir_; }
  const std::string& Db() const { return db_; }
  int Port() const { return port_; }
  std::string Log() const { return ReadFile(log_); }

  // Runs `dmarcd ARGS --db DB` to the end.
  CommandResult Run(std::vector<std::string> args,
                    const std::map<std::string, std::string>& env = {}) {
    args.emplace_back("--db");
    args.push_back(db_);
    const std::string out = (dir_ / "cmd.out").string();
    const std::string err = (dir_ / "cmd.err").string();
    pid_t pid = Spawn(args, out, err, env);
    CommandResult result;
    result.status = Wait(pid);
    result.out = ReadFile(out);
    result.err = ReadFile(err);
    return result;
  }

  std::string AddToken(const std::string& name, const std::string& scope) {
    CommandResult run = Run({"token", "add", name, "--scope", scope});
    EXPECT_EQ(run.status, 0) << run.err;
    std::string secret = run.out;
    while (!secret.empty() && secret.back() == '\n') secret.pop_back();
    return secret;
  }

  // Starts serve on 127.0.0.1 and a free port; false (with the log in the
  // failure) when it did not come up within 20 s.
  bool Start(const std::map<std::string, std::string>& env = {},
             const std::string& listen = "127.0.0.1:0") {
    const std::string port_file = (dir_ / "port").string();
    log_ = (dir_ / "server.log").string();
    server_ = Spawn({"serve", "--db", db_, "--listen", listen, "--port-file", port_file,
                     "--log-level", "debug"},
                    (dir_ / "server.out").string(), log_, env);
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (!fs::exists(port_file) && Clock::now() < deadline) {
      int status = 0;
      if (waitpid(server_, &status, WNOHANG) == server_) {
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        server_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!fs::exists(port_file)) return false;
    port_ = std::stoi(ReadFile(port_file));
    return port_ > 0;
  }

  // The exit status of a serve that stopped by itself during Start.
  std::optional<int> ExitStatus() const { return exit_status_; }

  // SIGTERM; returns the exit status (0 after a clean stop).
  int Stop() {
    if (server_ <= 0) return 0;
    kill(server_, SIGTERM);
    const int status = Wait(server_);
    server_ = -1;
    return status;
  }

 private:
  pid_t Spawn(const std::vector<std::string>& args, const std::string& stdout_path,
              const std::string& stderr_path, const std::map<std::string, std::string>& env) {
    std::vector<std::string> full = {DMARCD_BINARY};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(full.size() + 1);
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);

    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry(*e);
      if (entry.rfind("DMARCD_", 0) != 0) env_strings.push_back(entry);
    }
    for (const auto& [k, v] : env) {
      std::string entry = k;
      entry += '=';
      entry += v;
      env_strings.push_back(std::move(entry));
    }
    std::vector<char*> envp;
    envp.reserve(env_strings.size() + 1);
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);

    const std::string stdin_path = (dir_ / "empty").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, stdin_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << "cannot start " << argv[0];
    return pid;
  }

  static int Wait(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  fs::path dir_;
  std::string db_;
  std::string log_;
  pid_t server_ = -1;
  int port_ = 0;
  std::optional<int> exit_status_;
};

inline size_t CollectInto(char* data, size_t size, size_t count, void* target) {
  static_cast<std::string*>(target)->append(data, size * count);
  return size * count;
}

}  // namespace dmarcd::server::testing
