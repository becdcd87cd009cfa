// The failure report endpoints: handler tests over a database filled by
// the Writer, and (FailureApiBinaryTest) the same endpoints of the real
// dmarcd binary over HTTP with libcurl.
#include "server/failure_api.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "server/config.hpp"
#include "storage/writer.hpp"

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

}  // namespace
}  // namespace dmarcd::server
