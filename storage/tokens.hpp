// API bearer tokens. The secret is shown once, when created; only its
// SHA-256 is stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parser/error.hpp"
#include "storage/database.hpp"

namespace dmarcd::storage {

enum class TokenScope { kRead, kIngest, kAdmin };

std::string_view TokenScopeName(TokenScope scope);  // "read", "ingest", "admin"
std::optional<TokenScope> ParseTokenScope(std::string_view name);

// Whether a token of scope `have` may do what `need` requires: admin may do
// everything, ingest may also read.
bool ScopeAllows(TokenScope have, TokenScope need);

struct TokenRow {
  int64_t id = 0;
  std::string name;
  TokenScope scope = TokenScope::kRead;
  int64_t created_at = 0;
  std::optional<int64_t> revoked_at;
  std::optional<int64_t> last_used_at;
};

// Creates a token; returns the secret ("dmarcd_" + 43 base64url characters
// from 32 random bytes). kInvalidArgument when an active token has that name.
Result<std::string> AddToken(Database& db, const std::string& name, TokenScope scope);
Result<std::vector<TokenRow>> ListTokens(Database& db);
// kNotFound when no active token has that name.
Result<void> RevokeToken(Database& db, const std::string& name);
// The scope of an active token with this secret, or nullopt.
Result<std::optional<TokenRow>> VerifyToken(Database& db, std::string_view secret);

// Hex SHA-256 of bytes (OpenSSL).
std::string Sha256Hex(std::string_view bytes);

}  // namespace dmarcd::storage
