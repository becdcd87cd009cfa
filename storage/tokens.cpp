#include "storage/tokens.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>

#include "storage/statement.hpp"

namespace dmarcd::storage {
namespace {

constexpr std::string_view kSecretPrefix = "dmarcd_";
constexpr size_t kSecretBytes = 32;

// RFC 4648 section 5 (base64url) without padding, made from OpenSSL's
// standard alphabet by swapping the two characters that differ.
std::string Base64Url(const unsigned char* bytes, size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes, static_cast<int>(size));
  out.resize(static_cast<size_t>(written));
  while (!out.empty() && out.back() == '=') {
    out.pop_back();
  }
  for (char& c : out) {
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  return out;
}

TokenRow ReadToken(const Statement& row) {
  TokenRow token;
  token.id = row.Int(0);
  token.name = row.Text(1);
  token.scope = ParseTokenScope(row.Text(2)).value_or(TokenScope::kRead);
  token.created_at = row.Int(3);
  token.revoked_at = row.OptionalInt(4);
  token.last_used_at = row.OptionalInt(5);
  return token;
}

constexpr const char* kTokenColumns =
    "SELECT id, name, scope, created_at, revoked_at, last_used_at FROM api_tokens ";

}  // namespace

std::string_view TokenScopeName(TokenScope scope) {
  switch (scope) {
    case TokenScope::kRead:
      return "read";
    case TokenScope::kIngest:
      return "ingest";
    case TokenScope::kAdmin:
      return "admin";
  }
  return "read";
}

std::optional<TokenScope> ParseTokenScope(std::string_view name) {
  for (TokenScope scope : {TokenScope::kRead, TokenScope::kIngest, TokenScope::kAdmin}) {
    if (TokenScopeName(scope) == name) {
      return scope;
    }
  }
  return std::nullopt;
}

bool ScopeAllows(TokenScope have, TokenScope need) {
  switch (have) {
    case TokenScope::kAdmin:
      return true;
    case TokenScope::kIngest:
      return need == TokenScope::kIngest || need == TokenScope::kRead;
    case TokenScope::kRead:
      return need == TokenScope::kRead;
  }
  return false;
}

std::string Sha256Hex(std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr);

  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size_t{2} * size);
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0x0f];
  }
  return hex;
}

Result<std::string> AddToken(Database& db, const std::string& name, TokenScope scope) {
  if (name.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "a token needs a name");
  }
  std::array<unsigned char, kSecretBytes> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return MakeError(ErrorCode::kInternal, "OpenSSL could not produce random bytes");
  }
  std::string secret(kSecretPrefix);
  secret += Base64Url(random.data(), random.size());

  auto active = Statement::Prepare(
      db.Handle(), "SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL");
  if (!active) {
    return tl::unexpected(active.error());
  }
  auto exists = active->Bind(1, std::string_view(name)).Step();
  if (!exists) {
    return tl::unexpected(exists.error());
  }
  if (*exists) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "an active token is already named '" + name + "'; revoke it first");
  }

  // Only the hash is kept: a copy of the database gives no usable secret.
  auto insert = Statement::Prepare(
      db.Handle(),
      "INSERT INTO api_tokens (name, scope, secret_sha256, created_at) VALUES (?, ?, ?, ?)");
  if (!insert) {
    return tl::unexpected(insert.error());
  }
  insert->Bind(1, std::string_view(name))
      .Bind(2, TokenScopeName(scope))
      .Bind(3, std::string_view(Sha256Hex(secret)))
      .Bind(4, UnixNow());
  if (auto inserted = insert->Run(); !inserted) {
    return tl::unexpected(inserted.error());
  }
  return secret;
}

Result<std::vector<TokenRow>> ListTokens(Database& db) {
  auto list = Statement::Prepare(db.Handle(), std::string(kTokenColumns) + "ORDER BY id");
  if (!list) {
    return tl::unexpected(list.error());
  }
  std::vector<TokenRow> tokens;
  for (;;) {
    auto row = list->Step();
    if (!row) {
      return tl::unexpected(row.error());
    }
    if (!*row) {
      return tokens;
    }
    tokens.push_back(ReadToken(*list));
  }
}

Result<void> RevokeToken(Database& db, const std::string& name) {
  auto revoke = Statement::Prepare(
      db.Handle(), "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL");
  if (!revoke) {
    return tl::unexpected(revoke.error());
  }
  if (auto done = revoke->Bind(1, UnixNow()).Bind(2, std::string_view(name)).Run(); !done) {
    return done;
  }
  if (sqlite3_changes(db.Handle()) == 0) {
    return MakeError(ErrorCode::kNotFound, "no active token is named '" + name + "'");
  }
  return {};
}

Result<std::optional<TokenRow>> VerifyToken(Database& db, std::string_view secret) {
  if (!secret.starts_with(kSecretPrefix)) {
    return std::optional<TokenRow>();
  }
  // Looked up by hash: comparing hashes through an index leaks nothing
  // useful about the secret, so no constant-time compare is needed.
  auto find = Statement::Prepare(
      db.Handle(), std::string(kTokenColumns) + "WHERE secret_sha256 = ? AND revoked_at IS NULL");
  if (!find) {
    return tl::unexpected(find.error());
  }
  auto row = find->Bind(1, std::string_view(Sha256Hex(secret))).Step();
  if (!row) {
    return tl::unexpected(row.error());
  }
  if (!*row) {
    return std::optional<TokenRow>();
  }
  TokenRow token = ReadToken(*find);

  // last_used_at is a courtesy for people pruning tokens; a read-only
  // connection cannot write it, and that must not refuse the request.
  if (!sqlite3_db_readonly(db.Handle(), "main")) {
    auto touch =
        Statement::Prepare(db.Handle(), "UPDATE api_tokens SET last_used_at = ? WHERE id = ?");
    if (touch) {
      const int64_t now = UnixNow();
      if (touch->Bind(1, now).Bind(2, token.id).Run()) {
        token.last_used_at = now;
      }
    }
  }
  return std::optional<TokenRow>(std::move(token));
}

}  // namespace dmarcd::storage
