// HTTP/1.1 server on Boost.Beast (the only translation unit that includes
// Beast): accepts connections on a few io threads, reads one request at a
// time per connection (keep-alive), converts it to an HttpRequest and hands
// it to the handler; the response may come back on any thread and is
// posted to the connection's strand before it is written. A request with
// "Expect: 100-continue" gets its 100 Continue once the header passed the
// checks below, or the refusal at once.
//
// Limits: header block 16 KiB (431), body max_body_bytes (413, checked
// against Content-Length before the body is read), 30 s to read a request;
// an idle keep-alive connection is closed after the same 30 s.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "parser/error.hpp"
#include "server/http_types.hpp"

namespace dmarcd::server {

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0 binds a free port (see Start)
  uint64_t max_body_bytes = uint64_t{64} << 20;
  uint32_t max_header_bytes = 16 * 1024;
  std::chrono::seconds read_timeout{30};
  int threads = 2;
};

// Must call `respond` exactly once, from any thread.
using HttpHandler =
    std::function<void(const HttpRequest& request, std::function<void(HttpResponse)> respond)>;

// Builds the body of a response the server sends on its own (413, 431, 500):
// the API's JSON error shape.
using HttpErrorFactory =
    std::function<HttpResponse(int status, std::string_view code, std::string_view message)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler, HttpErrorFactory errors);
  // Stops (see Stop).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens, then starts the io threads. Returns the bound port
  // (the chosen one when options.port was 0). kConfig for a bad address,
  // kIo when the port cannot be bound.
  Result<uint16_t> Start();

  // Closes the listener and every connection and joins the io threads.
  // Responses still owed by the handler are dropped. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmarcd::server
