// The schema migrations compiled into the binary from migrations/NNNN_*.sql
// (cmake/EmbedMigrations.cmake). Database::Open and Database::Migrate apply
// them; nothing else should need this.
#pragma once

#include <span>
#include <string_view>

namespace dmarcd::storage {

struct Migration {
  int version;            // NNNN of the file name; 1, 2, 3 ... without gaps
  std::string_view name;  // the file name, for messages
  std::string_view sql;   // the whole file
};

// Every migration, oldest first; version i + 1 at index i.
std::span<const Migration> Migrations();

}  // namespace dmarcd::storage
