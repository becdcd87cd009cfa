#include "storage/statement.hpp"

#include <chrono>
#include <utility>

namespace dmarcd::storage {

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Result<Statement> Statement::Prepare(sqlite3* db, std::string_view sql) {
  Statement statement;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &statement.stmt_, nullptr);
  if (rc != SQLITE_OK) {
    return tl::unexpected(SqliteError(db, rc, "preparing a statement"));
  }
  return statement;
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::Bind(int index, uint64_t value) {
  // SQLite integers are signed 64-bit; counts above 2^63 keep their bits and
  // are read back through Uint().
  sqlite3_bind_int64(stmt_, index, static_cast<int64_t>(value));
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Statement& Statement::BindStatic(int index, std::string_view text) {
  // A null pointer would bind NULL, not an empty text.
  static constexpr char kEmpty = 0;
  sqlite3_bind_text64(stmt_, index, text.empty() ? &kEmpty : text.data(), text.size(),
                      SQLITE_STATIC, SQLITE_UTF8);
  return *this;
}

Statement& Statement::BindStatic(int index, const std::optional<std::string>& text) {
  if (!text) {
    return BindNull(index);
  }
  return BindStatic(index, std::string_view(*text));
}

Statement& Statement::Bind(int index, const std::optional<std::string>& text) {
  if (!text) {
    return BindNull(index);
  }
  return Bind(index, std::string_view(*text));
}

Statement& Statement::Bind(int index, const std::optional<int64_t>& value) {
  if (!value) {
    return BindNull(index);
  }
  return Bind(index, *value);
}

Statement& Statement::BindBlob(int index, std::string_view bytes) {
  // A zero-length blob bound with a null pointer would be stored as NULL.
  static constexpr char kEmpty = 0;
  sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &kEmpty : bytes.data(), bytes.size(),
                      SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::BindZeroBlob(int index, uint64_t size) {
  sqlite3_bind_zeroblob64(stmt_, index, size);
  return *this;
}

Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<Statement*> MultiRowInsert::For(sqlite3* db, size_t rows) {
  Statement& statement = statements_[rows - 1];
  if (!statement.Prepared()) {
    std::string row = "(?";
    for (int c = 1; c < columns_; ++c) row += ", ?";
    row += ")";
    std::string sql = head_;
    for (size_t r = 0; r < rows; ++r) {
      if (r > 0) sql += ", ";
      sql += row;
    }
    sql += tail_;
    auto prepared = Statement::Prepare(db, sql);
    if (!prepared) return tl::unexpected(prepared.error());
    statement = std::move(*prepared);
  }
  return &statement;
}

Result<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  sqlite3* db = sqlite3_db_handle(stmt_);
  Error error = SqliteError(db, rc, "running a statement");
  sqlite3_reset(stmt_);
  return tl::unexpected(std::move(error));
}

Result<void> Statement::Run() {
  auto stepped = Step();
  Reset();
  if (!stepped) {
    return tl::unexpected(stepped.error());
  }
  return {};
}

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

uint64_t Statement::Uint(int column) const {
  return static_cast<uint64_t>(sqlite3_column_int64(stmt_, column));
}

std::string Statement::Text(int column) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (text == nullptr) {
    return {};
  }
  return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::optional<std::string> Statement::OptionalText(int column) const {
  if (IsNull(column)) {
    return std::nullopt;
  }
  return Text(column);
}

std::optional<int64_t> Statement::OptionalInt(int column) const {
  if (IsNull(column)) {
    return std::nullopt;
  }
  return Int(column);
}

std::string Statement::Blob(int column) const {
  const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
  if (bytes == nullptr) {
    return {};
  }
  return std::string(bytes, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

BlobHandle::~BlobHandle() { sqlite3_blob_close(blob_); }

BlobHandle::BlobHandle(BlobHandle&& other) noexcept : blob_(std::exchange(other.blob_, nullptr)) {}

Result<BlobHandle> BlobHandle::Open(sqlite3* db, const char* table, const char* column,
                                    int64_t rowid, bool writable) {
  sqlite3_blob* blob = nullptr;
  const int rc = sqlite3_blob_open(db, "main", table, column, rowid, writable ? 1 : 0, &blob);
  if (rc != SQLITE_OK) {
    sqlite3_blob_close(blob);
    return tl::unexpected(SqliteError(db, rc, "opening a blob"));
  }
  return BlobHandle(blob);
}

uint64_t BlobHandle::Size() const { return static_cast<uint64_t>(sqlite3_blob_bytes(blob_)); }

// sqlite3_blob_read and _write count in int: a blob is at most 2 GiB
// (SQLITE_MAX_LENGTH is 1e9 by default), so offsets fit, and the chunks
// passed here are small.
Result<void> BlobHandle::Write(std::string_view bytes, uint64_t offset) {
  const int rc = sqlite3_blob_write(blob_, bytes.data(), static_cast<int>(bytes.size()),
                                    static_cast<int>(offset));
  if (rc != SQLITE_OK) {
    return tl::unexpected(SqliteError(nullptr, rc, "writing a blob"));
  }
  return {};
}

Result<void> BlobHandle::Read(std::span<char> buffer, uint64_t offset) const {
  const int rc = sqlite3_blob_read(blob_, buffer.data(), static_cast<int>(buffer.size()),
                                   static_cast<int>(offset));
  if (rc != SQLITE_OK) {
    return tl::unexpected(SqliteError(nullptr, rc, "reading a blob"));
  }
  return {};
}

}  // namespace dmarcd::storage
