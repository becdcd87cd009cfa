// A small pool of read-only connections for HTTP handlers. WAL mode lets
// them read while the writer writes. A handler borrows one Reader for the
// length of one request.
//
// Thread-safe. Acquire blocks while every connection is lent out.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "parser/error.hpp"
#include "storage/database.hpp"
#include "storage/reader.hpp"

namespace dmarcd::server {

class ReaderPool {
 public:
  // Opens `size` read-only connections to an existing, migrated database.
  static Result<std::unique_ptr<ReaderPool>> Open(const std::string& path, int size,
                                                  int busy_timeout_ms);

  struct Connection {
    std::unique_ptr<storage::Database> db;
    std::unique_ptr<storage::Reader> reader;
  };

  // Gives the connection back to the pool when destroyed; must not outlive
  // the pool.
  class Lease {
   public:
    Lease(ReaderPool& pool, Connection* connection) : pool_(&pool), connection_(connection) {}
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    storage::Reader& Reader() { return *connection_->reader; }
    storage::Database& Database() { return *connection_->db; }

   private:
    ReaderPool* pool_;
    Connection* connection_;
  };

  Lease Acquire();

 private:
  ReaderPool() = default;

  std::vector<std::unique_ptr<Connection>> connections_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<Connection*> idle_;
};

}  // namespace dmarcd::server
