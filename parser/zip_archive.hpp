// Read-only access to a zip archive held in memory (libzip), with dmarcd's
// caps. Member names are only ever used as text, never as file-system paths.
//
// Errors: kBadArchive (cannot be opened, corrupt or truncated member,
// encrypted member), kTooManyEntries (more than limits.max_zip_entries
// members, directories included), kTooLarge and kRatioExceeded per member as
// for gzip.
//
// The bytes given to Open must outlive the archive. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "parser/byte_sink.hpp"
#include "parser/error.hpp"
#include "parser/limits.hpp"

struct zip;

namespace dmarcd::parser {

struct ZipEntry {
  std::string name;
  bool directory = false;
  bool encrypted = false;
  uint64_t compressed_size = 0;
  uint64_t size = 0;  // as declared by the archive: not trusted, only a bound
};

class ZipArchive {
 public:
  static Result<ZipArchive> Open(std::string_view bytes, const Limits& limits);

  uint64_t EntryCount() const { return entries_; }

  Result<ZipEntry> Entry(uint64_t index) const;

  // Inflates one member into `out` in slices of kChunkBytes.
  Result<void> Read(uint64_t index, ByteSink& out) const;

 private:
  struct Closer {
    void operator()(zip* archive) const;
  };

  ZipArchive(zip* archive, uint64_t entries, const Limits& limits);

  std::unique_ptr<zip, Closer> archive_;
  uint64_t entries_ = 0;
  const Limits* limits_;
};

}  // namespace dmarcd::parser
