#include "server/access.hpp"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <map>
#include <mutex>

#include "server/logging.hpp"

namespace dmarcd::server {
namespace {

constexpr std::string_view kScheme = "pbkdf2-sha256";
constexpr size_t kKeyBytes = 32;
constexpr uint32_t kMinIterations = 1000;
constexpr size_t kMinSaltBytes = 8;

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string Hex(std::string_view bytes) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char ch : bytes) {
    const auto byte = static_cast<unsigned char>(ch);
    out += kDigits[byte >> 4];
    out += kDigits[byte & 0x0f];
  }
  return out;
}

// OpenSSL's reader takes "a1b2..." and "A1:B2:..." alike.
std::optional<std::string> Unhex(const std::string& text) {
  long length = 0;
  unsigned char* buffer = OPENSSL_hexstr2buf(text.c_str(), &length);
  if (buffer == nullptr) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
  OPENSSL_free(buffer);
  return out;
}

std::string Pbkdf2(std::string_view password, std::string_view salt, uint32_t iterations) {
  std::string key(kKeyBytes, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                    static_cast<int>(key.size()), reinterpret_cast<unsigned char*>(key.data()));
  return key;
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// RFC 7617 section 2: base64 of "user-id:password". OpenSSL's block decoder
// counts the padding as zero bytes, so they are taken off again.
std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 4096) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()),
                                     static_cast<int>(text.size()));
  if (length < 0) return std::nullopt;
  size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++padding;
  out.resize(static_cast<size_t>(length) - padding);
  return out;
}

// "Bearer x" -> "x" when the scheme matches (case-insensitively, RFC 9110
// section 11.1), else nullopt.
std::optional<std::string_view> Credentials(const HttpRequest& request, std::string_view scheme) {
  auto header = request.headers.find("authorization");
  if (header == request.headers.end()) return std::nullopt;
  std::string_view value = header->second;
  if (value.size() <= scheme.size() || value[scheme.size()] != ' ') return std::nullopt;
  if (Lower(value.substr(0, scheme.size())) != scheme) return std::nullopt;
  value.remove_prefix(scheme.size() + 1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (value.empty()) return std::nullopt;
  return value;
}

bool IsSafeMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS";
}

bool IsLoopback(const std::string& address) {
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, address.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace

class AccessPolicy::VerifiedCache {
 public:
  bool Matches(const std::string& user, const std::string& password_hash) {
    std::lock_guard lock(mutex_);
    auto it = by_user_.find(user);
    return it != by_user_.end() && ConstantTimeEqual(it->second, password_hash);
  }

  void Remember(const std::string& user, std::string password_hash) {
    std::lock_guard lock(mutex_);
    by_user_[user] = std::move(password_hash);
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> by_user_;  // one entry per configured user at most
};

Result<BasicUser> ParseBasicUser(std::string_view entry) {
  const size_t colon = entry.find(':');
  const std::string name(entry.substr(0, std::min(colon, entry.size())));
  auto bad = [&name](const std::string& why) {
    return MakeError(ErrorCode::kConfig, "http.users entry for '" + name + "': " + why +
                                             " (expected NAME:" + std::string(kScheme) +
                                             "$ITERATIONS$SALT_HEX$KEY_HEX)");
  };
  if (colon == std::string_view::npos || colon == 0) return bad("no NAME: before the hash");

  std::vector<std::string> fields;
  std::string_view rest = entry.substr(colon + 1);
  while (true) {
    const size_t dollar = rest.find('$');
    fields.emplace_back(rest.substr(0, dollar));
    if (dollar == std::string_view::npos) break;
    rest.remove_prefix(dollar + 1);
  }
  if (fields.size() != 4 || fields[0] != kScheme)
    return bad("not a " + std::string(kScheme) + " hash");

  BasicUser user;
  user.name = name;
  auto [ptr, ec] =
      std::from_chars(fields[1].data(), fields[1].data() + fields[1].size(), user.iterations);
  if (ec != std::errc() || ptr != fields[1].data() + fields[1].size() ||
      user.iterations < kMinIterations || user.iterations > 100'000'000) {
    return bad("iterations must be a number from " + std::to_string(kMinIterations));
  }
  auto salt = Unhex(fields[2]);
  if (!salt || salt->size() < kMinSaltBytes) {
    return bad("the salt must be at least " + std::to_string(kMinSaltBytes) + " bytes in hex");
  }
  auto key = Unhex(fields[3]);
  if (!key || key->size() != kKeyBytes) return bad("the key must be 32 bytes in hex");
  user.salt = std::move(*salt);
  user.key = std::move(*key);
  return user;
}

std::string HashPassword(std::string_view name, std::string_view password, uint32_t iterations) {
  std::string salt(16, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size()));
  return std::string(name) + ":" + std::string(kScheme) + "$" + std::to_string(iterations) + "$" +
         Hex(salt) + "$" + Hex(Pbkdf2(password, salt, iterations));
}

Result<void> CheckListenAccess(const Config::Http& http, const std::string& address) {
  if (IsLoopback(address)) return {};
  if (!http.users.empty() || http.require_read_token || http.trusted_proxy_auth) return {};
  return MakeError(ErrorCode::kConfig,
                   "http.listen " + http.listen +
                       " is not a loopback address and read access is open: set http.users "
                       "(Basic auth), http.require_read_token = true (bearer tokens), or "
                       "http.trusted_proxy_auth = true (behind an authenticating proxy)");
}

Result<std::shared_ptr<AccessPolicy>> AccessPolicy::Make(const Config::Http& http,
                                                         BearerCheck tokens,
                                                         HttpErrorFactory errors) {
  std::shared_ptr<AccessPolicy> policy(new AccessPolicy());
  for (const std::string& entry : http.users) {
    auto user = ParseBasicUser(entry);
    if (!user) return tl::unexpected(user.error());
    policy->users_.push_back(std::move(*user));
  }
  policy->require_read_token_ = http.require_read_token;
  policy->trusted_proxy_auth_ = http.trusted_proxy_auth;
  for (const std::string& origin : http.allowed_origins) {
    policy->allowed_origins_.push_back(Lower(origin));
  }
  policy->tokens_ = std::move(tokens);
  policy->errors_ = std::move(errors);
  policy->verified_ = std::make_shared<VerifiedCache>();
  return policy;
}

std::string_view AccessPolicy::Mode() const {
  if (trusted_proxy_auth_) return "proxy";
  return Protected() ? "protected" : "open";
}

std::optional<HttpResponse> AccessPolicy::Check(const HttpRequest& request) const {
  if (auto refused = CheckOrigin(request)) return refused;
  if (trusted_proxy_auth_ || !Protected()) return std::nullopt;

  // The path as the Api routes it: percent-decoded, so "/%61pi/" cannot
  // pass for a dashboard page here and reach the API there.
  auto parsed = boost::urls::parse_origin_form(request.target);
  const std::string path = parsed ? std::string(parsed->path()) : std::string();
  if (path == "/healthz") return std::nullopt;
  if (path == "/api/v1/reports" && request.method == "POST") return std::nullopt;
  return CheckRead(request, path);
}

std::optional<HttpResponse> AccessPolicy::CheckOrigin(const HttpRequest& request) const {
  if (IsSafeMethod(request.method)) return std::nullopt;
  auto origin = request.headers.find("origin");
  if (origin == request.headers.end()) return std::nullopt;

  // RFC 6454 section 7: scheme "://" host [":" port], or "null" for an
  // opaque origin (a sandboxed frame, a file), which is never ours.
  const std::string value = Lower(origin->second);
  if (std::find(allowed_origins_.begin(), allowed_origins_.end(), value) !=
      allowed_origins_.end()) {
    return std::nullopt;
  }
  const size_t separator = value.find("://");
  auto host = request.headers.find("host");
  if (separator != std::string::npos && host != request.headers.end() &&
      value.substr(separator + 3) == Lower(host->second)) {
    return std::nullopt;
  }
  Log("http")->warn("client={} method={} origin=\"{}\" refused: cross-origin",
                    request.client_address, request.method, origin->second);
  return errors_(403, ErrorCodeName(ErrorCode::kForbidden),
                 "requests from another origin are refused (see http.allowed_origins)");
}

std::optional<HttpResponse> AccessPolicy::CheckRead(const HttpRequest& request,
                                                    std::string_view path) const {
  // With tokens only, the dashboard's files (no report data in them) stay
  // open; the data they show comes through the API, which is not.
  const bool api = path.rfind("/api/", 0) == 0 || path == "/metrics";
  if (users_.empty() && !api) return std::nullopt;

  if (auto basic = Credentials(request, "basic")) {
    if (!users_.empty() && VerifyBasic(*basic)) return std::nullopt;
    Log("http")->warn("client={} refused: bad Basic credentials", request.client_address);
    return Unauthorized("wrong user name or password");
  }
  if (auto bearer = Credentials(request, "bearer")) {
    auto token = tokens_(*bearer);
    if (!token) return errors_(503, ErrorCodeName(token.error().code), token.error().message);
    if (*token && storage::ScopeAllows((*token)->scope, storage::TokenScope::kRead)) {
      return std::nullopt;
    }
    Log("http")->warn("client={} refused: unknown or revoked token", request.client_address);
    return Unauthorized("unknown or revoked token");
  }
  return Unauthorized("reading needs credentials");
}

bool AccessPolicy::VerifyBasic(std::string_view credentials) const {
  auto decoded = DecodeBase64(credentials);
  if (!decoded) return false;
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  const std::string name = decoded->substr(0, colon);
  const std::string_view password = std::string_view(*decoded).substr(colon + 1);

  const BasicUser* user = nullptr;
  for (const BasicUser& candidate : users_) {
    if (ConstantTimeEqual(candidate.name, name)) user = &candidate;
  }
  const std::string password_hash = storage::Sha256Hex(password);
  if (user != nullptr && verified_->Matches(user->name, password_hash)) return true;

  // An unknown name costs a derivation too, so timing does not tell which
  // names exist.
  // TODO(#6): every wrong password costs a full derivation on an io thread
  // (0.4 s at 600,000 iterations), so a burst of them stalls other clients;
  // a per-client budget of failed attempts would bound it.
  const BasicUser& reference = user != nullptr ? *user : users_.front();
  const bool ok =
      ConstantTimeEqual(Pbkdf2(password, reference.salt, reference.iterations), reference.key) &&
      user != nullptr;
  if (ok) verified_->Remember(user->name, password_hash);
  return ok;
}

HttpResponse AccessPolicy::Unauthorized(std::string_view message) const {
  HttpResponse response = errors_(401, ErrorCodeName(ErrorCode::kUnauthorized), message);
  // RFC 9110 section 11.6.1: the schemes this server takes, in one field.
  std::string challenge;
  if (!users_.empty()) challenge = "Basic realm=\"dmarcd\", charset=\"UTF-8\"";
  if (require_read_token_ || users_.empty()) {
    if (!challenge.empty()) challenge += ", ";
    challenge += "Bearer realm=\"dmarcd\"";
  }
  response.extra_headers.emplace_back("WWW-Authenticate", challenge);
  return response;
}

}  // namespace dmarcd::server
