// Runs the real dmarcd binary: `dmarcd serve` on a free port, talked to
// over a socket with libcurl, and `dmarcd ingest` / `dmarcd token` as a
// user or script would run them.
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace dmarcd::server {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string DataPath(const std::string& name) {
  return std::string(DMARCD_TEST_DATA_DIR) + "/server/" + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

struct CommandResult {
  int status = -1;  // exit status, or -1 when killed by a signal
  std::string out;
  std::string err;
};

// Starts the binary with the arguments; stdin, stdout and stderr go to files.
pid_t Spawn(const std::vector<std::string>& args, const std::string& stdin_path,
            const std::string& stdout_path, const std::string& stderr_path,
            const std::map<std::string, std::string>& env) {
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

int Wait(pid_t pid) {
  int wstatus = 0;
  if (waitpid(pid, &wstatus, 0) != pid) return -1;
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

size_t Collect(char* data, size_t size, size_t count, void* target) {
  static_cast<std::string*>(target)->append(data, size * count);
  return size * count;
}

struct HttpResult {
  long status = 0;
  std::string body;
  std::string headers;
  json::value Json() const { return json::parse(body); }
};

class DmarcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dmarcd-integration-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    db_ = (dir_ / "dmarcd.db").string();
    std::ofstream(dir_ / "empty");
  }

  void TearDown() override {
    StopServer();
    fs::remove_all(dir_);
  }

  CommandResult Dmarcd(std::vector<std::string> args, const std::string& stdin_path = "",
                       const std::map<std::string, std::string>& env = {}) {
    args.push_back("--db");
    args.push_back(db_);
    const std::string out = (dir_ / "out").string();
    const std::string err = (dir_ / "err").string();
    pid_t pid =
        Spawn(args, stdin_path.empty() ? (dir_ / "empty").string() : stdin_path, out, err, env);
    CommandResult run;
    run.status = Wait(pid);
    run.out = ReadFile(out);
    run.err = ReadFile(err);
    return run;
  }

  std::string AddToken(const std::string& name, const std::string& scope) {
    CommandResult run = Dmarcd({"token", "add", name, "--scope", scope});
    EXPECT_EQ(run.status, 0) << run.err;
    std::string secret = run.out;
    while (!secret.empty() && secret.back() == '\n') secret.pop_back();
    EXPECT_EQ(secret.rfind("dmarcd_", 0), 0u) << secret;
    EXPECT_EQ(secret.find('\n'), std::string::npos);
    return secret;
  }

  void StartServer(const std::map<std::string, std::string>& env = {}) {
    const std::string port_file = (dir_ / "port").string();
    server_log_ = (dir_ / "server.log").string();
    server_ = Spawn({"serve", "--db", db_, "--listen", "127.0.0.1:0", "--port-file", port_file},
                    (dir_ / "empty").string(), (dir_ / "server.out").string(), server_log_, env);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::exists(port_file) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(fs::exists(port_file)) << ReadFile(server_log_);
    port_ = std::stoi(ReadFile(port_file));
    ASSERT_GT(port_, 0);
    EXPECT_NE(
        ReadFile(server_log_).find("listening address=127.0.0.1 port=" + std::to_string(port_)),
        std::string::npos);
  }

  // SIGTERM must stop the server cleanly (exit 0).
  void StopServer() {
    if (server_ <= 0) return;
    kill(server_, SIGTERM);
    EXPECT_EQ(Wait(server_), 0) << ReadFile(server_log_);
    server_ = -1;
  }

  // With `expect_continue`, a POST asks for 100 Continue (as curl does by
  // itself above 1 MiB) and waits up to 20 s for it, instead of curl's 1 s.
  HttpResult Request(const std::string& method, const std::string& path,
                     const std::string& body = "", const std::string& token = "",
                     bool expect_continue = false) {
    HttpResult result;
    CURL* curl = curl_easy_init();
    const std::string url = "http://127.0.0.1:" + std::to_string(port_) + path;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, Collect);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &result.headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, expect_continue ? "Expect: 100-continue" : "Expect:");
    if (expect_continue) curl_easy_setopt(curl, CURLOPT_EXPECT_100_TIMEOUT_MS, 20000L);
    if (!token.empty())
      headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
    if (method == "POST") {
      headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    const CURLcode rc = curl_easy_perform(curl);
    EXPECT_EQ(rc, CURLE_OK) << method << " " << path << ": " << curl_easy_strerror(rc);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return result;
  }

  json::object Get(const std::string& path) {
    HttpResult result = Request("GET", path);
    EXPECT_EQ(result.status, 200) << path << ": " << result.body;
    return result.Json().as_object();
  }

  fs::path dir_;
  std::string db_;
  pid_t server_ = -1;
  std::string server_log_;
  int port_ = 0;
};

int64_t Int(const json::value& v) { return v.to_number<int64_t>(); }

TEST_F(DmarcdTest, ServeAuthorisesUploadsAndAnswersQueries) {
  const std::string ingest_token = AddToken("ci", "ingest");
  const std::string read_token = AddToken("dashboard", "read");
  StartServer();

  const std::string report = ReadFile(DataPath("case01_uncompressed-xml-attachment.eml"));
  HttpResult anonymous = Request("POST", "/api/v1/reports", report);
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_NE(anonymous.headers.find("WWW-Authenticate: Bearer"), std::string::npos);
  EXPECT_EQ(anonymous.Json().at("error").at("code").as_string(), "unauthorized");
  EXPECT_EQ(Request("POST", "/api/v1/reports", report, read_token).status, 403);
  EXPECT_EQ(Request("POST", "/api/v1/reports", report, "dmarcd_notatoken").status, 401);

  // A real report: 201, and what was stored.
  HttpResult stored = Request("POST", "/api/v1/reports", report, ingest_token);
  ASSERT_EQ(stored.status, 201) << stored.body;
  json::object body = stored.Json().as_object();
  EXPECT_EQ(body.at("status").as_string(), "stored");
  ASSERT_EQ(body.at("parts").as_array().size(), 1u);
  json::object part = body.at("parts").as_array()[0].as_object();
  EXPECT_EQ(part.at("status").as_string(), "stored");
  EXPECT_TRUE(part.at("error").is_null());
  json::object summary_of_part = part.at("report").as_object();
  EXPECT_EQ(summary_of_part.at("org_name").as_string(), "Example Net Filtering");
  EXPECT_EQ(summary_of_part.at("report_id").as_string(), "filter-20250101-0001");
  EXPECT_EQ(summary_of_part.at("domain").as_string(), "example.com");
  EXPECT_EQ(summary_of_part.at("begin").as_string(), "2025-01-01T00:00:00Z");
  EXPECT_EQ(summary_of_part.at("end").as_string(), "2025-01-01T23:59:59Z");
  EXPECT_EQ(Int(summary_of_part.at("records")), 2);
  EXPECT_EQ(Int(summary_of_part.at("messages")), 15);
  const int64_t report_pk = Int(summary_of_part.at("id"));

  // The same again: a duplicate, pointing at the same row.
  HttpResult duplicate = Request("POST", "/api/v1/reports", report, ingest_token);
  ASSERT_EQ(duplicate.status, 200) << duplicate.body;
  EXPECT_EQ(duplicate.Json().at("status").as_string(), "duplicate");
  EXPECT_EQ(Int(duplicate.Json().at("parts").at(0).at("report").at("id")), report_pk);

  // More reports for the queries below.
  EXPECT_EQ(Request("POST", "/api/v1/reports",
                    ReadFile(DataPath("google_20-records_parsedmarc.xml.gz")), ingest_token)
                .status,
            201);
  EXPECT_EQ(
      Request("POST", "/api/v1/reports",
              ReadFile(DataPath("fastmail_four-records-multi-dkim_stalwart.xml")), ingest_token)
          .status,
      201);

  // A gzip that holds no XML: 422 with the reason, and kept as rejected.
  const std::string bad = ReadFile(DataPath("case07_gzip-payload-not-xml.xml.gz"));
  HttpResult rejected = Request("POST", "/api/v1/reports", bad, ingest_token);
  ASSERT_EQ(rejected.status, 422) << rejected.body;
  json::object rejected_body = rejected.Json().as_object();
  EXPECT_EQ(rejected_body.at("status").as_string(), "rejected");
  const std::string reason_code(rejected_body.at("error").at("code").as_string());
  EXPECT_FALSE(reason_code.empty());
  EXPECT_FALSE(rejected_body.at("error").at("message").as_string().empty());
  EXPECT_TRUE(rejected_body.at("parts").at(0).at("report").is_null());
  EXPECT_EQ(rejected_body.at("parts").at(0).at("error").at("code").as_string(), reason_code);

  json::object rejected_list = Get("/api/v1/rejected");
  ASSERT_EQ(Int(rejected_list.at("total")), 1);
  json::object rejected_row = rejected_list.at("items").at(0).as_object();
  EXPECT_EQ(rejected_row.at("code").as_string(), reason_code);
  // The fifth upload that got past the token check, from the test's socket.
  const std::string origin = "http:upload/5 token=ci client=127.0.0.1";
  EXPECT_EQ(rejected_row.at("origin").as_string(), origin);
  EXPECT_EQ(rejected_row.at("sha256").as_string().size(), 64u);
  EXPECT_EQ(Int(rejected_row.at("size")), static_cast<int64_t>(bad.size()));
  EXPECT_FALSE(rejected_row.at("recovered").as_bool());
  const std::string log = ReadFile(server_log_);
  EXPECT_NE(log.find("storage warning: envelope="), std::string::npos) << log;
  EXPECT_NE(log.find("origin=" + origin + " outcome=rejected reports=0 records=0 ms="),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(" reason=\"" + reason_code + ": "), std::string::npos) << log;

  // Domains.
  json::object domains = Get("/api/v1/domains");
  ASSERT_EQ(Int(domains.at("total")), 2);
  std::map<std::string, json::object> by_domain;
  for (const auto& d : domains.at("items").as_array()) {
    by_domain[std::string(d.at("domain").as_string())] = d.as_object();
  }
  ASSERT_EQ(by_domain.count("example.com"), 1u);
  ASSERT_EQ(by_domain.count("stalw.art"), 1u);
  EXPECT_EQ(Int(by_domain["example.com"].at("reports")), 2);
  EXPECT_EQ(Int(by_domain["example.com"].at("messages")), 15 + 3047);
  EXPECT_EQ(by_domain["example.com"].at("first").as_string(), "2024-06-13T00:00:00Z");
  EXPECT_EQ(Int(by_domain["stalw.art"].at("messages")), 9);

  // Reports list with paging: newest first.
  json::object page1 = Get("/api/v1/reports?domain=example.com&limit=1");
  EXPECT_EQ(Int(page1.at("total")), 2);
  EXPECT_EQ(Int(page1.at("limit")), 1);
  EXPECT_EQ(Int(page1.at("offset")), 0);
  ASSERT_EQ(page1.at("items").as_array().size(), 1u);
  EXPECT_EQ(page1.at("items").at(0).at("report_id").as_string(), "filter-20250101-0001");
  json::object page2 = Get("/api/v1/reports?domain=example.com&limit=1&offset=1");
  ASSERT_EQ(page2.at("items").as_array().size(), 1u);
  EXPECT_EQ(page2.at("items").at(0).at("report_id").as_string(), "11038226378739404135");
  EXPECT_EQ(Int(page2.at("offset")), 1);
  EXPECT_EQ(Int(Get("/api/v1/reports").at("total")), 3);

  // Report detail, field by field.
  json::object detail = Get("/api/v1/reports/" + std::to_string(report_pk));
  EXPECT_EQ(Int(detail.at("id")), report_pk);
  EXPECT_EQ(detail.at("org_name").as_string(), "Example Net Filtering");
  EXPECT_EQ(detail.at("org_email").as_string(), "dmarc-noreply@filter.example.net");
  EXPECT_EQ(detail.at("report_id").as_string(), "filter-20250101-0001");
  EXPECT_EQ(detail.at("domain").as_string(), "example.com");
  EXPECT_EQ(detail.at("begin").as_string(), "2025-01-01T00:00:00Z");
  EXPECT_EQ(detail.at("end").as_string(), "2025-01-01T23:59:59Z");
  EXPECT_EQ(Int(detail.at("messages")), 15);
  EXPECT_TRUE(detail.at("received_at").is_string());
  EXPECT_TRUE(detail.at("warnings").as_array().empty());
  json::object policy = detail.at("policy_published").as_object();
  EXPECT_EQ(policy.at("domain").as_string(), "example.com");
  EXPECT_EQ(policy.at("adkim").as_string(), "r");
  EXPECT_EQ(policy.at("aspf").as_string(), "r");
  EXPECT_EQ(policy.at("p").as_string(), "quarantine");
  EXPECT_EQ(policy.at("sp").as_string(), "quarantine");
  EXPECT_EQ(Int(policy.at("pct")), 100);
  EXPECT_TRUE(policy.at("np").is_null());
  EXPECT_TRUE(policy.at("fo").is_null());
  EXPECT_TRUE(detail.at("metadata").at("errors").as_array().empty());
  const json::array& records = detail.at("records").as_array();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].at("source_ip").as_string(), "192.0.2.10");
  EXPECT_EQ(Int(records[0].at("count")), 12);
  EXPECT_EQ(records[0].at("disposition").as_string(), "none");
  EXPECT_EQ(records[0].at("policy_dkim").as_string(), "pass");
  EXPECT_EQ(records[0].at("policy_spf").as_string(), "pass");
  EXPECT_EQ(records[0].at("dmarc").as_string(), "pass");
  EXPECT_EQ(records[0].at("header_from").as_string(), "example.com");
  EXPECT_EQ(records[0].at("envelope_from").as_string(), "example.com");
  EXPECT_TRUE(records[0].at("envelope_to").is_null());
  EXPECT_EQ(records[0].at("dkim").at(0).at("domain").as_string(), "example.com");
  EXPECT_EQ(records[0].at("dkim").at(0).at("selector").as_string(), "s2025");
  EXPECT_EQ(records[0].at("dkim").at(0).at("result").as_string(), "pass");
  EXPECT_TRUE(records[0].at("dkim").at(0).at("human_result").is_null());
  EXPECT_EQ(records[0].at("spf").at(0).at("scope").as_string(), "mfrom");
  EXPECT_EQ(records[1].at("source_ip").as_string(), "198.51.100.77");
  EXPECT_EQ(Int(records[1].at("count")), 3);
  EXPECT_EQ(records[1].at("disposition").as_string(), "quarantine");
  EXPECT_EQ(records[1].at("dmarc").as_string(), "fail");
  EXPECT_EQ(records[1].at("envelope_from").as_string(), "bulk.example.net");
  EXPECT_EQ(records[1].at("spf").at(0).at("result").as_string(), "softfail");
  EXPECT_TRUE(records[1].at("reasons").as_array().empty());

  HttpResult missing = Request("GET", "/api/v1/reports/987654");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Json().at("error").at("code").as_string(), "not_found");

  // Summary equals the sum of its daily series, with and without filters.
  for (const std::string query : {"", "?domain=example.com", "?from=2024-06-01&to=2025-06-01"}) {
    json::object summary = Get("/api/v1/summary" + query);
    json::object series = Get("/api/v1/timeseries" + query);
    const json::array& days = series.at("items").as_array();
    EXPECT_EQ(Int(series.at("total")), static_cast<int64_t>(days.size()));
    ASSERT_FALSE(days.empty());
    for (const char* field :
         {"messages", "dmarc_pass", "dmarc_fail", "dkim_aligned_pass", "spf_aligned_pass"}) {
      int64_t sum = 0;
      for (const auto& day : days) sum += Int(day.at(field));
      EXPECT_EQ(sum, Int(summary.at(field))) << query << " " << field;
    }
    for (const char* disposition : {"none", "quarantine", "reject"}) {
      int64_t sum = 0;
      for (const auto& day : days) sum += Int(day.at("disposition").at(disposition));
      EXPECT_EQ(sum, Int(summary.at("disposition").at(disposition))) << query << " " << disposition;
    }
  }
  json::object example = Get("/api/v1/summary?domain=example.com&from=2025-01-01&to=2025-01-02");
  EXPECT_EQ(Int(example.at("messages")), 15);
  EXPECT_EQ(Int(example.at("dmarc_pass")), 12);
  EXPECT_EQ(Int(example.at("dmarc_fail")), 3);
  EXPECT_EQ(Int(example.at("disposition").at("quarantine")), 3);
  EXPECT_EQ(example.at("from").as_string(), "2025-01-01T00:00:00Z");
  json::object days = Get("/api/v1/timeseries?domain=example.com&from=2025-01-01&to=2025-01-02");
  ASSERT_EQ(days.at("items").as_array().size(), 1u);
  EXPECT_EQ(days.at("items").at(0).at("date").as_string(), "2025-01-01");

  // Bad parameters.
  for (const std::string bad_target :
       {"/api/v1/reports?from=2025-02-30", "/api/v1/reports?limit=5000",
        "/api/v1/summary?frm=2025-01-01", "/api/v1/timeseries?to=soon",
        "/api/v1/rejected?offset=x"}) {
    HttpResult result = Request("GET", bad_target);
    EXPECT_EQ(result.status, 400) << bad_target;
    EXPECT_EQ(result.Json().at("error").at("code").as_string(), "invalid_argument") << bad_target;
  }

  // Health, the dashboard, and a page that does not exist.
  json::object health = Get("/healthz");
  EXPECT_EQ(health.at("status").as_string(), "ok");
  HttpResult index = Request("GET", "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.headers.find("text/html"), std::string::npos);
  EXPECT_NE(index.headers.find("Content-Security-Policy: default-src 'self'; script-src 'self'; "),
            std::string::npos)
      << index.headers;
  EXPECT_NE(index.headers.find("X-Content-Type-Options: nosniff"), std::string::npos);
  EXPECT_NE(Request("GET", "/api/v1/summary").headers.find("X-Content-Type-Options: nosniff"),
            std::string::npos);
  EXPECT_NE(Request("GET", "/api/v1/summary?").headers.find("X-Content-Type-Options: nosniff"),
            std::string::npos);
  EXPECT_EQ(Request("GET", "/no/such/page").status, 404);
}

TEST_F(DmarcdTest, ExpectContinueGetsA100BeforeTheBody) {
  const std::string token = AddToken("ci", "ingest");
  StartServer();
  // Above 1 MiB, where curl asks for 100-continue on its own.
  const auto start = std::chrono::steady_clock::now();
  HttpResult upload = Request("POST", "/api/v1/reports", std::string(3 << 20, 'x'), token,
                              /*expect_continue=*/true);
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(upload.status, 422) << upload.body;
  EXPECT_EQ(upload.headers.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << upload.headers;
  EXPECT_LT(waited, std::chrono::seconds(10));
  // The connection goes on as usual: the next request is answered.
  EXPECT_EQ(Request("GET", "/healthz").status, 200);
}

TEST_F(DmarcdTest, UploadAboveTheLimitIs413) {
  const std::string token = AddToken("ci", "ingest");
  StartServer({{"DMARCD_HTTP_MAX_UPLOAD_BYTES", "4096"}});
  HttpResult big = Request("POST", "/api/v1/reports", std::string(200000, 'x'), token);
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(big.Json().at("error").at("code").as_string(), "too_large");
  // Asked to continue, it refuses at once instead, without a 100.
  HttpResult refused = Request("POST", "/api/v1/reports", std::string(200000, 'x'), token,
                               /*expect_continue=*/true);
  EXPECT_EQ(refused.status, 413);
  EXPECT_EQ(refused.headers.find("100 Continue"), std::string::npos) << refused.headers;
  // The server is still there, and a small upload still works.
  HttpResult small =
      Request("POST", "/api/v1/reports",
              ReadFile(DataPath("fastmail_four-records-multi-dkim_stalwart.xml")), token);
  EXPECT_EQ(small.status, 201) << small.body;
  // The server's own refusals carry the same headers as the API's answers.
  EXPECT_NE(big.headers.find("X-Content-Type-Options: nosniff"), std::string::npos);
}

class IngestTest : public DmarcdTest {
 protected:
  std::string MakeFolder(const std::vector<std::string>& files) {
    const fs::path folder = dir_ / "in";
    fs::create_directories(folder / ".hidden");
    for (const std::string& f : files) fs::copy_file(DataPath(f), folder / f);
    // Hidden files are skipped.
    fs::copy_file(DataPath("case07_gzip-payload-not-xml.xml.gz"), folder / ".hidden" / "x.gz");
    return folder.string();
  }
};

TEST_F(IngestTest, FolderThenAgainAllDuplicate) {
  const std::string folder = MakeFolder(
      {"case01_uncompressed-xml-attachment.eml", "case02_octet-stream-gzip.eml",
       "fastmail_four-records-multi-dkim_stalwart.xml", "google_20-records_parsedmarc.xml.gz"});
  CommandResult first = Dmarcd({"ingest", folder});
  EXPECT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(first.out.rfind("ingest: files=4 envelopes=4 stored=4 duplicate=0 rejected=0 "
                            "records=28 seconds=",
                            0),
            0u)
      << first.out;

  CommandResult again = Dmarcd({"ingest", folder});
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.out.rfind("ingest: files=4 envelopes=4 stored=0 duplicate=4 rejected=0 "
                            "records=0 seconds=",
                            0),
            0u)
      << again.out;
}

TEST_F(IngestTest, RejectedFileExitsOne) {
  const std::string folder = MakeFolder(
      {"case07_gzip-payload-not-xml.xml.gz", "fastmail_four-records-multi-dkim_stalwart.xml"});
  CommandResult run = Dmarcd({"ingest", "--verbose", folder});
  EXPECT_EQ(run.status, 1) << run.err;
  EXPECT_NE(run.out.find("ingest: files=2 envelopes=2 stored=1 duplicate=0 rejected=1 records=4 "),
            std::string::npos)
      << run.out;
  EXPECT_NE(run.out.find("outcome=rejected reason=\""), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("outcome=stored report_id=\"758848224\""), std::string::npos) << run.out;

  // The rejected file still does not parse: reparse tries it and keeps it.
  CommandResult reparse = Dmarcd({"reparse"});
  EXPECT_EQ(reparse.status, 0) << reparse.err;
  EXPECT_EQ(reparse.out, "reparse: tried=1 recovered=0 still_rejected=1\n");
  CommandResult reparse_one = Dmarcd({"reparse", "1"});
  EXPECT_EQ(reparse_one.out, "reparse: tried=1 recovered=0 still_rejected=1\n") << reparse_one.err;
}

TEST_F(IngestTest, RejectionIsLoggedAsAWarningWithItsReason) {
  CommandResult run = Dmarcd({"ingest", DataPath("case07_gzip-payload-not-xml.xml.gz")});
  EXPECT_EQ(run.status, 1) << run.err;
  EXPECT_NE(run.err.find("storage warning: envelope=1 origin=file:"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("outcome=rejected reports=0 records=0 ms="), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(" reason=\""), std::string::npos) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
}

TEST_F(IngestTest, SeveralRejectedPartsAreLoggedOnOneLine) {
  const std::string mail_path = (dir_ / "two-bad-parts.eml").string();
  {
    std::ofstream mail(mail_path, std::ios::binary);
    mail << "From: dmarc@example.org\r\nTo: reports@example.com\r\n"
         << "Subject: Report domain: example.com\r\nMIME-Version: 1.0\r\n"
         << "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
         << "--b\r\nContent-Type: application/xml\r\n"
         << "Content-Disposition: attachment; filename=\"one.xml\"\r\n\r\n"
         << "<feedback>broken\r\n"
         << "--b\r\nContent-Type: application/xml\r\n"
         << "Content-Disposition: attachment; filename=\"two.xml\"\r\n\r\n"
         << "<other>not a report</other>\r\n"
         << "--b--\r\n";
  }
  CommandResult run = Dmarcd({"ingest", "--verbose", mail_path});
  EXPECT_EQ(run.status, 1) << run.out << run.err;
  EXPECT_NE(run.out.find("rejected=2"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("outcome=rejected reports=0 records=0 ms="), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(" reasons=\""), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("; "), std::string::npos) << run.err;
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
}

TEST_F(IngestTest, MboxIsSplitIntoMessages) {
  const std::string mbox_path = (dir_ / "reports.mbox").string();
  {
    std::ofstream mbox(mbox_path, std::ios::binary);
    mbox << "From dmarc-noreply@filter.example.net Thu Jan  2 06:10:00 2025\n"
         << ReadFile(DataPath("case01_uncompressed-xml-attachment.eml")) << "\n"
         << "From dmarc@example.org Thu Jan  2 06:11:00 2025\n"
         << ReadFile(DataPath("case02_octet-stream-gzip.eml")) << "\n";
  }
  CommandResult run = Dmarcd({"ingest", mbox_path});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(
      run.out.rfind("ingest: files=1 envelopes=2 stored=2 duplicate=0 rejected=0 records=4 ", 0),
      0u)
      << run.out;
}

TEST_F(IngestTest, StdinIsOneEnvelope) {
  CommandResult run = Dmarcd({"ingest", "--log-level", "info", "-"},
                             DataPath("google_20-records_parsedmarc.xml.gz"));
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(
      run.out.rfind("ingest: files=1 envelopes=1 stored=1 duplicate=0 rejected=0 records=20 ", 0),
      0u)
      << run.out;
  EXPECT_NE(run.err.find("origin=stdin outcome=stored"), std::string::npos) << run.err;
}

TEST_F(IngestTest, LogsOnlyWarningsByDefault) {
  CommandResult run = Dmarcd({"ingest", "-"}, DataPath("google_20-records_parsedmarc.xml.gz"));
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.err.find("outcome=stored"), std::string::npos) << run.err;
}

TEST_F(IngestTest, MissingPathIsAUsageError) {
  CommandResult run = Dmarcd({"ingest", (dir_ / "nothing-here").string()});
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.err.find("no such file or folder"), std::string::npos) << run.err;
}

TEST_F(DmarcdTest, CommandLineBasics) {
  CommandResult none = Dmarcd({});
  EXPECT_EQ(none.status, 2);
  EXPECT_NE(none.err.find("serve"), std::string::npos);

  CommandResult version = Dmarcd({"version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out.rfind("dmarcd 0.1.0 (schema ", 0), 0u) << version.out;

  // The version needs no configuration, not even a readable one.
  CommandResult any_config = Dmarcd({"--config", (dir_ / "missing.toml").string(), "version"});
  EXPECT_EQ(any_config.status, 0) << any_config.err;
  EXPECT_EQ(any_config.out, version.out);

  CommandResult help = Dmarcd({"ingest", "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("3  a transient or database failure"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("--config"), std::string::npos);
  for (const std::string command : {"ingest", "serve", "reparse", "migrate"}) {
    CommandResult command_help = Dmarcd({command, "--help"});
    EXPECT_EQ(command_help.status, 0) << command;
    EXPECT_NE(command_help.out.find("DMARCD_<SECTION>_<KEY> environment variables"),
              std::string::npos)
        << command_help.out;
  }
  CommandResult reparse_help = Dmarcd({"reparse", "--help"});
  EXPECT_NE(reparse_help.out.find("Exit status:"), std::string::npos) << reparse_help.out;
  EXPECT_NE(reparse_help.out.find("1  no rejected row has that ID"), std::string::npos)
      << reparse_help.out;

  for (const std::string bad_id : {"-1", "0", "x"}) {
    CommandResult bad_reparse = Dmarcd({"reparse", bad_id});
    EXPECT_EQ(bad_reparse.status, 2) << bad_id << ": " << bad_reparse.out << bad_reparse.err;
    EXPECT_NE(bad_reparse.err.find("must be a positive whole number"), std::string::npos)
        << bad_id << ": " << bad_reparse.err;
  }

  CommandResult bad_scope = Dmarcd({"token", "add", "x", "--scope", "everything"});
  EXPECT_EQ(bad_scope.status, 2);

  AddToken("ci", "ingest");
  CommandResult list = Dmarcd({"token", "list"});
  EXPECT_EQ(list.status, 0);
  EXPECT_NE(list.out.find("ci\tingest\t"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("dmarcd_"), std::string::npos);  // never the secret
  EXPECT_EQ(Dmarcd({"token", "revoke", "ci"}).status, 0);
  EXPECT_EQ(Dmarcd({"token", "revoke", "ci"}).status, 1);

  CommandResult migrate = Dmarcd({"migrate"});
  EXPECT_EQ(migrate.status, 0);
  EXPECT_NE(migrate.out.find("at schema "), std::string::npos);

  CommandResult reparse = Dmarcd({"reparse"});
  EXPECT_EQ(reparse.status, 0) << reparse.err;
  EXPECT_EQ(reparse.out, "reparse: tried=0 recovered=0 still_rejected=0\n");
}

}  // namespace
}  // namespace dmarcd::server
