// The REST routes of issue #5 over a database of the corpus reports:
// timeseries buckets and fill, sources and their records, reporters,
// policy, report paging and raw download, CSV, /metrics, RouteName, and the
// OpenAPI document held against the route table, in process and over HTTP.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>

#include "server/api.hpp"
#include "server/http_server.hpp"
#include "storage/database.hpp"
#include "storage/writer.hpp"

namespace dmarcd::server {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

const fs::path kData = fs::path(DMARCD_TEST_DATA_DIR);
const fs::path kFastmail =
    kData / "corpus" / "aggregate" / "fastmail_four-records-multi-dkim_stalwart.xml";

int64_t Int(const json::value& value) { return value.to_number<int64_t>(); }

// The keys of `figures` that hold counts, disposition included.
void AddFigures(std::map<std::string, int64_t>& sum, const json::object& figures) {
  for (const char* key :
       {"messages", "dmarc_pass", "dmarc_fail", "dkim_aligned_pass", "spf_aligned_pass"}) {
    sum[key] += Int(figures.at(key));
  }
  for (const char* key : {"none", "quarantine", "reject"}) {
    sum[std::string("disposition_") + key] += Int(figures.at("disposition").at(key));
  }
}

// One database and Api for the whole suite: every test only reads.
struct Shared {
  fs::path dir;
  std::unique_ptr<ReaderPool> pool;
  std::unique_ptr<Api> api;
};
Shared* shared = nullptr;

class ApiRoutesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    shared = new Shared;
    shared->dir =
        fs::temp_directory_path() / ("dmarcd-api-routes-" + std::to_string(std::random_device{}()));
    fs::create_directories(shared->dir);
    const std::string path = (shared->dir / "dmarcd.db").string();
    auto db = storage::Database::Open(path);
    ASSERT_TRUE(db) << db.error().ToString();
    storage::Writer writer(**db, parser::Limits{});
    for (const auto& entry : fs::directory_iterator(kData / "corpus" / "aggregate")) {
      ASSERT_TRUE(writer.Ingest({ReadFile(entry.path()), "file:test"}));
    }
    for (const auto& entry : fs::directory_iterator(kData / "failure" / "corpus")) {
      ASSERT_TRUE(writer.Ingest({ReadFile(entry.path()), "file:test"}));
    }
    auto pool = ReaderPool::Open(path, 2, 5000);
    ASSERT_TRUE(pool) << pool.error().ToString();
    shared->pool = std::move(*pool);
    ApiOptions options;
    options.metrics_text = [] { return std::string("dmarcd_up 1\n"); };
    shared->api = std::make_unique<Api>(*shared->pool, nullptr, nullptr, options);
  }

  static void TearDownTestSuite() {
    shared->api.reset();
    shared->pool.reset();
    fs::remove_all(shared->dir);
    delete shared;
    shared = nullptr;
  }

  static HttpResponse Call(const std::string& target,
                           std::map<std::string, std::string> headers = {}) {
    HttpRequest request{"GET", target, std::move(headers), "", "127.0.0.1"};
    std::promise<HttpResponse> promise;
    shared->api->Handle(
        request, [&promise](HttpResponse response) { promise.set_value(std::move(response)); });
    return promise.get_future().get();
  }

  static json::object Json(const std::string& target) {
    HttpResponse response = Call(target);
    EXPECT_EQ(response.status, 200) << target << ": " << response.body;
    EXPECT_EQ(response.content_type, "application/json") << target;
    return json::parse(response.body).as_object();
  }

  static std::string Header(const HttpResponse& response, const std::string& name) {
    for (const auto& [key, value] : response.extra_headers) {
      if (key == name) return value;
    }
    return "";
  }

  static void ExpectBadParameter(const std::string& target, const std::string& mention) {
    HttpResponse response = Call(target);
    EXPECT_EQ(response.status, 400) << target;
    json::object error = json::parse(response.body).at("error").as_object();
    EXPECT_EQ(error.at("code").as_string(), "invalid_argument") << target;
    EXPECT_NE(std::string(error.at("message").as_string()).find(mention), std::string::npos)
        << target << ": " << error.at("message").as_string();
  }

  static int64_t FastmailId() {
    json::object reports = Json("/api/v1/reports?domain=stalw.art");
    return Int(reports.at("items").at(0).at("id"));
  }
};

TEST_F(ApiRoutesTest, TimeseriesBucketsAddUpToTheSummary) {
  for (const std::string range : {"", "&from=2018-06-01&to=2024-04-01T12:00:00Z"}) {
    json::object summary = Json("/api/v1/summary?domain=example.com" + range);
    std::map<std::string, int64_t> expected;
    AddFigures(expected, summary);
    ASSERT_GT(expected["messages"], 1000);
    for (const std::string bucket : {"day", "week", "month"}) {
      std::string target = "/api/v1/timeseries?domain=example.com&bucket=";
      target += bucket;
      target += range;
      json::object series = Json(target);
      std::map<std::string, int64_t> sum;
      std::set<std::string> dates;
      for (const json::value& item : series.at("items").as_array()) {
        AddFigures(sum, item.as_object());
        const std::string date(item.at("date").as_string());
        EXPECT_TRUE(dates.insert(date).second) << date;
        int y = 0;
        unsigned m = 0;
        unsigned d = 0;
        ASSERT_EQ(std::sscanf(date.c_str(), "%d-%u-%u", &y, &m, &d), 3) << date;
        const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m},
                                              std::chrono::day{d}};
        ASSERT_TRUE(ymd.ok()) << date;
        if (bucket == "week") {
          EXPECT_EQ(std::chrono::weekday(std::chrono::sys_days(ymd)), std::chrono::Monday) << date;
        }
        if (bucket == "month") {
          EXPECT_EQ(static_cast<unsigned>(ymd.day()), 1u) << date;
        }
      }
      EXPECT_EQ(sum, expected) << bucket << range;
      EXPECT_EQ(Int(series.at("total")), static_cast<int64_t>(dates.size()));
    }
  }
}

TEST_F(ApiRoutesTest, TimeseriesFillsEmptyBucketsInsideTheRange) {
  json::object days = Json("/api/v1/timeseries?domain=stalw.art&from=2022-10-30&to=2022-11-06");
  const json::array& items = days.at("items").as_array();
  ASSERT_EQ(items.size(), 7u);
  EXPECT_EQ(items.at(0).at("date").as_string(), "2022-10-30");
  EXPECT_EQ(items.at(6).at("date").as_string(), "2022-11-05");
  EXPECT_EQ(Int(items.at(3).at("messages")), 9);
  EXPECT_EQ(Int(items.at(0).at("messages")), 0);
  EXPECT_EQ(Int(items.at(0).at("disposition").at("none")), 0);

  json::object sparse =
      Json("/api/v1/timeseries?domain=stalw.art&from=2022-10-30&to=2022-11-06&fill=false");
  ASSERT_EQ(sparse.at("items").as_array().size(), 1u);
  EXPECT_EQ(sparse.at("items").at(0).at("date").as_string(), "2022-11-02");

  // 2022-10-30 is a Sunday: its week began on Monday 2022-10-24.
  json::object weeks =
      Json("/api/v1/timeseries?domain=stalw.art&from=2022-10-30&to=2022-11-06&bucket=week");
  ASSERT_EQ(weeks.at("items").as_array().size(), 2u);
  EXPECT_EQ(weeks.at("items").at(0).at("date").as_string(), "2022-10-24");
  EXPECT_EQ(weeks.at("items").at(1).at("date").as_string(), "2022-10-31");
  EXPECT_EQ(Int(weeks.at("items").at(1).at("messages")), 9);
  json::object months =
      Json("/api/v1/timeseries?domain=stalw.art&from=2022-09-15&to=2023-01-01&bucket=month");
  ASSERT_EQ(months.at("items").as_array().size(), 4u);
  EXPECT_EQ(months.at("items").at(2).at("date").as_string(), "2022-11-01");
}

TEST_F(ApiRoutesTest, SourcesAreSortedFilteredAndPaged) {
  json::object all = Json("/api/v1/sources?domain=stalw.art");
  EXPECT_EQ(Int(all.at("total")), 4);
  EXPECT_EQ(Int(all.at("limit")), 100);
  const json::array& items = all.at("items").as_array();
  ASSERT_EQ(items.size(), 4u);
  std::vector<std::string> order;
  for (const auto& item : items) order.emplace_back(item.at("source_ip").as_string());
  EXPECT_EQ(order, (std::vector<std::string>{"173.228.157.66", "64.147.108.117", "64.147.108.173",
                                             "54.240.8.13"}));
  const json::object& first = items.at(0).as_object();
  EXPECT_TRUE(first.at("reverse_dns").is_null());
  EXPECT_EQ(Int(first.at("messages")), 4);
  EXPECT_EQ(Int(first.at("dmarc_fail")), 4);
  EXPECT_EQ(Int(first.at("fail_both")), 4);
  EXPECT_EQ(Int(first.at("reports")), 1);
  EXPECT_EQ(first.at("first_seen").as_string(), "2022-11-02T00:00:00Z");
  EXPECT_EQ(first.at("last_seen").as_string(), "2022-11-02T23:59:59Z");
  EXPECT_EQ(json::serialize(first.at("header_from")), R"(["stalw.art"])");
  EXPECT_EQ(json::serialize(first.at("dkim_domains")), R"(["jmap.topicbox.com"])");
  EXPECT_EQ(json::serialize(first.at("spf_domains")), R"(["jmap.bounce.topicbox.com"])");
  const json::object& ses = items.at(3).as_object();
  EXPECT_EQ(Int(ses.at("dmarc_pass")), 1);
  EXPECT_DOUBLE_EQ(first.at("dmarc_pass_rate").as_double(), 0.0);
  EXPECT_DOUBLE_EQ(ses.at("dmarc_pass_rate").as_double(),
                   1.0 / static_cast<double>(Int(ses.at("messages"))));
  EXPECT_DOUBLE_EQ(ses.at("dkim_aligned_pass_rate").as_double(),
                   static_cast<double>(Int(ses.at("dkim_aligned_pass"))) /
                       static_cast<double>(Int(ses.at("messages"))));
  EXPECT_EQ(json::serialize(ses.at("dkim_domains")), R"(["amazonses.com","stalw.art"])");

  json::object pass = Json("/api/v1/sources?domain=stalw.art&result=pass");
  ASSERT_EQ(Int(pass.at("total")), 1);
  EXPECT_EQ(pass.at("items").at(0).at("source_ip").as_string(), "54.240.8.13");
  EXPECT_EQ(Int(Json("/api/v1/sources?domain=stalw.art&result=fail").at("total")), 3);
  EXPECT_EQ(Int(Json("/api/v1/sources?domain=stalw.art&result=fail_both").at("total")), 3);
  EXPECT_EQ(Json("/api/v1/sources?domain=stalw.art&sort=source_ip")
                .at("items")
                .at(0)
                .at("source_ip")
                .as_string(),
            "173.228.157.66");
  EXPECT_EQ(Json("/api/v1/sources?domain=stalw.art&sort=messages&result=fail&offset=1")
                .at("items")
                .at(0)
                .at("source_ip")
                .as_string(),
            "64.147.108.117");
  json::object page = Json("/api/v1/sources?domain=stalw.art&limit=2&offset=1");
  EXPECT_EQ(Int(page.at("total")), 4);
  ASSERT_EQ(page.at("items").as_array().size(), 2u);
  EXPECT_EQ(page.at("items").at(0).at("source_ip").as_string(), "64.147.108.117");
  json::object past = Json("/api/v1/sources?domain=stalw.art&offset=10");
  EXPECT_EQ(Int(past.at("total")), 4);
  EXPECT_TRUE(past.at("items").as_array().empty());
  EXPECT_EQ(Int(Json("/api/v1/sources?domain=stalw.art&from=2022-11-03").at("total")), 0);
}

TEST_F(ApiRoutesTest, SourcesOfAllDomainsAddUpToTheSummary) {
  const json::object summary = Json("/api/v1/summary");
  int64_t messages = 0;
  int64_t fail = 0;
  int64_t seen = 0;
  int64_t total = 1;
  while (seen < total) {
    json::object page = Json("/api/v1/sources?limit=1000&offset=" + std::to_string(seen));
    total = Int(page.at("total"));
    ASSERT_FALSE(page.at("items").as_array().empty());
    for (const auto& item : page.at("items").as_array()) {
      messages += Int(item.at("messages"));
      fail += Int(item.at("dmarc_fail"));
      ++seen;
    }
  }
  EXPECT_GT(total, 1000);
  EXPECT_EQ(messages, Int(summary.at("messages")));
  EXPECT_EQ(fail, Int(summary.at("dmarc_fail")));
}

TEST_F(ApiRoutesTest, SourceRecordsShowTheReportBehindEachRecord) {
  json::object records = Json("/api/v1/sources/54.240.8.13/records?domain=stalw.art");
  ASSERT_EQ(Int(records.at("total")), 1);
  const json::object& record = records.at("items").at(0).as_object();
  EXPECT_EQ(Int(record.at("report_id")), FastmailId());
  EXPECT_EQ(record.at("report").as_string(), "758848224");
  EXPECT_EQ(record.at("org_name").as_string(), "Fastmail Pty Ltd");
  EXPECT_EQ(record.at("begin").as_string(), "2022-11-02T00:00:00Z");
  EXPECT_EQ(record.at("domain").as_string(), "stalw.art");
  EXPECT_EQ(Int(record.at("count")), 1);
  EXPECT_EQ(record.at("disposition").as_string(), "none");
  EXPECT_EQ(record.at("header_from").as_string(), "stalw.art");
  ASSERT_EQ(record.at("dkim").as_array().size(), 2u);
  EXPECT_EQ(record.at("dkim").at(0).at("domain").as_string(), "stalw.art");
  EXPECT_EQ(record.at("dkim").at(0).at("selector").as_string(), "kvoujh5guu2jpweurhpt2ioscpkpukc3");
  EXPECT_EQ(record.at("spf").at(0).at("domain").as_string(), "amazonses.com");

  // An IPv6 source in the path; no domain given: every domain.
  json::object v6 = Json("/api/v1/sources/2607:f8b0:4864:20::132/records");
  ASSERT_GE(Int(v6.at("total")), 1);
  EXPECT_EQ(v6.at("items").at(0).at("source_ip").as_string(), "2607:f8b0:4864:20::132");
  EXPECT_EQ(Int(Json("/api/v1/sources/192.0.2.254/records").at("total")), 0);

  // Paging across the records of one source.
  json::object large = Json("/api/v1/sources?domain=example.com&sort=messages&limit=1");
  const std::string busiest(large.at("items").at(0).at("source_ip").as_string());
  json::object all = Json("/api/v1/sources/" + busiest + "/records?domain=example.com");
  const int64_t total = Int(all.at("total"));
  ASSERT_GE(total, 1);
  json::object last = Json("/api/v1/sources/" + busiest +
                           "/records?domain=example.com&offset=" + std::to_string(total - 1));
  ASSERT_EQ(last.at("items").as_array().size(), 1u);
  EXPECT_EQ(last.at("items").at(0), all.at("items").as_array().back());
}

TEST_F(ApiRoutesTest, ReportersAndPolicy) {
  json::object reporters = Json("/api/v1/reporters?domain=stalw.art");
  ASSERT_EQ(Int(reporters.at("total")), 1);
  const json::object& fastmail = reporters.at("items").at(0).as_object();
  EXPECT_EQ(fastmail.at("org_name").as_string(), "Fastmail Pty Ltd");
  EXPECT_EQ(Int(fastmail.at("reports")), 1);
  EXPECT_EQ(Int(fastmail.at("messages")), 9);
  EXPECT_EQ(Int(fastmail.at("dmarc_pass")), 1);
  EXPECT_EQ(Int(fastmail.at("dmarc_fail")), 8);
  EXPECT_EQ(fastmail.at("first_seen").as_string(), "2022-11-02T00:00:00Z");
  EXPECT_FALSE(fastmail.at("reporter_key").as_string().empty());

  json::object everyone = Json("/api/v1/reporters");
  int64_t previous = std::numeric_limits<int64_t>::max();
  for (const auto& item : everyone.at("items").as_array()) {
    EXPECT_LE(Int(item.at("messages")), previous);
    previous = Int(item.at("messages"));
  }
  EXPECT_GT(Int(everyone.at("total")), 5);

  ExpectBadParameter("/api/v1/policy", "parameter 'domain'");
  json::object policy = Json("/api/v1/policy?domain=stalw.art");
  ASSERT_EQ(Int(policy.at("total")), 1);
  const json::object& p = policy.at("items").at(0).as_object();
  EXPECT_EQ(p.at("p").as_string(), "none");
  EXPECT_EQ(p.at("sp").as_string(), "none");
  EXPECT_EQ(Int(p.at("pct")), 100);
  EXPECT_EQ(Int(p.at("reports")), 1);
  EXPECT_EQ(p.at("last_seen").as_string(), "2022-11-02T23:59:59Z");

  // example.com's reports come from many sources with different records:
  // the items are distinct and their reports add up.
  json::object many = Json("/api/v1/policy?domain=example.com");
  std::set<std::string> distinct;
  int64_t reports = 0;
  std::string previous_first;
  for (const auto& item : many.at("items").as_array()) {
    json::object key = item.as_object();
    reports += Int(key.at("reports"));
    const std::string first(key.at("first_seen").as_string());
    EXPECT_LE(previous_first, first);
    previous_first = first;
    key.erase("reports");
    key.erase("first_seen");
    key.erase("last_seen");
    EXPECT_TRUE(distinct.insert(json::serialize(key)).second) << json::serialize(key);
  }
  EXPECT_GT(distinct.size(), 1u);
  EXPECT_EQ(reports, Int(Json("/api/v1/reports?domain=example.com").at("total")));
}

TEST_F(ApiRoutesTest, ReportsBySourceAndReportRecordsPaged) {
  EXPECT_EQ(Int(Json("/api/v1/reports?domain=stalw.art&source_ip=54.240.8.13").at("total")), 1);
  EXPECT_EQ(Int(Json("/api/v1/reports?source_ip=54.240.8.13").at("total")), 1);
  EXPECT_EQ(Int(Json("/api/v1/reports?source_ip=192.0.2.254").at("total")), 0);
  // Asked for in another spelling, an address still finds its canonical form.
  EXPECT_EQ(Int(Json("/api/v1/reports?source_ip=%5B54.240.8.13%5D").at("total")), 1);

  const std::string report = "/api/v1/reports/" + std::to_string(FastmailId());
  json::object page = Json(report + "?limit=2");
  EXPECT_EQ(Int(page.at("records_total")), 4);
  EXPECT_EQ(Int(page.at("limit")), 2);
  ASSERT_EQ(page.at("records").as_array().size(), 2u);
  EXPECT_EQ(page.at("records").at(1).at("source_ip").as_string(), "173.228.157.66");
  json::object tail = Json(report + "?offset=3");
  ASSERT_EQ(tail.at("records").as_array().size(), 1u);
  EXPECT_EQ(tail.at("records").at(0).at("source_ip").as_string(), "54.240.8.13");
  EXPECT_EQ(tail.at("records").at(0).at("dkim").as_array().size(), 2u);
  EXPECT_EQ(Int(Json(report).at("limit")), 100);
  ExpectBadParameter(report + "?limit=1001", "parameter 'limit'");
  ExpectBadParameter(report + "?domain=stalw.art", "unknown parameter 'domain'");
}

TEST_F(ApiRoutesTest, RawIsTheEnvelopeAsReceived) {
  const std::string id = std::to_string(FastmailId());
  HttpResponse raw = Call("/api/v1/reports/" + id + "/raw");
  ASSERT_EQ(raw.status, 200);
  EXPECT_EQ(raw.body, ReadFile(kFastmail));
  EXPECT_EQ(raw.content_type, "application/xml");
  EXPECT_EQ(Header(raw, "Content-Disposition"), "attachment; filename=\"report-" + id + ".xml\"");

  json::object zips = Json("/api/v1/reports?domain=example.com&limit=1000");
  bool saw_zip = false;
  for (const auto& item : zips.at("items").as_array()) {
    HttpResponse each = Call("/api/v1/reports/" + std::to_string(Int(item.at("id"))) + "/raw");
    ASSERT_EQ(each.status, 200);
    if (each.content_type == "application/zip") {
      saw_zip = true;
      EXPECT_EQ(each.body.substr(0, 2), "PK");
    }
  }
  EXPECT_TRUE(saw_zip);
  EXPECT_EQ(Call("/api/v1/reports/999999/raw").status, 404);
  EXPECT_EQ(Call("/api/v1/reports/x/raw").status, 404);
}

TEST_F(ApiRoutesTest, TablesAnswerCsv) {
  HttpResponse sources = Call("/api/v1/sources?domain=stalw.art&format=csv");
  ASSERT_EQ(sources.status, 200);
  EXPECT_EQ(sources.content_type, "text/csv; charset=utf-8");
  std::istringstream lines(sources.body);
  std::string header;
  std::getline(lines, header);
  EXPECT_EQ(header,
            "source_ip,reverse_dns,messages,dmarc_pass,dmarc_fail,dkim_aligned_pass,"
            "spf_aligned_pass,disposition_none,disposition_quarantine,disposition_reject,"
            "fail_both,dmarc_pass_rate,dkim_aligned_pass_rate,spf_aligned_pass_rate,"
            "header_from,dkim_domains,spf_domains,reports,first_seen,last_seen\r");
  std::string row;
  std::vector<std::string> rows;
  while (std::getline(lines, row)) rows.push_back(row);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(
      rows.back(),
      "54.240.8.13,,1,1,0,1,0,1,0,0,0,1,1,0,stalw.art,amazonses.com;stalw.art,amazonses.com,1,"
      "2022-11-02T00:00:00Z,2022-11-02T23:59:59Z\r");

  HttpResponse reporters = Call("/api/v1/reporters?domain=stalw.art", {{"accept", "text/csv"}});
  EXPECT_EQ(reporters.content_type, "text/csv; charset=utf-8");
  EXPECT_EQ(reporters.body.substr(0, reporters.body.find('\n')),
            "org_name,reporter_key,reports,messages,dmarc_pass,dmarc_fail,first_seen,last_seen\r");
  const std::vector<std::string> csv_targets = {
      "/api/v1/summary?format=csv",
      "/api/v1/timeseries?format=csv",
      "/api/v1/domains?format=csv",
      "/api/v1/policy?domain=stalw.art&format=csv",
      "/api/v1/reports?format=csv",
      "/api/v1/rejected?format=csv",
      "/api/v1/sources/54.240.8.13/records?format=csv",
      "/api/v1/reports/" + std::to_string(FastmailId()) + "?format=csv"};
  for (const std::string& target : csv_targets) {
    HttpResponse response = Call(target);
    EXPECT_EQ(response.status, 200) << target;
    EXPECT_EQ(response.content_type, "text/csv; charset=utf-8") << target;
    EXPECT_GE(std::count(response.body.begin(), response.body.end(), '\n'), 2) << target;
  }
  // A record's DKIM results in one cell: domain:selector:result, joined by ';'.
  HttpResponse records = Call("/api/v1/sources/54.240.8.13/records?format=csv");
  EXPECT_NE(records.body.find("stalw.art:kvoujh5guu2jpweurhpt2ioscpkpukc3:pass;amazonses.com:"),
            std::string::npos)
      << records.body;
  // A record's disposition is one column with its value, as in the JSON.
  for (const std::string& target :
       {std::string("/api/v1/sources/54.240.8.13/records?format=csv"),
        "/api/v1/reports/" + std::to_string(FastmailId()) + "?format=csv"}) {
    std::istringstream csv(Call(target).body);
    std::string head;
    std::string first;
    std::getline(csv, head);
    std::getline(csv, first);
    auto cells = [](const std::string& line) {
      std::vector<std::string> out(1);
      for (char ch : line) {
        if (ch == ',') {
          out.emplace_back();
        } else if (ch != '\r') {
          out.back().push_back(ch);
        }
      }
      return out;
    };
    const std::vector<std::string> names = cells(head);
    const auto column = std::find(names.begin(), names.end(), "disposition");
    ASSERT_NE(column, names.end()) << target << ": " << head;
    EXPECT_EQ(cells(first).at(column - names.begin()), "none") << target << ": " << first;
  }
  ExpectBadParameter("/api/v1/sources?format=xml", "parameter 'format'");
}

TEST_F(ApiRoutesTest, RejectsUnknownParametersAndBadValuesNamingThem) {
  ExpectBadParameter("/api/v1/timeseries?bucket=year", "parameter 'bucket'");
  ExpectBadParameter("/api/v1/timeseries?fill=yes", "parameter 'fill'");
  ExpectBadParameter("/api/v1/timeseries?limit=3", "unknown parameter 'limit'");
  ExpectBadParameter("/api/v1/timeseries?from=1990-01-01&to=2025-01-01", "parameter 'fill'");
  EXPECT_EQ(Call("/api/v1/timeseries?from=1990-01-01&to=2025-01-01&bucket=month").status, 200);
  EXPECT_EQ(Call("/api/v1/timeseries?from=1990-01-01&to=2025-01-01&fill=false").status, 200);
  ExpectBadParameter("/api/v1/sources?result=bad", "parameter 'result'");
  ExpectBadParameter("/api/v1/sources?sort=name", "parameter 'sort'");
  ExpectBadParameter("/api/v1/sources?source_ip=1.2.3.4", "unknown parameter 'source_ip'");
  ExpectBadParameter("/api/v1/sources?from=2025-02-30", "parameter 'from'");
  ExpectBadParameter("/api/v1/sources/1.2.3.4/records?result=fail", "unknown parameter 'result'");
  ExpectBadParameter("/api/v1/sources/not-an-ip/records", "'not-an-ip' is not an IPv4 or IPv6");
  ExpectBadParameter("/api/v1/reports?source_ip=bogus", "parameter 'source_ip'");
  ExpectBadParameter("/api/v1/reports?source_ip=1.2.3", "parameter 'source_ip'");
  ExpectBadParameter("/api/v1/reporters?limit=0", "parameter 'limit'");
  ExpectBadParameter("/api/v1/policy?domain=stalw.art&from=2022-01-01", "unknown parameter 'from'");
  ExpectBadParameter("/api/v1/openapi.json?x=1", "unknown parameter 'x'");
}

TEST_F(ApiRoutesTest, MetricsAnswerPrometheusTextWhenSet) {
  HttpResponse metrics = Call("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics.body, "dmarcd_up 1\n");

  Api bare(*shared->pool, nullptr, nullptr);
  std::promise<HttpResponse> promise;
  bare.Handle(HttpRequest{"GET", "/metrics", {}, "", ""},
              [&promise](HttpResponse response) { promise.set_value(std::move(response)); });
  EXPECT_EQ(promise.get_future().get().status, 404);
}

TEST_F(ApiRoutesTest, RouteNamesAreBounded) {
  EXPECT_EQ(Api::RouteName("GET", "/api/v1/reports/17"), "/api/v1/reports/{id}");
  EXPECT_EQ(Api::RouteName("GET", "/api/v1/reports/17/raw"), "/api/v1/reports/{id}/raw");
  EXPECT_EQ(Api::RouteName("GET", "/api/v1/sources/2001:db8::1/records?domain=x"),
            "/api/v1/sources/{ip}/records");
  EXPECT_EQ(Api::RouteName("POST", "/api/v1/reports"), "/api/v1/reports");
  EXPECT_EQ(Api::RouteName("GET", "/api/v1/summary?domain=a"), "/api/v1/summary");
  EXPECT_EQ(Api::RouteName("GET", "/metrics"), "/metrics");
  EXPECT_EQ(Api::RouteName("GET", "/"), "static");
  EXPECT_EQ(Api::RouteName("GET", "/app.js"), "static");
  EXPECT_EQ(Api::RouteName("GET", "/no-such-page"), "other");
  EXPECT_EQ(Api::RouteName("GET", "/api/v1/nothing/here"), "other");
  EXPECT_EQ(Api::RouteName("GET", "%%"), "other");
}

// GET `target` over a real socket; the status, or 0 when the request failed.
long HttpGet(uint16_t port, const std::string& target) {
  CURL* curl = curl_easy_init();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + target;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION,
      +[](char*, size_t size, size_t count, void*) { return size * count; });
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  }
  curl_easy_cleanup(curl);
  return status;
}

TEST_F(ApiRoutesTest, OpenApiDocumentListsExactlyTheRoutes) {
  json::object document = Json("/api/v1/openapi.json");
  EXPECT_EQ(document.at("openapi").as_string(), "3.1.0");
  std::set<std::string> documented;
  for (const auto& [path, item] : document.at("paths").as_object()) {
    for (const auto& [method, operation] : item.as_object()) {
      if (method == "parameters" || method == "summary" || method == "description") continue;
      std::string upper(method);
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert(upper + " " + std::string(path));
      EXPECT_TRUE(operation.as_object().contains("responses")) << path;
    }
  }
  std::set<std::string> routed;
  for (const RouteInfo& route : Api::Routes()) {
    EXPECT_FALSE(route.description.empty()) << route.pattern;
    routed.insert(std::string(route.method) + " " + std::string(route.pattern));
  }
  EXPECT_EQ(documented, routed);

  // Every documented GET answers something other than 404, in process and
  // through the HTTP server.
  HttpServerOptions options;
  options.port = 0;
  HttpServer server(
      options,
      [](const HttpRequest& request, std::function<void(HttpResponse)> respond) {
        shared->api->Handle(request, std::move(respond));
      },
      Api::ErrorResponse);
  auto port = server.Start();
  ASSERT_TRUE(port) << port.error().ToString();
  json::object failures = Json("/api/v1/failure-reports");
  ASSERT_GE(Int(failures.at("total")), 1);
  const std::string failure_id = std::to_string(Int(failures.at("items").at(0).at("id")));
  for (const RouteInfo& route : Api::Routes()) {
    if (route.method != "GET") continue;
    std::string target(route.pattern);
    const bool failure = target.find("failure-reports") != std::string::npos;
    if (auto at = target.find("{id}"); at != std::string::npos) {
      target.replace(at, 4, failure ? failure_id : std::to_string(FastmailId()));
    }
    if (auto at = target.find("{ip}"); at != std::string::npos)
      target.replace(at, 4, "54.240.8.13");
    if (target == "/api/v1/policy") target += "?domain=stalw.art";
    EXPECT_EQ(Call(target).status, 200) << target;
    EXPECT_EQ(HttpGet(*port, target), 200) << target;
  }
  server.Stop();
}

}  // namespace
}  // namespace dmarcd::server
