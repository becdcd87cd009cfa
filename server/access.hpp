// Who may read, and from which origin a browser may write: the check that
// sits in front of the API and the dashboard (HttpServerOptions::gate).
//
// Read access is protected when [http] names users (HTTP Basic auth,
// RFC 7617, for the dashboard and the API) or sets require_read_token (a
// bearer token of any scope, RFC 6750, for the API; the dashboard's static
// files carry no report data and stay open). A user's Basic auth also opens
// the API, and a bearer token the dashboard. Without protection, reads are
// open: CheckListenAccess then allows only a loopback listen address, unless
// trusted_proxy_auth says a proxy in front authenticates every request. With
// trusted_proxy_auth nothing is checked for reads. Protection, once
// configured, applies on loopback too.
//
// Always open: /healthz (load balancers and container health checks), and
// POST /api/v1/reports, which keeps its own rule (a bearer token of scope
// ingest or admin, checked by the Api).
//
// Cross-site request forgery: a request other than GET, HEAD or OPTIONS
// whose Origin header (RFC 6454) names another host than its Host header,
// and is not in allowed_origins, is refused with 403, a token or not. A
// browser attaches no Authorization: Bearer header to a cross-site form on
// its own, and the Basic credentials it does attach never authorise an
// upload, so a form POST from another site without an Origin header still
// gets 401.
//
// Passwords: "NAME:pbkdf2-sha256$ITERATIONS$SALT_HEX$KEY_HEX", KEY the
// PBKDF2-HMAC-SHA256 (RFC 8018 section 5.2) of the password with that salt,
// 32 bytes. Hex in either case, bytes optionally separated by ':' as
// `openssl kdf` prints them. Compared in constant time; an unknown user costs
// the same derivation as a known one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parser/error.hpp"
#include "server/config.hpp"
#include "server/http_server.hpp"
#include "storage/tokens.hpp"

namespace dmarcd::server {

// Looks up a bearer token's secret (the same contract as the Api's
// TokenCheck): the active token, nullopt when there is none, an error when
// the database failed.
using BearerCheck =
    std::function<Result<std::optional<storage::TokenRow>>(std::string_view secret)>;

struct BasicUser {
  std::string name;
  uint32_t iterations = 0;
  std::string salt;  // raw bytes
  std::string key;   // raw bytes, 32
};

// Parses one [http] users entry. kConfig naming the user (never the hash)
// when it is malformed; at least 1000 iterations and 8 bytes of salt.
Result<BasicUser> ParseBasicUser(std::string_view entry);

// The entry for a password: "NAME:pbkdf2-sha256$ITERATIONS$SALT$KEY" with a
// random 16-byte salt. For tests and tooling; needs libcrypto's RNG.
std::string HashPassword(std::string_view name, std::string_view password, uint32_t iterations);

// Whether `serve` may listen on `address` (an IP literal) with these
// settings; kConfig naming the keys to set otherwise.
Result<void> CheckListenAccess(const Config::Http& http, const std::string& address);

class AccessPolicy {
 public:
  // kConfig when a users entry is malformed. `tokens` and `errors` are
  // called from any io thread.
  static Result<std::shared_ptr<AccessPolicy>> Make(const Config::Http& http, BearerCheck tokens,
                                                    HttpErrorFactory errors);

  // Whether reads need credentials at all.
  bool Protected() const { return !users_.empty() || require_read_token_; }
  // For the log: "open", "protected" or "proxy".
  std::string_view Mode() const;

  // Nullopt when the request may go on to the handler, else the refusal
  // (401 with WWW-Authenticate, 403, or the token lookup's error).
  // Thread-safe.
  std::optional<HttpResponse> Check(const HttpRequest& request) const;

 private:
  AccessPolicy() = default;

  std::optional<HttpResponse> CheckOrigin(const HttpRequest& request) const;
  std::optional<HttpResponse> CheckRead(const HttpRequest& request, std::string_view path) const;
  bool VerifyBasic(std::string_view credentials) const;
  HttpResponse Unauthorized(std::string_view message) const;

  std::vector<BasicUser> users_;
  bool require_read_token_ = false;
  bool trusted_proxy_auth_ = false;
  std::vector<std::string> allowed_origins_;  // lower case
  BearerCheck tokens_;
  HttpErrorFactory errors_;
  // SHA-256 of each user's last verified password, so a browser's repeated
  // Basic header costs one hash instead of a PBKDF2 derivation.
  class VerifiedCache;
  std::shared_ptr<VerifiedCache> verified_;
};

}  // namespace dmarcd::server
