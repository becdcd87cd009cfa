// The failure report endpoints: handler tests over a database filled by
// the Writer, and (FailureApiBinaryTest) the same endpoints of the real
// dmarcd binary over HTTP with libcurl.
#include "server/failure_api.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "server/config.hpp"
#include "server/ingest_queue.hpp"
#include "storage/writer.hpp"

extern char** environ;

namespace dmarcd::server {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

fs::path FailureData() { return fs::path(DMARCD_TEST_DATA_DIR) / "failure"; }

class FailureApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dmarcd-failure-api-" + std::to_string(getpid()) + "-" +
                                        std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    const std::string path = (dir_ / "dmarcd.db").string();
    {
      auto db = storage::Database::Open(path);
      ASSERT_TRUE(db) << db.error().ToString();
      storage::Writer writer(**db, parser::Limits());
      for (const auto& entry : fs::directory_iterator(FailureData() / "corpus")) {
        ASSERT_TRUE(writer.Ingest(parser::Envelope{ReadFile(entry.path()), "file:test"}));
      }
      ASSERT_TRUE(writer.Ingest(parser::Envelope{
          ReadFile(FailureData() / "written" / "rfc9991_folded_multi.eml"), "file:test"}));
    }
    auto pool = ReaderPool::Open(path, 2, 5000);
    ASSERT_TRUE(pool) << pool.error().ToString();
    pool_ = std::move(*pool);
  }

  void TearDown() override {
    pool_.reset();
    fs::remove_all(dir_);
  }

  HttpResponse Get(const std::string& target, const std::string& accept = "") {
    HttpRequest request;
    request.method = "GET";
    request.target = target;
    if (!accept.empty()) request.headers["accept"] = accept;
    auto response = HandleFailureReports(request, *pool_);
    EXPECT_TRUE(response.has_value()) << target;
    return response ? *response : HttpResponse{};
  }

  json::object GetJson(const std::string& target, int status = 200) {
    HttpResponse response = Get(target);
    EXPECT_EQ(response.status, status) << target << ": " << response.body;
    EXPECT_EQ(response.content_type, "application/json");
    return json::parse(response.body).as_object();
  }

  fs::path dir_;
  std::unique_ptr<ReaderPool> pool_;
};

TEST_F(FailureApiTest, ListsEveryStoredReportNewestFirst) {
  json::object list = GetJson("/api/v1/failure-reports");
  EXPECT_EQ(list.at("total").to_number<int64_t>(), 8);
  EXPECT_EQ(list.at("limit").to_number<int64_t>(), 100);
  EXPECT_EQ(list.at("offset").to_number<int64_t>(), 0);
  const json::array& items = list.at("items").as_array();
  ASSERT_EQ(items.size(), 8U);
  for (size_t i = 1; i < items.size(); ++i) {
    EXPECT_GE(items[i - 1].at("arrived_at").as_string(), items[i].at("arrived_at").as_string());
  }

  // Reports without an Arrival-Date count from when they were received;
  // of example.com's two, the RFC 9991 report of 2025-01-03 is the newer.
  json::object domain = GetJson("/api/v1/failure-reports?domain=example.com");
  ASSERT_EQ(domain.at("items").as_array().size(), 2U);
  const json::object& first = domain.at("items").at(0).as_object();
  EXPECT_EQ(first.at("arrived_at").as_string(), "2025-01-03T11:58:07Z");
  EXPECT_EQ(first.at("source_ip").as_string(), "2001:db8::25");
  EXPECT_EQ(first.at("auth_failure").as_array().size(), 3U);
  EXPECT_EQ(first.at("subject").as_string(), "Your invoice \xE2\x82\xAC 42");
  EXPECT_FALSE(first.contains("headers"));  // only the detail carries them
  EXPECT_EQ(domain.at("items").at(1).at("arrived_at").as_string(), "2019-04-30T02:09:00Z");
}

TEST_F(FailureApiTest, FiltersByDomainTimeAndSourceIp) {
  EXPECT_EQ(GetJson("/api/v1/failure-reports?domain=EXAMPLE.NET").at("total").to_number<int64_t>(),
            3);
  EXPECT_EQ(GetJson("/api/v1/failure-reports?domain=example.net&from=2015-01-01&to=2016-01-01")
                .at("total")
                .to_number<int64_t>(),
            1);
  json::object by_ip = GetJson("/api/v1/failure-reports?source_ip=2001:DB8:0::25&domain=");
  EXPECT_EQ(by_ip.at("total").to_number<int64_t>(), 1);
  json::object paged = GetJson("/api/v1/failure-reports?limit=2&offset=2");
  EXPECT_EQ(paged.at("items").as_array().size(), 2U);
  EXPECT_EQ(paged.at("total").to_number<int64_t>(), 8);
}

TEST_F(FailureApiTest, RejectsUnknownAndMalformedParameters) {
  json::object unknown = GetJson("/api/v1/failure-reports?colour=red", 400);
  EXPECT_EQ(unknown.at("error").at("code").as_string(), "invalid_argument");
  EXPECT_NE(std::string(unknown.at("error").at("message").as_string()).find("colour"),
            std::string::npos);
  GetJson("/api/v1/failure-reports?source_ip=not-an-ip", 400);
  GetJson("/api/v1/failure-reports?from=yesterday", 400);
  GetJson("/api/v1/failure-reports?limit=0", 400);
  GetJson("/api/v1/failure-reports?from=2025-01-02&to=2025-01-01", 400);
  GetJson("/api/v1/failure-reports/12345", 404);
  GetJson("/api/v1/failure-reports/abc", 404);
  HttpRequest post;
  post.method = "POST";
  post.target = "/api/v1/failure-reports";
  EXPECT_EQ(HandleFailureReports(post, *pool_)->status, 405);
  post.target = "/api/v1/reports";
  EXPECT_FALSE(HandleFailureReports(post, *pool_).has_value());
}

TEST_F(FailureApiTest, DetailHasEveryFieldAndTheKeptHeaders) {
  const json::object list = GetJson("/api/v1/failure-reports?domain=example.com&limit=1");
  const int64_t id = list.at("items").at(0).at("id").to_number<int64_t>();
  json::object detail = GetJson("/api/v1/failure-reports/" + std::to_string(id));
  EXPECT_EQ(detail.at("id").to_number<int64_t>(), id);
  EXPECT_EQ(detail.at("reporting_mta").as_string(), "dns; mx.receiver.example.net");
  EXPECT_EQ(detail.at("incidents").to_number<int64_t>(), 3);
  EXPECT_EQ(detail.at("identity_alignment").at(0).as_string(), "none");
  EXPECT_EQ(detail.at("original_rcpt_to").as_array().size(), 2U);
  EXPECT_EQ(detail.at("fields").as_array().size(), 21U);
  EXPECT_EQ(detail.at("sample_kept").as_string(), "headers");
  EXPECT_TRUE(detail.at("body").is_null());
  EXPECT_TRUE(std::string(detail.at("headers").as_string()).starts_with("Received: "));
}

TEST_F(FailureApiTest, AnswersCsvWithAHeaderRow) {
  HttpResponse list = Get("/api/v1/failure-reports?format=csv&domain=example.com");
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.content_type, "text/csv; charset=utf-8");
  EXPECT_TRUE(list.body.starts_with("id,arrived_at,domain,format,feedback_type,source_ip,"));
  EXPECT_NE(list.body.find(",2001:db8::25,dmarc signature spf,none,spam,"), std::string::npos)
      << list.body;

  HttpResponse by_accept = Get("/api/v1/failure-reports?domain=example.com", "text/csv");
  EXPECT_EQ(by_accept.body, list.body);

  const std::string id =
      list.body.substr(list.body.find("\r\n") + 2,
                       list.body.find(',', list.body.find("\r\n")) - list.body.find("\r\n") - 2);
  HttpResponse detail = Get("/api/v1/failure-reports/" + id + "?format=csv");
  EXPECT_EQ(detail.status, 200);
  EXPECT_NE(detail.body.find(",headers\r\n"), std::string::npos);
  // The header block spans lines: quoted, so the file stays one row.
  EXPECT_NE(detail.body.find("\"Received: from relay.spoof.example.org"), std::string::npos);
}

TEST(FailureConfigTest, ReadsPrivacyAndRetentionSettings) {
  ConfigFlags flags;
  auto defaults = LoadConfig(flags, [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(defaults);
  EXPECT_EQ(FailurePrivacyOf(*defaults).store_samples, storage::SampleMode::kHeaders);
  EXPECT_FALSE(FailurePrivacyOf(*defaults).redact_local_parts);

  auto env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "DMARCD_PRIVACY_STORE_SAMPLES") return "none";
    if (name == "DMARCD_PRIVACY_REDACT_LOCAL_PARTS") return "true";
    if (name == "DMARCD_RETENTION_FAILURE_RETENTION") return "90d";
    return std::nullopt;
  };
  auto set = LoadConfig(flags, env);
  ASSERT_TRUE(set) << set.error().ToString();
  EXPECT_EQ(FailurePrivacyOf(*set).store_samples, storage::SampleMode::kNone);
  EXPECT_TRUE(FailurePrivacyOf(*set).redact_local_parts);
  EXPECT_EQ(set->retention.failure_retention, "90d");

  auto bad = LoadConfig(flags, [](const std::string& name) -> std::optional<std::string> {
    if (name == "DMARCD_PRIVACY_STORE_SAMPLES") return "bodies";
    return std::nullopt;
  });
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kConfig);
  auto bad_retention = LoadConfig(flags, [](const std::string& name) -> std::optional<std::string> {
    if (name == "DMARCD_RETENTION_FAILURE_RETENTION") return "ninety days";
    return std::nullopt;
  });
  EXPECT_FALSE(bad_retention);
}

// ---- the writer thread: privacy and retention ----

TEST(FailureQueueTest, AppliesPrivacyAndRetentionOnTheWriterThread) {
  const fs::path dir =
      fs::temp_directory_path() / ("dmarcd-failure-queue-" + std::to_string(getpid()) + "-" +
                                   std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const std::string path = (dir / "dmarcd.db").string();
  const std::string email = ReadFile(fs::path(DMARCD_TEST_DATA_DIR) / "cases" /
                                     "22-arf-source-ip-with-comment" / "failure.eml");
  auto count = [&path](const std::string& sql) {
    auto db = storage::Database::Open(path);
    EXPECT_TRUE(db);
    sqlite3_stmt* statement = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2((*db)->Handle(), sql.c_str(), -1, &statement, nullptr), SQLITE_OK);
    int64_t value = -1;
    if (sqlite3_step(statement) == SQLITE_ROW) value = sqlite3_column_int64(statement, 0);
    sqlite3_finalize(statement);
    return value;
  };
  {
    auto db = storage::Database::Open(path);
    ASSERT_TRUE(db);
    FailureSettings settings;
    settings.privacy.redact_local_parts = true;
    IngestQueue queue(std::move(*db), parser::Limits(), RetryPolicy{}, settings);
    std::promise<Result<storage::EnvelopeOutcome>> done;
    queue.Submit(
        parser::Envelope{email, "test"},
        [&done](Result<storage::EnvelopeOutcome> outcome) { done.set_value(std::move(outcome)); });
    auto outcome = done.get_future().get();
    ASSERT_TRUE(outcome) << outcome.error().ToString();
    EXPECT_EQ(outcome->Count(storage::PartStatus::kStored), 1);
  }
  EXPECT_EQ(count("SELECT COUNT(*) FROM failure_reports WHERE original_mail_from LIKE 'h-%'"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM failure_reports WHERE headers LIKE '%news@%'"), 0);

  // A retention shorter than the report's age deletes it when the queue starts.
  {
    auto db = storage::Database::Open(path);
    ASSERT_TRUE(db);
    FailureSettings settings;
    settings.retention_seconds = 86400;
    IngestQueue keep(std::move(*db), parser::Limits(), RetryPolicy{}, settings);
  }
  EXPECT_EQ(count("SELECT COUNT(*) FROM failure_reports"), 1);
  {
    auto db = storage::Database::Open(path);
    ASSERT_TRUE(db);
    FailureSettings settings;
    settings.retention_seconds = -60;  // everything is older than a minute from now
    IngestQueue purge(std::move(*db), parser::Limits(), RetryPolicy{}, settings);
    purge.Stop();
  }
  EXPECT_EQ(count("SELECT COUNT(*) FROM failure_reports"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM raw_inputs"), 0);
  fs::remove_all(dir);
}

// ---- the real binary ----

// Starts dmarcd with `args`; output to files; DMARCD_* of this process left
// out, `env` added.
pid_t Spawn(const std::vector<std::string>& args, const fs::path& dir,
            const std::map<std::string, std::string>& env) {
  std::vector<std::string> full = {DMARCD_BINARY};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(full.size() + 1);
  for (auto& arg : full) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::string(*entry).rfind("DMARCD_", 0) != 0) env_strings.emplace_back(*entry);
  }
  for (const auto& [key, value] : env) {
    std::string entry = key;
    entry += '=';
    entry += value;
    env_strings.push_back(std::move(entry));
  }
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);

  const std::string out = (dir / "out").string();
  const std::string err = (dir / "err").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  EXPECT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data()), 0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

size_t Collect(char* data, size_t size, size_t count, void* target) {
  static_cast<std::string*>(target)->append(data, size * count);
  return size * count;
}

struct HttpResult {
  long status = 0;
  std::string body;
  std::string headers;
};

class FailureApiBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dmarcd-failure-http-" + std::to_string(getpid()) + "-" +
                                        std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    db_ = (dir_ / "dmarcd.db").string();
  }

  void TearDown() override {
    if (server_ > 0) {
      kill(server_, SIGTERM);
      EXPECT_EQ(Wait(server_), 0) << ReadFile(dir_ / "err");
    }
    fs::remove_all(dir_);
  }

  int Run(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
    args.push_back("--db");
    args.push_back(db_);
    return Wait(Spawn(args, dir_, env));
  }

  void StartServer(const std::map<std::string, std::string>& env = {}) {
    const fs::path port_file = dir_ / "port";
    server_ =
        Spawn({"serve", "--db", db_, "--listen", "127.0.0.1:0", "--port-file", port_file.string()},
              dir_, env);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::exists(port_file) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(fs::exists(port_file)) << ReadFile(dir_ / "err");
    port_ = std::stoi(ReadFile(port_file));
  }

  HttpResult Request(const std::string& method, const std::string& path,
                     const std::string& body = "", const std::string& header = "") {
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
    curl_slist* headers = curl_slist_append(nullptr, "Expect:");
    if (!header.empty()) headers = curl_slist_append(headers, header.c_str());
    if (method == "POST") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    EXPECT_EQ(curl_easy_perform(curl), CURLE_OK) << method << " " << path;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return result;
  }

  json::object GetJson(const std::string& path, long status = 200) {
    HttpResult result = Request("GET", path);
    EXPECT_EQ(result.status, status) << path << ": " << result.body;
    return json::parse(result.body).as_object();
  }

  fs::path dir_;
  std::string db_;
  pid_t server_ = -1;
  int port_ = 0;
};

TEST_F(FailureApiBinaryTest, ServesIngestedAndUploadedFailureReports) {
  std::vector<std::string> ingest = {"ingest"};
  for (const auto& entry : fs::directory_iterator(FailureData() / "corpus")) {
    ingest.push_back(entry.path().string());
  }
  ingest.push_back(
      (fs::path(DMARCD_TEST_DATA_DIR) / "cases" / "22-arf-source-ip-with-comment" / "failure.eml")
          .string());
  // The abuse reports among them are rejected: exit 1 (something rejected).
  EXPECT_EQ(Run(ingest), 1) << ReadFile(dir_ / "err");

  // An upload of a failure report (case 23), then the same through another relay.
  std::string token;
  ASSERT_EQ(Run({"token", "add", "ci", "--scope", "ingest"}), 0);
  token = ReadFile(dir_ / "out");
  while (!token.empty() && token.back() == '\n') token.pop_back();
  StartServer();

  const std::string upload = ReadFile(fs::path(DMARCD_TEST_DATA_DIR) / "cases" /
                                      "23-forensic-base64-without-padding" / "failure.eml");
  HttpResult stored = Request("POST", "/api/v1/reports", upload, "Authorization: Bearer " + token);
  EXPECT_EQ(stored.status, 201) << stored.body;
  HttpResult again = Request("POST", "/api/v1/reports",
                             "Received: from relay.example.net by mx; 2 Jan 2025\r\n" + upload,
                             "Authorization: Bearer " + token);
  EXPECT_EQ(again.status, 200) << again.body;

  json::object list = GetJson("/api/v1/failure-reports");
  EXPECT_EQ(list.at("total").to_number<int64_t>(), 9);
  json::object example = GetJson("/api/v1/failure-reports?domain=example.com&from=2025-01-02&to=");
  ASSERT_EQ(example.at("total").to_number<int64_t>(), 2) << json::serialize(example);
  json::object by_ip = GetJson("/api/v1/failure-reports?source_ip=203.0.113.45");
  ASSERT_EQ(by_ip.at("total").to_number<int64_t>(), 1);
  const int64_t id = by_ip.at("items").at(0).at("id").to_number<int64_t>();

  json::object detail = GetJson("/api/v1/failure-reports/" + std::to_string(id));
  EXPECT_EQ(detail.at("source_ip_comment").as_string(), "bounce.example.net");
  EXPECT_EQ(detail.at("arrived_at").as_string(), "2025-01-02T09:30:00Z");
  EXPECT_EQ(detail.at("delivery_result").as_string(), "reject");
  EXPECT_EQ(detail.at("returned_part_type").as_string(), "text/rfc822-headers");
  EXPECT_EQ(detail.at("message_id").as_string(), "<offer-22@bounce.example.net>");
  EXPECT_NE(std::string(detail.at("headers").as_string()).find("Subject: January offers"),
            std::string::npos);

  HttpResult csv =
      Request("GET", "/api/v1/failure-reports?domain=example.com", "", "Accept: text/csv");
  EXPECT_EQ(csv.status, 200);
  EXPECT_NE(csv.headers.find("text/csv"), std::string::npos) << csv.headers;
  EXPECT_TRUE(csv.body.starts_with("id,arrived_at,domain,")) << csv.body;
  HttpResult one_row =
      Request("GET", "/api/v1/failure-reports/" + std::to_string(id) + "?format=csv");
  EXPECT_EQ(one_row.status, 200);
  EXPECT_NE(one_row.body.find("203.0.113.45"), std::string::npos);

  json::object unknown = GetJson("/api/v1/failure-reports?sort=asc", 400);
  EXPECT_EQ(unknown.at("error").at("code").as_string(), "invalid_argument");
  json::object missing = GetJson("/api/v1/failure-reports/424242", 404);
  EXPECT_EQ(missing.at("error").at("code").as_string(), "not_found");
}

}  // namespace
}  // namespace dmarcd::server
