// HTTPS from `dmarcd serve` (issue #5): a self-signed certificate made by
// the openssl command at test time, and libcurl verifying the server with
// it as the CA file.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/server/serve_process.hpp"

namespace dmarcd::server::testing {
namespace {

struct CurlResult {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = (serve_.Dir() / "cert.pem").string();
    key_ = (serve_.Dir() / "key.pem").string();
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
        key_ + " -out " + cert_ + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }

  CurlResult Fetch(const std::string& url, const std::string& token = "",
                   const std::string& body = "", long max_tls = 0) {
    CurlResult result;
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CAINFO, cert_.c_str());
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CollectInto);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result.body);
    if (max_tls != 0) curl_easy_setopt(curl, CURLOPT_SSLVERSION, max_tls);
    curl_slist* headers = nullptr;
    if (!token.empty()) {
      headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
    }
    if (!body.empty()) {
      headers = curl_slist_append(headers, "Content-Type: application/xml");
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    result.code = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return result;
  }

  std::map<std::string, std::string> TlsEnv() const {
    return {{"DMARCD_HTTP_TLS_CERT", cert_}, {"DMARCD_HTTP_TLS_KEY", key_}};
  }

  std::string Url(const std::string& scheme, const std::string& path) const {
    return scheme + "://127.0.0.1:" + std::to_string(serve_.Port()) + path;
  }

  ServeProcess serve_;
  std::string cert_;
  std::string key_;
};

TEST_F(TlsTest, ServesHttpsVerifiedWithTheCaFile) {
  const std::string token = serve_.AddToken("ci", "ingest");
  ASSERT_TRUE(serve_.Start(TlsEnv())) << serve_.Log();
  EXPECT_NE(serve_.Log().find("tls=on"), std::string::npos);

  CurlResult health = Fetch(Url("https", "/healthz"));
  ASSERT_EQ(health.code, CURLE_OK) << curl_easy_strerror(health.code);
  EXPECT_EQ(health.status, 200);
  EXPECT_NE(health.body.find("\"status\":\"ok\""), std::string::npos) << health.body;

  // An upload over TLS, stored.
  const std::string report = ReadFile(HostilePath("http_unauthenticated_upload.http"));
  CurlResult stored =
      Fetch(Url("https", "/api/v1/reports"), token, report.substr(report.find("\r\n\r\n") + 4));
  ASSERT_EQ(stored.code, CURLE_OK) << curl_easy_strerror(stored.code);
  EXPECT_EQ(stored.status, 201) << stored.body;
  EXPECT_EQ(CountRows(serve_.Db(), "reports"), 1);

  // By name too (the certificate names localhost).
  CurlResult by_name =
      Fetch("https://localhost:" + std::to_string(serve_.Port()) + "/api/v1/reports");
  EXPECT_EQ(by_name.code, CURLE_OK) << curl_easy_strerror(by_name.code);

  // Plain HTTP on the TLS port gets no answer.
  CurlResult plain = Fetch(Url("http", "/healthz"));
  EXPECT_NE(plain.status, 200);

  // TLS 1.1 and older are refused.
  CurlResult old = Fetch(
      Url("https", "/healthz"), "", "",
      static_cast<long>(CURL_SSLVERSION_TLSv1_0) | static_cast<long>(CURL_SSLVERSION_MAX_TLSv1_1));
  EXPECT_NE(old.code, CURLE_OK);
  // TLS 1.2 exactly is accepted.
  CurlResult tls12 = Fetch(
      Url("https", "/healthz"), "", "",
      static_cast<long>(CURL_SSLVERSION_TLSv1_2) | static_cast<long>(CURL_SSLVERSION_MAX_TLSv1_2));
  EXPECT_EQ(tls12.code, CURLE_OK) << curl_easy_strerror(tls12.code);
  EXPECT_EQ(serve_.Stop(), 0);
}

TEST_F(TlsTest, AStalledHandshakeIsClosedByTheHeaderDeadline) {
  auto env = TlsEnv();
  env["DMARCD_HTTP_HEADER_TIMEOUT"] = "1";
  ASSERT_TRUE(serve_.Start(env)) << serve_.Log();
  RawClient client(serve_.Port());
  ASSERT_TRUE(client.Connected());
  client.Send(std::string("\x16\x03\x01", 3));  // the start of a ClientHello, then nothing
  const auto start = Clock::now();
  bool closed = false;
  client.ReadAll(std::chrono::milliseconds(5000), &closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(SecondsSince(start), 3.0);
  // Meanwhile and after, verified requests are answered.
  EXPECT_EQ(Fetch(Url("https", "/healthz")).status, 200);
}

TEST_F(TlsTest, AMissingOrMismatchedKeyStopsServeWithTheKeyNamed) {
  auto env = TlsEnv();
  env["DMARCD_HTTP_TLS_KEY"] = (serve_.Dir() / "absent.pem").string();
  EXPECT_FALSE(serve_.Start(env));
  EXPECT_EQ(serve_.ExitStatus(), 2);
  EXPECT_NE(serve_.Log().find("http.tls_key"), std::string::npos) << serve_.Log();

  // A key of another certificate.
  const std::string other = (serve_.Dir() / "other.pem").string();
  ASSERT_EQ(std::system(("openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 "
                         "-out " +
                         other + " >/dev/null 2>&1")
                            .c_str()),
            0);
  env["DMARCD_HTTP_TLS_KEY"] = other;
  EXPECT_FALSE(serve_.Start(env));
  EXPECT_EQ(serve_.ExitStatus(), 2);
  EXPECT_NE(serve_.Log().find("http.tls_key"), std::string::npos) << serve_.Log();
}

}  // namespace
}  // namespace dmarcd::server::testing
