// Read access (issue #5): the policy on its own, with a fake token lookup,
// and the real binary refusing to listen openly on a non-loopback address
// and asking for credentials once they are configured.
#include "server/access.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "server/config.hpp"
#include "tests/server/serve_process.hpp"

namespace dmarcd::server {
namespace {

using std::chrono::milliseconds;
using testing::Exchange;

// Few iterations: the tests hash often, and the count is part of the entry.
constexpr uint32_t kTestIterations = 1000;

HttpResponse ErrorFor(int status, std::string_view code, std::string_view message) {
  HttpResponse response;
  response.status = status;
  response.body = std::string(code) + ": " + std::string(message);
  return response;
}

// One token, "dmarcd_read", of scope read.
Result<std::optional<storage::TokenRow>> FakeTokens(std::string_view secret) {
  if (secret != "dmarcd_read") return std::optional<storage::TokenRow>();
  storage::TokenRow row;
  row.name = "dashboard";
  row.scope = storage::TokenScope::kRead;
  return std::optional<storage::TokenRow>(row);
}

HttpRequest Request(std::string method, std::string target,
                    std::map<std::string, std::string> headers = {}) {
  HttpRequest request;
  request.method = std::move(method);
  request.target = std::move(target);
  request.headers = std::move(headers);
  request.headers.emplace("host", "dmarc.example.com");
  request.client_address = "192.0.2.1";
  return request;
}

std::string BasicHeader(const std::string& user_and_password) {
  // Base64 by OpenSSL, as the server decodes it.
  std::string out(4 * ((user_and_password.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(user_and_password.data()),
                                static_cast<int>(user_and_password.size()));
  out.resize(static_cast<size_t>(n));
  return "Basic " + out;
}

std::shared_ptr<AccessPolicy> PolicyFor(const Config::Http& http) {
  auto policy = AccessPolicy::Make(http, FakeTokens, ErrorFor);
  EXPECT_TRUE(policy) << policy.error().ToString();
  return policy ? *policy : nullptr;
}

int StatusOf(const std::optional<HttpResponse>& refusal) { return refusal ? refusal->status : 0; }

TEST(AccessPolicyTest, HashedPasswordsParseAndVerify) {
  const std::string entry = HashPassword("alice", "correct horse", kTestIterations);
  EXPECT_EQ(entry.rfind("alice:pbkdf2-sha256$1000$", 0), 0u) << entry;
  auto user = ParseBasicUser(entry);
  ASSERT_TRUE(user) << user.error().ToString();
  EXPECT_EQ(user->name, "alice");
  EXPECT_EQ(user->iterations, kTestIterations);
  EXPECT_EQ(user->salt.size(), 16u);
  EXPECT_EQ(user->key.size(), 32u);

  // The form `openssl kdf` prints: upper case, bytes separated by ':'.
  auto from_openssl = ParseBasicUser(
      "bob:pbkdf2-sha256$1000$00112233445566778899aabbccddeeff$"
      "D5:73:6D:13:AD:F4:6F:F9:FD:B6:0A:E4:FC:83:C8:D5:9B:79:83:CD:02:89:30:35:62:4C:6A:35:4B:4D:"
      "6B:F5");
  ASSERT_TRUE(from_openssl) << from_openssl.error().ToString();
  EXPECT_EQ(from_openssl->key.substr(0, 2), "\xD5\x73");
}

TEST(AccessPolicyTest, MalformedUsersAreConfigErrorsThatNeverShowTheHash) {
  for (const std::string& entry : std::vector<std::string>{
           "alice", ":pbkdf2-sha256$1000$0011223344556677$00", "alice:md5$1000$00$00",
           "alice:pbkdf2-sha256$10$00112233445566778899aabbccddeeff$" + std::string(64, 'a'),
           "alice:pbkdf2-sha256$1000$0011$" + std::string(64, 'a'),
           "alice:pbkdf2-sha256$1000$00112233445566778899aabbccddeeff$abcd",
           "alice:pbkdf2-sha256$1000$zz112233445566778899aabbccddeeff$" + std::string(64, 'a')}) {
    auto user = ParseBasicUser(entry);
    ASSERT_FALSE(user) << entry;
    EXPECT_EQ(user.error().code, ErrorCode::kConfig);
    EXPECT_NE(user.error().message.find("http.users"), std::string::npos);
    EXPECT_EQ(user.error().message.find("aaaaaaaa"), std::string::npos);
  }
}

TEST(AccessPolicyTest, OpenOnlyOnLoopbackUnlessProtected) {
  Config::Http http;
  http.listen = "0.0.0.0:8080";
  EXPECT_TRUE(CheckListenAccess(http, "127.0.0.1"));
  EXPECT_TRUE(CheckListenAccess(http, "127.1.2.3"));
  EXPECT_TRUE(CheckListenAccess(http, "::1"));
  for (const std::string address : {"0.0.0.0", "192.0.2.1", "::", "2001:db8::1"}) {
    auto refused = CheckListenAccess(http, address);
    ASSERT_FALSE(refused) << address;
    EXPECT_EQ(refused.error().code, ErrorCode::kConfig);
    for (const char* key :
         {"http.listen", "http.users", "http.require_read_token", "http.trusted_proxy_auth"}) {
      EXPECT_NE(refused.error().message.find(key), std::string::npos) << key;
    }
  }
  Config::Http users = http;
  users.users.push_back(HashPassword("alice", "pw", kTestIterations));
  EXPECT_TRUE(CheckListenAccess(users, "0.0.0.0"));
  Config::Http tokens = http;
  tokens.require_read_token = true;
  EXPECT_TRUE(CheckListenAccess(tokens, "::"));
  Config::Http proxy = http;
  proxy.trusted_proxy_auth = true;
  EXPECT_TRUE(CheckListenAccess(proxy, "192.0.2.1"));
}

TEST(AccessPolicyTest, BasicUsersGuardDashboardAndApi) {
  Config::Http http;
  http.users.push_back(HashPassword("alice", "correct horse", kTestIterations));
  auto policy = PolicyFor(http);
  ASSERT_TRUE(policy);
  EXPECT_TRUE(policy->Protected());

  for (const std::string target :
       {"/", "/index.html", "/api/v1/reports", "/%61pi/v1/summary", "/metrics"}) {
    auto refused = policy->Check(Request("GET", target));
    ASSERT_EQ(StatusOf(refused), 401) << target;
    bool challenged = false;
    for (const auto& [name, value] : refused->extra_headers) {
      challenged = challenged ||
                   (name == "WWW-Authenticate" && value.rfind("Basic realm=\"dmarcd\"", 0) == 0);
    }
    EXPECT_TRUE(challenged) << target;
  }
  const std::map<std::string, std::string> good = {
      {"authorization", BasicHeader("alice:correct horse")}};
  EXPECT_FALSE(policy->Check(Request("GET", "/", good)));
  EXPECT_FALSE(policy->Check(Request("GET", "/api/v1/reports?limit=1", good)));
  // Twice more: the second answer comes from the cache, and must agree.
  EXPECT_FALSE(policy->Check(Request("HEAD", "/api/v1/summary", good)));
  for (const std::string wrong :
       {"alice:correct horsE", "alice:", "mallory:correct horse", "alice", "alicecorrect horse"}) {
    EXPECT_EQ(StatusOf(policy->Check(
                  Request("GET", "/api/v1/reports", {{"authorization", BasicHeader(wrong)}}))),
              401)
        << wrong;
  }
  EXPECT_EQ(StatusOf(policy->Check(
                Request("GET", "/api/v1/reports", {{"authorization", "Basic !!!notbase64"}}))),
            401);
  // A bearer token opens the API as well.
  EXPECT_FALSE(
      policy->Check(Request("GET", "/api/v1/reports", {{"authorization", "Bearer dmarcd_read"}})));
  EXPECT_EQ(StatusOf(policy->Check(
                Request("GET", "/api/v1/reports", {{"authorization", "Bearer dmarcd_reaX"}}))),
            401);

  // Always open: health, and the upload, which checks its own token.
  EXPECT_FALSE(policy->Check(Request("GET", "/healthz")));
  EXPECT_FALSE(policy->Check(Request("POST", "/api/v1/reports")));
}

TEST(AccessPolicyTest, ReadTokensGuardTheApiOnly) {
  Config::Http http;
  http.require_read_token = true;
  auto policy = PolicyFor(http);
  ASSERT_TRUE(policy);
  EXPECT_EQ(StatusOf(policy->Check(Request("GET", "/api/v1/reports"))), 401);
  EXPECT_EQ(StatusOf(policy->Check(Request("GET", "/api/v1/failure-reports"))), 401);
  EXPECT_FALSE(
      policy->Check(Request("GET", "/api/v1/reports", {{"authorization", "bearer dmarcd_read"}})));
  // The dashboard's files hold no report data.
  EXPECT_FALSE(policy->Check(Request("GET", "/")));
  EXPECT_FALSE(policy->Check(Request("GET", "/app.js")));
}

TEST(AccessPolicyTest, NothingToCheckWhenOpenOrBehindAProxy) {
  Config::Http open;
  auto open_policy = PolicyFor(open);
  ASSERT_TRUE(open_policy);
  EXPECT_FALSE(open_policy->Protected());
  EXPECT_FALSE(open_policy->Check(Request("GET", "/api/v1/reports")));

  Config::Http proxy;
  proxy.trusted_proxy_auth = true;
  proxy.users.push_back(HashPassword("alice", "pw", kTestIterations));
  auto proxy_policy = PolicyFor(proxy);
  ASSERT_TRUE(proxy_policy);
  EXPECT_FALSE(proxy_policy->Check(Request("GET", "/api/v1/reports")));
  EXPECT_EQ(proxy_policy->Mode(), "proxy");
}

TEST(AccessPolicyTest, ForeignOriginsMayNotWrite) {
  Config::Http http;
  http.allowed_origins.push_back("https://Portal.example.com");
  auto policy = PolicyFor(http);
  ASSERT_TRUE(policy);
  auto post = [&](const std::string& origin) {
    return policy->Check(Request("POST", "/api/v1/reports", {{"origin", origin}}));
  };
  EXPECT_FALSE(post("https://dmarc.example.com"));  // its own Host
  EXPECT_FALSE(post("https://portal.example.com"));
  EXPECT_EQ(StatusOf(post("https://evil.example")), 403);
  EXPECT_EQ(StatusOf(post("null")), 403);
  EXPECT_EQ(StatusOf(post("https://dmarc.example.com.evil.example")), 403);
  EXPECT_EQ(StatusOf(policy->Check(
                Request("DELETE", "/api/v1/tokens/x", {{"origin", "https://evil.example"}}))),
            403);
  // Reads are not state changes: a cross-site GET gets no CORS header to
  // read the answer with anyway.
  EXPECT_FALSE(
      policy->Check(Request("GET", "/api/v1/reports", {{"origin", "https://evil.example"}})));
}

TEST(AccessConfigTest, HttpKeysComeFromFileAndEnvironment) {
  const auto file = std::filesystem::temp_directory_path() /
                    ("dmarcd-access-" + std::to_string(std::random_device{}()) + ".toml");
  const std::string user = HashPassword("alice", "pw", kTestIterations);
  std::ofstream(file) << "[http]\nusers = [\"" << user
                      << "\"]\nheader_timeout = 5\nrequest_timeout = 20\nidle_timeout = 7\n"
                         "max_connections = 100\nmax_connections_per_client = 3\n"
                         "allowed_origins = [\"https://portal.example.com\"]\n";
  ConfigFlags flags;
  flags.config_file = file.string();
  auto config = LoadConfig(flags, [](const std::string& name) -> std::optional<std::string> {
    if (name == "DMARCD_HTTP_REQUIRE_READ_TOKEN") return "true";
    if (name == "DMARCD_HTTP_ALLOWED_ORIGINS") return "https://a.example,https://b.example";
    return std::nullopt;
  });
  std::filesystem::remove(file);
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->http.users, std::vector<std::string>{user});
  EXPECT_EQ(config->http.header_timeout, 5);
  EXPECT_EQ(config->http.request_timeout, 20);
  EXPECT_EQ(config->http.idle_timeout, 7);
  EXPECT_EQ(config->http.max_connections, 100);
  EXPECT_EQ(config->http.max_connections_per_client, 3);
  EXPECT_TRUE(config->http.require_read_token);
  EXPECT_EQ(config->http.allowed_origins,
            (std::vector<std::string>{"https://a.example", "https://b.example"}));

  // Defaults as documented.
  const Config::Http defaults;
  EXPECT_EQ(defaults.header_timeout, 10);
  EXPECT_EQ(defaults.request_timeout, 30);
  EXPECT_EQ(defaults.max_connections_per_client, 32);
  EXPECT_FALSE(defaults.trusted_proxy_auth);

  auto env_only = [](const std::map<std::string, std::string>& values) {
    return LoadConfig({}, [values](const std::string& name) -> std::optional<std::string> {
      auto it = values.find(name);
      if (it == values.end()) return std::nullopt;
      return it->second;
    });
  };
  auto half_tls = env_only({{"DMARCD_HTTP_TLS_CERT", "cert.pem"}});
  ASSERT_FALSE(half_tls);
  EXPECT_NE(half_tls.error().message.find("http.tls_key"), std::string::npos);
  EXPECT_FALSE(env_only({{"DMARCD_HTTP_HEADER_TIMEOUT", "0"}}));
  EXPECT_FALSE(env_only({{"DMARCD_HTTP_USERS", "alice:plaintext"}}));
}

// The real binary.
class AccessServeTest : public ::testing::Test {
 protected:
  testing::ServeProcess serve_;
};

TEST_F(AccessServeTest, RefusesToListenOpenlyOnANonLoopbackAddress) {
  EXPECT_FALSE(serve_.Start({}, "0.0.0.0:0"));
  EXPECT_EQ(serve_.ExitStatus(), 2);
  const std::string log = serve_.Log();
  EXPECT_NE(log.find("is not a loopback address and read access is open"), std::string::npos)
      << log;
  EXPECT_NE(log.find("http.trusted_proxy_auth"), std::string::npos) << log;
}

TEST_F(AccessServeTest, ListensOnAllAddressesBehindAnAuthenticatingProxy) {
  ASSERT_TRUE(serve_.Start({{"DMARCD_HTTP_TRUSTED_PROXY_AUTH", "true"}}, "0.0.0.0:0"))
      << serve_.Log();
  EXPECT_NE(serve_.Log().find("read_access=proxy"), std::string::npos);
  EXPECT_EQ(testing::StatusOf(Exchange(serve_.Port(),
                                       "GET /api/v1/reports HTTP/1.1\r\nHost: "
                                       "x\r\nConnection: close\r\n\r\n")),
            200);
  EXPECT_EQ(serve_.Stop(), 0);
}

TEST_F(AccessServeTest, ConfiguredUsersAndTokensApplyOnLoopbackToo) {
  const std::string read_token = serve_.AddToken("dashboard", "read");
  const std::string ingest_token = serve_.AddToken("ci", "ingest");
  ASSERT_TRUE(serve_.Start(
      {{"DMARCD_HTTP_USERS", HashPassword("alice", "correct horse", kTestIterations)}}))
      << serve_.Log();
  EXPECT_NE(serve_.Log().find("read_access=protected"), std::string::npos);
  auto get = [&](const std::string& target, const std::string& auth) {
    return Exchange(serve_.Port(), "GET " + target + " HTTP/1.1\r\nHost: x\r\n" +
                                       (auth.empty() ? "" : "Authorization: " + auth + "\r\n") +
                                       "Connection: close\r\n\r\n");
  };
  const std::string anonymous = get("/api/v1/reports", "");
  EXPECT_EQ(testing::StatusOf(anonymous), 401);
  EXPECT_NE(anonymous.find("WWW-Authenticate: Basic realm=\"dmarcd\""), std::string::npos);
  EXPECT_EQ(testing::StatusOf(get("/", "")), 401);
  EXPECT_EQ(testing::StatusOf(get("/", BasicHeader("alice:correct horse"))), 200);
  EXPECT_EQ(testing::StatusOf(get("/api/v1/reports", BasicHeader("alice:correct horse"))), 200);
  EXPECT_EQ(testing::StatusOf(get("/api/v1/reports", BasicHeader("alice:wrong"))), 401);
  EXPECT_EQ(testing::StatusOf(get("/api/v1/reports", "Bearer " + read_token)), 200);
  EXPECT_EQ(testing::StatusOf(get("/api/v1/reports", "Bearer " + ingest_token)), 200);
  EXPECT_EQ(testing::StatusOf(get("/api/v1/reports", "Bearer dmarcd_nope")), 401);
  EXPECT_EQ(testing::StatusOf(get("/healthz", "")), 200);

  // The upload keeps its rule: Basic auth is no ingest token.
  const std::string upload = "POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                             BasicHeader("alice:correct horse") +
                             "\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
  EXPECT_EQ(testing::StatusOf(Exchange(serve_.Port(), upload)), 401);
  EXPECT_EQ(serve_.Stop(), 0);
  EXPECT_EQ(serve_.Log().find("correct horse"), std::string::npos);
}

}  // namespace
}  // namespace dmarcd::server
