// The HTTP front door of the real dmarcd binary against hostile clients
// (issue #6): every hostile .http and .txt request, cross-site forms, slow
// clients and connection caps, over raw sockets so every byte and the
// source address are the test's. Deadlines are shortened through the
// DMARCD_HTTP_* variables so each test takes seconds.
//
// DMARCD_SLOW_LORIS_LONG=1 adds the long run: 1,000 slow-loris connections
// with the default deadlines for 35 s, printing the p99 latency of a normal
// request meanwhile.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <sstream>

#include "tests/server/serve_process.hpp"

namespace dmarcd::server::testing {
namespace {

using std::chrono::milliseconds;

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> lines;
  std::istringstream in(ReadFile(path));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.front() == '#') continue;
    lines.push_back(line);
  }
  return lines;
}

std::string Get(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "Connection: close\r\n\r\n";
}

// The body of the hostile upload: the report after the header block.
std::string BodyOf(const std::string& http) { return http.substr(http.find("\r\n\r\n") + 4); }

std::string Upload(const std::string& target, const std::string& body, const std::string& extra) {
  return "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/xml\r\n" +
         extra + "Content-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

class HttpHardeningTest : public ::testing::Test {
 protected:
  void StartWith(const std::map<std::string, std::string>& env = {}) {
    ASSERT_TRUE(serve_.Start(env)) << serve_.Log();
  }

  ServeProcess serve_;
};

TEST_F(HttpHardeningTest, SmuggledRequestIsRefusedAndNeverRuns) {
  const std::string token = serve_.AddToken("ci", "ingest");
  StartWith();
  std::string request = ReadFile(HostilePath("http_cl_te_smuggling.http"));
  request.replace(request.find("REPLACE_WITH_TEST_TOKEN"), 23, token);

  RawClient client(serve_.Port());
  ASSERT_TRUE(client.Connected());
  client.Send(request);
  bool closed = false;
  const std::string response = client.ReadAll(milliseconds(10000), &closed);
  EXPECT_EQ(StatusOf(response), 400) << response;
  EXPECT_TRUE(closed);
  EXPECT_EQ(CountOf(response, "HTTP/1.1 "), 1u) << response;
  EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
  EXPECT_EQ(serve_.Stop(), 0);
  // The server logs every target it answers at debug level.
  EXPECT_EQ(serve_.Log().find("smuggled=1"), std::string::npos) << serve_.Log();
  EXPECT_EQ(CountRows(serve_.Db(), "reports"), 0);
}

TEST_F(HttpHardeningTest, OversizedHeaderIsRefusedWith431AndClosed) {
  StartWith();
  RawClient client(serve_.Port());
  ASSERT_TRUE(client.Connected());
  // Sent from another thread: the server answers after 16 KiB, long before
  // the client has written its 1 MiB.
  std::thread sender(
      [&client] { client.Send(ReadFile(HostilePath("http_oversized_header.http"))); });
  bool closed = false;
  const std::string response = client.ReadAll(milliseconds(15000), &closed);
  sender.join();
  EXPECT_EQ(StatusOf(response), 431) << response.substr(0, 200);
  EXPECT_TRUE(closed);
  EXPECT_NE(response.find("\"too_large\""), std::string::npos);

  // And the server still answers.
  EXPECT_EQ(StatusOf(Exchange(serve_.Port(), Get("/healthz"))), 200);
}

TEST_F(HttpHardeningTest, HeaderCapComesFromTheConfiguration) {
  StartWith({{"DMARCD_HTTP_MAX_HEADER_BYTES", "2048"}});
  const std::string padding(3000, 'a');
  const std::string refused =
      Exchange(serve_.Port(), Get("/healthz", "X-Pad: " + padding + "\r\n"));
  EXPECT_EQ(StatusOf(refused), 431) << refused.substr(0, 200);
  const std::string small = Exchange(serve_.Port(), Get("/healthz", "X-Pad: aaaa\r\n"));
  EXPECT_EQ(StatusOf(small), 200) << small.substr(0, 200);
}

TEST_F(HttpHardeningTest, UnauthenticatedUploadsAre401AndStoreNothing) {
  const std::string token = serve_.AddToken("ci", "ingest");
  StartWith();
  const std::string body = BodyOf(ReadFile(HostilePath("http_unauthenticated_upload.http")));
  std::string last_byte_changed = token;
  last_byte_changed.back() = last_byte_changed.back() == 'A' ? 'B' : 'A';
  std::string truncated = token.substr(0, token.size() - 1);
  const std::string basic = "Basic Y2k6" + std::string("ZG1hcmNk");  // "ci:dmarcd"

  const std::vector<std::pair<std::string, std::string>> attempts = {
      {"/api/v1/reports", ""},
      {"/api/v1/reports", "Authorization: Bearer\r\n"},
      {"/api/v1/reports", "Authorization: Bearer \r\n"},
      {"/api/v1/reports", "Authorization: Bearer dmarcd_wrong\r\n"},
      {"/api/v1/reports", "Authorization: Bearer " + last_byte_changed + "\r\n"},
      {"/api/v1/reports", "Authorization: Bearer " + truncated + "\r\n"},
      {"/api/v1/reports", "Authorization: " + basic + "\r\n"},
      {"/api/v1/reports", "Authorization: Basic " + token + "\r\n"},
      {"/api/v1/reports?token=" + token, ""},
      {"/api/v1/reports?access_token=" + token, ""},
  };
  for (const auto& [target, header] : attempts) {
    const std::string response = Exchange(serve_.Port(), Upload(target, body, header));
    EXPECT_EQ(StatusOf(response), 401) << target << " " << header << response;
  }
  EXPECT_EQ(CountRows(serve_.Db(), "reports"), 0);
  EXPECT_EQ(CountRows(serve_.Db(), "rejected"), 0);

  // The same request with the token where it belongs is stored: the
  // refusals above were about the token alone.
  const std::string accepted = Exchange(
      serve_.Port(), Upload("/api/v1/reports", body, "Authorization: Bearer " + token + "\r\n"));
  EXPECT_EQ(StatusOf(accepted), 201) << accepted;
  EXPECT_EQ(CountRows(serve_.Db(), "reports"), 1);
}

TEST_F(HttpHardeningTest, StaticPathTraversalNeverLeavesTheAssets) {
  // Files a traversal would aim at, beside the database.
  std::ofstream(serve_.Dir() / "config.toml") << "[http]\nlisten = \"127.0.0.1:0\"\n";
  StartWith();
  const auto targets = Lines(HostilePath("http_static_path_traversal.txt"));
  ASSERT_EQ(targets.size(), 10u);
  for (const std::string& target : targets) {
    const std::string response = Exchange(serve_.Port(), Get(target));
    const int status = StatusOf(response);
    EXPECT_TRUE(status == 400 || status == 404) << target << " -> " << status;
    EXPECT_EQ(response.find("root:"), std::string::npos) << target;
    EXPECT_EQ(response.find("SQLite format 3"), std::string::npos) << target;
    EXPECT_EQ(response.find("listen = "), std::string::npos) << target;
  }
}

TEST_F(HttpHardeningTest, SqlInjectionInQueryParametersChangesNothing) {
  const std::string token = serve_.AddToken("ci", "ingest");
  StartWith();
  const std::string body = BodyOf(ReadFile(HostilePath("http_unauthenticated_upload.http")));
  ASSERT_EQ(StatusOf(Exchange(serve_.Port(), Upload("/api/v1/reports", body,
                                                    "Authorization: Bearer " + token + "\r\n"))),
            201);
  const std::string schema = SchemaOf(serve_.Db());
  ASSERT_FALSE(schema.empty());

  const auto queries = Lines(HostilePath("http_sqli_query_params.txt"));
  ASSERT_EQ(queries.size(), 12u);
  double slowest = 0;
  for (const std::string& query : queries) {
    // Spaces and quotes as a client would send them: percent-encoded.
    std::string target = "/api/v1/reports?";
    for (const char ch : query) {
      if (ch == ' ' || ch == '"' || ch == '\'' || ch == '<' || ch == '>') {
        char escaped[4];
        std::snprintf(escaped, sizeof escaped, "%%%02X", static_cast<unsigned char>(ch));
        target += escaped;
      } else {
        target += ch;
      }
    }
    const auto start = Clock::now();
    const std::string response = Exchange(serve_.Port(), Get(target));
    slowest = std::max(slowest, SecondsSince(start));
    const int status = StatusOf(response);
    EXPECT_TRUE(status == 200 || status == 400) << query << " -> " << response;
    EXPECT_EQ(response.find("SQLITE"), std::string::npos) << query;
    EXPECT_EQ(response.find("sqlite_master"), std::string::npos) << query;
  }
  // Generous: sanitizer builds are slow; a randomblob(1e9) would take far longer.
  EXPECT_LT(slowest, 5.0);
  std::printf("slowest injected query: %.3f s\n", slowest);
  EXPECT_EQ(SchemaOf(serve_.Db()), schema);
  EXPECT_EQ(CountRows(serve_.Db(), "reports"), 1);
}

TEST_F(HttpHardeningTest, CrossSiteFormsAndForeignOriginsAreRefused) {
  const std::string token = serve_.AddToken("ci", "ingest");
  StartWith({{"DMARCD_HTTP_ALLOWED_ORIGINS", "https://portal.example.com"}});
  const std::string body = BodyOf(ReadFile(HostilePath("http_unauthenticated_upload.http")));
  const std::string bearer = "Authorization: Bearer " + token + "\r\n";
  auto post = [&](const std::string& content_type, const std::string& extra) {
    const std::string request =
        "POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(serve_.Port()) +
        "\r\nContent-Type: " + content_type + "\r\n" + extra +
        "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    return Exchange(serve_.Port(), request);
  };

  // A form on another site, with and without a token.
  for (const char* type :
       {"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"}) {
    const std::string refused = post(type, "Origin: https://evil.example\r\n");
    EXPECT_EQ(StatusOf(refused), 403) << refused;
    EXPECT_EQ(StatusOf(post(type, "Origin: https://evil.example\r\n" + bearer)), 403);
    EXPECT_EQ(StatusOf(post(type, "Origin: null\r\n" + bearer)), 403);
  }
  EXPECT_EQ(StatusOf(post("application/xml", "Origin: http://127.0.0.1.evil.example\r\n" + bearer)),
            403);
  EXPECT_EQ(CountRows(serve_.Db(), "reports"), 0);

  // A form without Origin (an old browser) carries no bearer token: 401.
  EXPECT_EQ(StatusOf(post("application/x-www-form-urlencoded", "")), 401);

  // dmarcd's own origin, and the configured one, may upload.
  const std::string own = "Origin: http://127.0.0.1:" + std::to_string(serve_.Port()) + "\r\n";
  const std::string stored = post("application/xml", own + bearer);
  EXPECT_EQ(StatusOf(stored), 201) << stored;
  const std::string again =
      post("application/xml", "Origin: https://portal.example.com\r\n" + bearer);
  EXPECT_EQ(StatusOf(again), 200) << again;  // the same report: a duplicate
  EXPECT_EQ(CountRows(serve_.Db(), "reports"), 1);
}

TEST_F(HttpHardeningTest, NoCorsHeadersAndEveryPageHasCspAndNosniff) {
  StartWith();
  const std::string origin = "Origin: https://evil.example\r\n";
  const std::vector<std::string> responses = {
      Exchange(serve_.Port(), "OPTIONS /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\n" + origin +
                                  "Access-Control-Request-Method: POST\r\n"
                                  "Access-Control-Request-Headers: authorization\r\n"
                                  "Connection: close\r\n\r\n"),
      Exchange(serve_.Port(), Get("/api/v1/reports", origin)),
      Exchange(serve_.Port(), Get("/", origin)),
      Exchange(serve_.Port(), Get("/index.html")),
      Exchange(serve_.Port(), Get("/no-such-page")),
      Exchange(serve_.Port(), Get("/healthz", origin)),
      Exchange(serve_.Port(), Get("/app.js")),
      Exchange(serve_.Port(), Get("/style.css")),
  };
  int pages = 0;
  for (const std::string& response : responses) {
    const std::string head = response.substr(0, response.find("\r\n\r\n"));
    EXPECT_GT(StatusOf(response), 0) << response;
    std::string lower = head;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_EQ(lower.find("access-control-"), std::string::npos) << head;
    EXPECT_NE(head.find("X-Content-Type-Options: nosniff"), std::string::npos) << head;
    if (head.find("Content-Type: text/html") != std::string::npos) {
      ++pages;
      EXPECT_NE(head.find("Content-Security-Policy: "), std::string::npos) << head;
      // No inline script: the policy names script-src without 'unsafe-inline'.
      const size_t csp = head.find("Content-Security-Policy: ");
      const std::string policy = head.substr(csp, head.find("\r\n", csp) - csp);
      // script-src, or default-src where it is absent (CSP 3 section 6.1.1),
      // allows scripts from dmarcd's own files or none at all.
      size_t script = policy.find("script-src ");
      if (script == std::string::npos) script = policy.find("default-src ");
      ASSERT_NE(script, std::string::npos) << policy;
      const size_t sources = policy.find(' ', script) + 1;
      const std::string allowed = policy.substr(sources, policy.find(';', sources) - sources);
      EXPECT_TRUE(allowed == "'self'" || allowed == "'none'") << policy;
    }
  }
  EXPECT_GE(pages, 2);
}

TEST_F(HttpHardeningTest, BodyOverTheLimitIs413BeforeTheBodyIsSent) {
  const std::string token = serve_.AddToken("ci", "ingest");
  StartWith({{"DMARCD_HTTP_MAX_UPLOAD_BYTES", "4096"}});
  for (const std::string length : {"99999999999", "4097"}) {
    RawClient client(serve_.Port());
    ASSERT_TRUE(client.Connected());
    // The header only: the answer must come without a byte of the body.
    std::string header = "POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    header += "Authorization: Bearer " + token + "\r\n";
    header += "Content-Type: application/xml\r\nContent-Length: " + length + "\r\n\r\n";
    client.Send(header);
    const auto start = Clock::now();
    const std::string response = client.ReadResponse(milliseconds(5000));
    EXPECT_EQ(StatusOf(response), 413) << length << ": " << response;
    EXPECT_LT(SecondsSince(start), 3.0);
  }
  EXPECT_EQ(CountRows(serve_.Db(), "reports"), 0);
}

// Short deadlines: header 1 s, request 2 s, idle 1 s; 4 connections a client.
std::map<std::string, std::string> ShortDeadlines() {
  return {{"DMARCD_HTTP_HEADER_TIMEOUT", "1"},
          {"DMARCD_HTTP_REQUEST_TIMEOUT", "2"},
          {"DMARCD_HTTP_IDLE_TIMEOUT", "1"},
          {"DMARCD_HTTP_MAX_CONNECTIONS_PER_CLIENT", "4"}};
}

std::string Source(int n) { return "127.0.0." + std::to_string(2 + n); }

TEST_F(HttpHardeningTest, SlowClientsDoNotDelayOthersAndAreClosedByTheHeaderDeadline) {
  RaiseOwnFileLimit();
  // A header deadline of 3 s leaves time to open all of them first.
  std::map<std::string, std::string> env = ShortDeadlines();
  env["DMARCD_HTTP_HEADER_TIMEOUT"] = "3";
  env["DMARCD_HTTP_REQUEST_TIMEOUT"] = "4";
  StartWith(env);
  // 1,000 slow-loris connections from 250 addresses, 4 each (the cap).
  constexpr int kSlow = 1000;
  std::vector<RawClient> slow;
  slow.reserve(kSlow);
  for (int i = 0; i < kSlow; ++i) {
    slow.emplace_back(serve_.Port(), Source(i / 4));
    ASSERT_TRUE(slow.back().Connected()) << i;
    slow.back().Send("GET /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
  }
  const auto opened = Clock::now();

  // A normal request from 127.0.0.1 is answered at once.
  const auto start = Clock::now();
  const std::string normal = Exchange(serve_.Port(), Get("/api/v1/reports"));
  const double latency = SecondsSince(start);
  EXPECT_EQ(StatusOf(normal), 200) << normal;
  EXPECT_LT(latency, 2.0);  // well inside the 3 s header deadline of the slow ones
  std::printf("normal request among %d slow-loris connections: %.3f s\n", kSlow, latency);

  // One byte every 200 ms keeps none of them alive past the header deadline.
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(milliseconds(200));
    for (RawClient& client : slow) client.Send("a");
  }
  int closed_count = 0;
  for (RawClient& client : slow) {
    bool closed = false;
    const std::string answer = client.ReadAll(milliseconds(5000), &closed);
    EXPECT_TRUE(answer.empty()) << answer;  // closed without an answer
    if (closed) ++closed_count;
  }
  EXPECT_EQ(closed_count, kSlow);
  const double all_closed = SecondsSince(opened);
  EXPECT_GE(all_closed, 2.5);
  EXPECT_LT(all_closed, 10.0);
  // And the server still answers.
  EXPECT_EQ(StatusOf(Exchange(serve_.Port(), Get("/healthz"))), 200);
}

TEST_F(HttpHardeningTest, PerClientCapRefusesConnectionsAboveIt) {
  StartWith(ShortDeadlines());
  std::vector<RawClient> held;
  for (int i = 0; i < 4; ++i) {
    held.emplace_back(serve_.Port(), "127.0.0.77");
    ASSERT_TRUE(held.back().Connected());
  }
  // The fifth from the same address is closed without a byte read.
  RawClient fifth(serve_.Port(), "127.0.0.77");
  ASSERT_TRUE(fifth.Connected());  // the kernel completes the handshake
  bool closed = false;
  EXPECT_EQ(fifth.ReadAll(milliseconds(800), &closed), "");
  EXPECT_TRUE(closed);

  // Another address is served meanwhile, and so is the first one once its
  // connections are gone.
  EXPECT_EQ(StatusOf(Exchange(serve_.Port(), Get("/healthz"), "127.0.0.78")), 200);
  held.clear();
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(StatusOf(Exchange(serve_.Port(), Get("/healthz"), "127.0.0.77")), 200);
}

TEST_F(HttpHardeningTest, SlowBodyIsClosedByTheRequestDeadline) {
  const std::string token = serve_.AddToken("ci", "ingest");
  StartWith(ShortDeadlines());
  RawClient client(serve_.Port());
  ASSERT_TRUE(client.Connected());
  const auto start = Clock::now();
  ASSERT_TRUE(
      client.Send("POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                  token + "\r\nContent-Type: application/xml\r\nContent-Length: 10485760\r\n\r\n"));
  bool alive = true;
  while (alive && SecondsSince(start) < 8) {
    std::this_thread::sleep_for(milliseconds(100));
    alive = client.Send("<");
  }
  const double elapsed = SecondsSince(start);
  EXPECT_FALSE(alive);
  EXPECT_GE(elapsed, 1.8);  // the request deadline (2 s), not the header one
  EXPECT_LT(elapsed, 5.0);
  EXPECT_EQ(CountRows(serve_.Db(), "reports"), 0);
}

TEST_F(HttpHardeningTest, IdleKeepAliveConnectionIsClosed) {
  StartWith(ShortDeadlines());
  RawClient client(serve_.Port());
  ASSERT_TRUE(client.Connected());
  client.Send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(StatusOf(client.ReadResponse(milliseconds(5000))), 200);
  // Still open for a second request...
  client.Send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(StatusOf(client.ReadResponse(milliseconds(5000))), 200);
  // ...then closed after the idle timeout (1 s).
  const auto start = Clock::now();
  bool closed = false;
  EXPECT_EQ(client.ReadAll(milliseconds(5000), &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_GE(SecondsSince(start), 0.8);
  EXPECT_LT(SecondsSince(start), 3.0);
}

// The long run of issue #6: the default deadlines (10 s header, 30 s
// request), 1,000 connections from 32 addresses each sending a header byte
// every 10 s, a normal request every 100 ms meanwhile.
TEST_F(HttpHardeningTest, ThousandSlowLorisConnectionsLongRun) {
  if (std::getenv("DMARCD_SLOW_LORIS_LONG") == nullptr) {
    GTEST_SKIP() << "set DMARCD_SLOW_LORIS_LONG=1 for the 35 s run";
  }
  RaiseOwnFileLimit();
  StartWith();
  std::vector<RawClient> slow;
  for (int i = 0; i < 1000; ++i) {
    slow.emplace_back(serve_.Port(), Source(i / 32));
    ASSERT_TRUE(slow.back().Connected()) << i;
    slow.back().Send("G");
  }
  const auto opened = Clock::now();
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    while (!done) {
      for (int s = 0; s < 100 && !done; ++s) std::this_thread::sleep_for(milliseconds(100));
      for (RawClient& client : slow) client.Send("E");
    }
  });
  std::vector<double> latencies;
  while (SecondsSince(opened) < 32) {
    const auto start = Clock::now();
    const std::string response = Exchange(serve_.Port(), Get("/api/v1/reports"));
    latencies.push_back(SecondsSince(start));
    EXPECT_EQ(StatusOf(response), 200);
    std::this_thread::sleep_for(milliseconds(100));
  }
  done = true;
  trickle.join();
  std::sort(latencies.begin(), latencies.end());
  const double p99 = latencies[latencies.size() * 99 / 100];
  std::printf("requests=%zu p50=%.4f s p99=%.4f s max=%.4f s\n", latencies.size(),
              latencies[latencies.size() / 2], p99, latencies.back());
  EXPECT_LT(p99, 1.0);
  int alive = 0;
  for (RawClient& client : slow) {
    bool closed = false;
    client.ReadAll(milliseconds(10), &closed);
    if (!closed) ++alive;
  }
  std::printf("slow connections alive after %.1f s: %d\n", SecondsSince(opened), alive);
  EXPECT_EQ(alive, 0);
}

}  // namespace
}  // namespace dmarcd::server::testing
