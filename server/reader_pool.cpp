#include "server/reader_pool.hpp"

namespace dmarcd::server {

Result<std::unique_ptr<ReaderPool>> ReaderPool::Open(const std::string& path, int size,
                                                     int busy_timeout_ms) {
  std::unique_ptr<ReaderPool> pool(new ReaderPool());
  storage::OpenOptions options;
  options.read_only = true;
  options.migrate = false;
  options.busy_timeout_ms = busy_timeout_ms;

  for (int i = 0; i < size; ++i) {
    auto db = storage::Database::Open(path, options);
    if (!db) return tl::unexpected(db.error());
    auto connection = std::make_unique<Connection>();
    connection->db = std::move(*db);
    connection->reader = std::make_unique<storage::Reader>(*connection->db);
    pool->idle_.push_back(connection.get());
    pool->connections_.push_back(std::move(connection));
  }
  return pool;
}

ReaderPool::Lease ReaderPool::Acquire() {
  std::unique_lock lock(mutex_);
  returned_.wait(lock, [this] { return !idle_.empty(); });
  Connection* connection = idle_.back();
  idle_.pop_back();
  return Lease(*this, connection);
}

ReaderPool::Lease::~Lease() {
  std::lock_guard lock(pool_->mutex_);
  pool_->idle_.push_back(connection_);
  pool_->returned_.notify_one();
}

}  // namespace dmarcd::server
