// A prepared SQLite statement: owns the sqlite3_stmt, binds parameters by
// position (from 1) and reads columns (from 0). Internal to storage/.
//
// Every failure is turned into an Error through SqliteError, so callers see
// kDatabaseBusy for lock contention and kDatabase for disk faults.
// Not thread-safe: a statement belongs to its connection's thread.
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "parser/error.hpp"
#include "storage/database.hpp"

namespace dmarcd::storage {

// The current time in Unix seconds: what received_at, created_at and the
// like store.
int64_t UnixNow();

class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  static Result<Statement> Prepare(sqlite3* db, std::string_view sql);

  // Resets the statement and clears its bindings, ready to run again.
  void Reset();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, uint64_t value);  // stored with the same 64 bits
  Statement& Bind(int index, int value) { return Bind(index, int64_t{value}); }
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, const std::optional<std::string>& text);
  Statement& Bind(int index, const std::optional<int64_t>& value);
  // Binds without a copy: the bytes must stay as they are until the
  // statement is reset (Run resets it).
  Statement& BindStatic(int index, std::string_view text);
  Statement& BindStatic(int index, const std::optional<std::string>& text);
  Statement& BindBlob(int index, std::string_view bytes);
  // A blob of `size` zero bytes, to be filled afterwards through a
  // BlobHandle without ever holding it whole in memory.
  Statement& BindZeroBlob(int index, uint64_t size);
  Statement& BindNull(int index);

  // Runs one step: true when a row is ready, false when done.
  Result<bool> Step();
  bool Prepared() const { return stmt_ != nullptr; }
  // Runs a statement that returns no row, then resets it.
  Result<void> Run();

  bool IsNull(int column) const;
  int64_t Int(int column) const;
  uint64_t Uint(int column) const;
  std::string Text(int column) const;
  std::optional<std::string> OptionalText(int column) const;
  std::optional<int64_t> OptionalInt(int column) const;
  std::string Blob(int column) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Inserts many rows through statements of up to kRows rows each, each
// prepared on first use: one statement of many rows costs far less per row
// than a statement per row (issue #7).
class MultiRowInsert {
 public:
  static constexpr size_t kRows = 64;

  // `head` up to VALUES ("INSERT INTO t (a, b) VALUES "), `tail` what
  // follows the rows (an ON CONFLICT clause) or nothing.
  MultiRowInsert(std::string head, int columns, std::string tail = {})
      : head_(std::move(head)), tail_(std::move(tail)), columns_(columns), statements_(kRows) {}

  // Inserts `rows` rows: bind(statement, first parameter, row) binds row
  // `row` from parameter `first` on. Strings bound with BindStatic must
  // last until Run returns.
  template <typename BindRow>
  Result<void> Run(sqlite3* db, size_t rows, BindRow bind) {
    for (size_t done = 0; done < rows;) {
      const size_t count = std::min(rows - done, kRows);
      auto statement = For(db, count);
      if (!statement) return tl::unexpected(statement.error());
      for (size_t r = 0; r < count; ++r) {
        bind(**statement, static_cast<int>(r) * columns_ + 1, done + r);
      }
      if (auto ran = (*statement)->Run(); !ran) return ran;
      done += count;
    }
    return {};
  }

 private:
  Result<Statement*> For(sqlite3* db, size_t rows);

  std::string head_;
  std::string tail_;
  int columns_;
  std::vector<Statement> statements_;  // of i + 1 rows at i
};

// Incremental I/O on one blob already stored (sqlite3_blob_open): a blob
// of hundreds of megabytes is written and read in chunks. The row must
// exist; its blob's size is fixed (see Statement::BindZeroBlob). Errors are
// SqliteError's. The handle must be closed (destroyed) before the
// transaction ends.
class BlobHandle {
 public:
  ~BlobHandle();
  BlobHandle(BlobHandle&& other) noexcept;
  BlobHandle& operator=(BlobHandle&& other) = delete;
  BlobHandle(const BlobHandle&) = delete;
  BlobHandle& operator=(const BlobHandle&) = delete;

  // `table` and `column` are names from dmarcd's own schema, never input.
  static Result<BlobHandle> Open(sqlite3* db, const char* table, const char* column, int64_t rowid,
                                 bool writable);

  uint64_t Size() const;
  Result<void> Write(std::string_view bytes, uint64_t offset);
  Result<void> Read(std::span<char> buffer, uint64_t offset) const;

 private:
  explicit BlobHandle(sqlite3_blob* blob) : blob_(blob) {}
  sqlite3_blob* blob_ = nullptr;
};

}  // namespace dmarcd::storage
