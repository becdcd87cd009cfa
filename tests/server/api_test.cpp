#include "server/api.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <random>
#include <set>

#include "storage/database.hpp"
#include "storage/tokens.hpp"
#include "storage/writer.hpp"

namespace dmarcd::server {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string ReadData(const std::string& name) {
  std::ifstream file(std::string(DMARCD_TEST_DATA_DIR) + "/server/" + name, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("dmarcd-api-test-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    path_ = (dir_ / "dmarcd.db").string();

    auto db = storage::Database::Open(path_);
    ASSERT_TRUE(db) << db.error().ToString();
    {
      storage::Writer writer(**db, parser::Limits{});
      auto stored = writer.Ingest(
          {ReadData("fastmail_four-records-multi-dkim_stalwart.xml"), "file:fastmail.xml"});
      ASSERT_TRUE(stored) << stored.error().ToString();
      ASSERT_EQ(stored->Overall(), storage::PartStatus::kStored);
    }
    auto read_secret = storage::AddToken(**db, "reader", storage::TokenScope::kRead);
    ASSERT_TRUE(read_secret);
    read_secret_ = *read_secret;
    token_db_ = std::move(*db);

    auto pool = ReaderPool::Open(path_, 2, 5000);
    ASSERT_TRUE(pool) << pool.error().ToString();
    pool_ = std::move(*pool);
    auto writer_db = storage::Database::Open(path_);
    ASSERT_TRUE(writer_db);
    queue_ = std::make_unique<IngestQueue>(std::move(*writer_db), parser::Limits{});
    api_ = std::make_unique<Api>(
        *pool_, queue_.get(),
        [this](std::string_view secret) { return storage::VerifyToken(*token_db_, secret); },
        ApiOptions{100000});
  }

  void TearDown() override {
    api_.reset();
    queue_.reset();
    pool_.reset();
    token_db_.reset();
    fs::remove_all(dir_);
  }

  HttpResponse Call(const std::string& method, const std::string& target,
                    std::map<std::string, std::string> headers = {}, std::string body = "") {
    HttpRequest request{method, target, std::move(headers), std::move(body), "192.0.2.7"};
    auto promise = std::make_shared<std::promise<HttpResponse>>();
    auto future = promise->get_future();
    api_->Handle(request,
                 [promise](HttpResponse response) { promise->set_value(std::move(response)); });
    EXPECT_EQ(future.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    return future.get();
  }

  json::object Json(const HttpResponse& response) {
    EXPECT_EQ(response.content_type, "application/json");
    return json::parse(response.body).as_object();
  }

  static std::string Header(const HttpResponse& response, const std::string& name) {
    for (const auto& [key, value] : response.extra_headers) {
      if (key == name) return value;
    }
    return "";
  }

  void ExpectBadParameter(const std::string& target, const std::string& mention) {
    HttpResponse response = Call("GET", target);
    EXPECT_EQ(response.status, 400) << target;
    json::object error = Json(response).at("error").as_object();
    EXPECT_EQ(error.at("code").as_string(), "invalid_argument") << target;
    EXPECT_NE(std::string(error.at("message").as_string()).find(mention), std::string::npos)
        << target << ": " << error.at("message").as_string();
  }

  fs::path dir_;
  std::string path_;
  std::string read_secret_;
  std::unique_ptr<storage::Database> token_db_;
  std::unique_ptr<ReaderPool> pool_;
  std::unique_ptr<IngestQueue> queue_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, RejectsBadQueryParameters) {
  ExpectBadParameter("/api/v1/reports?from=2025-13-01", "parameter 'from': expected an ISO 8601");
  ExpectBadParameter("/api/v1/summary?to=yesterday", "parameter 'to'");
  ExpectBadParameter("/api/v1/timeseries?from=2025-01-01T06:00:00", "parameter 'from'");
  ExpectBadParameter("/api/v1/reports?limit=0", "parameter 'limit'");
  ExpectBadParameter("/api/v1/reports?limit=1001", "parameter 'limit'");
  ExpectBadParameter("/api/v1/reports?limit=ten", "parameter 'limit'");
  ExpectBadParameter("/api/v1/rejected?offset=-1", "parameter 'offset'");
  ExpectBadParameter("/api/v1/reports?colour=blue", "unknown parameter 'colour'");
  ExpectBadParameter("/api/v1/rejected?domain=stalw.art", "unknown parameter 'domain'");
  ExpectBadParameter("/api/v1/domains?limit=5", "unknown parameter 'limit'");
  ExpectBadParameter("/api/v1/summary?from=2025-01-02&to=2025-01-01", "parameter 'to'");
  ExpectBadParameter("/api/v1/reports?limit=1&limit=2", "parameter 'limit' given twice");
}

TEST_F(ApiTest, EmptyQueryParametersCountAsAbsent) {
  const std::string plain = Call("GET", "/api/v1/summary").body;
  for (const std::string target :
       {"/api/v1/summary?", "/api/v1/summary?domain=&from=&to=", "/api/v1/summary?&&domain&"}) {
    HttpResponse response = Call("GET", target);
    EXPECT_EQ(response.status, 200) << target << ": " << response.body;
    EXPECT_EQ(response.body, plain) << target;
  }
  json::object reports = Json(Call("GET", "/api/v1/reports?domain=&limit=&offset=&from="));
  EXPECT_EQ(reports.at("total").as_int64(), 1);
  EXPECT_EQ(reports.at("limit").as_int64(), 100);
  for (const std::string target :
       {"/api/v1/domains?", "/api/v1/timeseries?to=", "/api/v1/rejected?limit=&offset=",
        "/api/v1/reports?&domain=stalw.art&"}) {
    HttpResponse response = Call("GET", target);
    EXPECT_EQ(response.status, 200) << target << ": " << response.body;
  }
  // A value still has to be right, and a name still has to be known.
  ExpectBadParameter("/api/v1/summary?domain=&colour=blue", "unknown parameter 'colour'");
  ExpectBadParameter("/api/v1/summary?colour=", "unknown parameter 'colour'");
  ExpectBadParameter("/api/v1/summary?domain&colour", "unknown parameter 'colour'");
}

TEST_F(ApiTest, ListsReportsWithFiltersAndPaging) {
  json::object all = Json(Call("GET", "/api/v1/reports"));
  EXPECT_EQ(all.at("total").as_int64(), 1);
  EXPECT_EQ(all.at("limit").as_int64(), 100);
  EXPECT_EQ(all.at("offset").as_int64(), 0);
  json::object report = all.at("items").as_array().at(0).as_object();
  EXPECT_EQ(report.at("org_name").as_string(), "Fastmail Pty Ltd");
  EXPECT_EQ(report.at("report_id").as_string(), "758848224");
  EXPECT_EQ(report.at("domain").as_string(), "stalw.art");
  EXPECT_EQ(report.at("begin").as_string(), "2022-11-02T00:00:00Z");
  EXPECT_EQ(report.at("end").as_string(), "2022-11-02T23:59:59Z");
  EXPECT_EQ(report.at("records").to_number<int64_t>(), 4);
  EXPECT_EQ(report.at("messages").to_number<int64_t>(), 9);

  json::object in_range =
      Json(Call("GET", "/api/v1/reports?domain=STALW.ART&from=2022-11-02&to=2022-11-03"));
  EXPECT_EQ(in_range.at("total").as_int64(), 1);
  json::object later = Json(Call("GET", "/api/v1/reports?from=2023-01-01T00:00:00Z"));
  EXPECT_EQ(later.at("total").as_int64(), 0);
  EXPECT_TRUE(later.at("items").as_array().empty());
  json::object other = Json(Call("GET", "/api/v1/reports?domain=example.com"));
  EXPECT_EQ(other.at("total").as_int64(), 0);
}

TEST_F(ApiTest, SummaryEchoesItsFilterAndCountsMessages) {
  json::object summary = Json(Call("GET", "/api/v1/summary?domain=stalw.art&from=2022-11-02"));
  EXPECT_EQ(summary.at("domain").as_string(), "stalw.art");
  EXPECT_EQ(summary.at("from").as_string(), "2022-11-02T00:00:00Z");
  EXPECT_TRUE(summary.at("to").is_null());
  EXPECT_EQ(summary.at("messages").to_number<int64_t>(), 9);
  // Only the last record (1 message) passes DKIM alignment; none passes SPF.
  EXPECT_EQ(summary.at("dmarc_pass").to_number<int64_t>(), 1);
  EXPECT_EQ(summary.at("dmarc_fail").to_number<int64_t>(), 8);
  EXPECT_EQ(summary.at("dkim_aligned_pass").to_number<int64_t>(), 1);
  EXPECT_EQ(summary.at("spf_aligned_pass").to_number<int64_t>(), 0);
  EXPECT_EQ(summary.at("disposition").at("none").to_number<int64_t>(), 9);
}

TEST_F(ApiTest, UnknownPathsAndReportsAre404) {
  HttpResponse missing = Call("GET", "/api/v1/reports/999999");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(Json(missing).at("error").at("code").as_string(), "not_found");
  EXPECT_EQ(Call("GET", "/api/v1/reports/abc").status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/nothing").status, 404);
  EXPECT_EQ(Call("GET", "/no-such-page.html").status, 404);
  EXPECT_EQ(Call("DELETE", "/api/v1/reports").status, 405);
}

TEST_F(ApiTest, MethodNotAllowedListsWhatTheRouteTakes) {
  HttpResponse reports = Call("DELETE", "/api/v1/reports");
  EXPECT_EQ(reports.status, 405);
  EXPECT_EQ(Header(reports, "Allow"), "GET, HEAD, POST");
  EXPECT_EQ(Json(reports).at("error").at("message").as_string(), "allowed: GET, HEAD, POST");
  for (const std::string target : {"/api/v1/summary", "/api/v1/reports/1", "/healthz", "/"}) {
    HttpResponse response = Call("POST", target);
    EXPECT_EQ(response.status, 405) << target;
    EXPECT_EQ(Header(response, "Allow"), "GET, HEAD") << target;
  }
}

TEST_F(ApiTest, DashboardPagesCarryAContentSecurityPolicy) {
  const std::string policy =
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
      "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
  for (const std::string target : {"/", "/index.html", "/app.js", "/style.css", "/missing.html"}) {
    HttpResponse response = Call("GET", target);
    EXPECT_EQ(Header(response, "Content-Security-Policy"), policy) << target;
  }
  EXPECT_EQ(Call("GET", "/").status, 200);
}

TEST_F(ApiTest, HealthzChecksTheDatabase) {
  HttpResponse health = Call("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  json::object body = Json(health);
  EXPECT_EQ(body.at("status").as_string(), "ok");
  EXPECT_EQ(body.at("checks").at("database").as_string(), "ok");
}

TEST_F(ApiTest, UploadNeedsAnIngestToken) {
  HttpResponse none = Call("POST", "/api/v1/reports", {}, "x");
  EXPECT_EQ(none.status, 401);
  ASSERT_EQ(none.extra_headers.size(), 1u);
  EXPECT_EQ(none.extra_headers[0].first, "WWW-Authenticate");
  EXPECT_EQ(Call("POST", "/api/v1/reports", {{"authorization", "Bearer dmarcd_wrong"}}, "x").status,
            401);
  EXPECT_EQ(Call("POST", "/api/v1/reports", {{"authorization", "Basic abc"}}, "x").status, 401);
  HttpResponse reader =
      Call("POST", "/api/v1/reports", {{"authorization", "Bearer " + read_secret_}}, "x");
  EXPECT_EQ(reader.status, 403);
  EXPECT_EQ(Json(reader).at("error").at("code").as_string(), "forbidden");
}

TEST_F(ApiTest, UploadAboveTheLimitIs413) {
  auto secret = storage::AddToken(*token_db_, "ci", storage::TokenScope::kIngest);
  ASSERT_TRUE(secret);
  HttpResponse response = Call("POST", "/api/v1/reports", {{"authorization", "Bearer " + *secret}},
                               std::string(100001, 'x'));
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(Json(response).at("error").at("code").as_string(), "too_large");
}

TEST_F(ApiTest, UploadOriginNamesTheUploadTokenAndClient) {
  auto secret = storage::AddToken(*token_db_, "mailserver", storage::TokenScope::kIngest);
  ASSERT_TRUE(secret);
  const std::map<std::string, std::string> auth = {{"authorization", "Bearer " + *secret}};
  EXPECT_EQ(Call("POST", "/api/v1/reports", auth, "not a report").status, 422);
  EXPECT_EQ(Call("POST", "/api/v1/reports", auth, "not a report either").status, 422);

  json::object rejected = Json(Call("GET", "/api/v1/rejected"));
  std::set<std::string> origins;
  for (const auto& row : rejected.at("items").as_array()) {
    origins.insert(std::string(row.at("origin").as_string()));
  }
  EXPECT_EQ(origins, (std::set<std::string>{"http:upload/1 token=mailserver client=192.0.2.7",
                                            "http:upload/2 token=mailserver client=192.0.2.7"}));
}

TEST_F(ApiTest, UploadGoesThroughTheQueue) {
  auto secret = storage::AddToken(*token_db_, "admin", storage::TokenScope::kAdmin);
  ASSERT_TRUE(secret);
  HttpResponse response = Call("POST", "/api/v1/reports", {{"authorization", "bearer " + *secret}},
                               ReadData("fastmail_four-records-multi-dkim_stalwart.xml"));
  EXPECT_EQ(response.status, 200);  // stored in SetUp already
  json::object body = Json(response);
  EXPECT_EQ(body.at("status").as_string(), "duplicate");
  json::object part = body.at("parts").as_array().at(0).as_object();
  EXPECT_EQ(part.at("status").as_string(), "duplicate");
  EXPECT_EQ(part.at("report").at("report_id").as_string(), "758848224");
  EXPECT_TRUE(part.at("error").is_null());
}

}  // namespace
}  // namespace dmarcd::server
