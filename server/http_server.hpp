// HTTP/1.1 server on Boost.Beast (the only translation unit that includes
// Beast), plain or over TLS: accepts connections on a few io threads, reads
// one request at a time per connection (keep-alive), converts it to an
// HttpRequest and hands it to the handler; the response may come back on
// any thread and is posted to the connection's strand before it is written.
// A request with "Expect: 100-continue" gets its 100 Continue once the
// header passed the checks below, or the refusal at once.
//
// Limits (HttpServerOptions): header block max_header_bytes (431), body
// max_body_bytes (413, checked against Content-Length before any of the
// body is read); a request must be complete header_timeout after its first
// byte (or after the connection opened, for the first request; the TLS
// handshake counts too) and its body request_timeout after that first
// byte, else the connection is closed without an answer; a kept-alive
// connection waits idle_timeout for its next request. Above
// max_connections open connections, or max_connections_per_client from one
// peer address, a new connection is closed at once without being read.
//
// Every response carries X-Content-Type-Options: nosniff; an HTML one
// without its own Content-Security-Policy gets one that allows nothing
// (default-src 'none'); Access-Control-* headers from a handler are dropped
// (dmarcd never grants cross-origin access, RFC 6454 / Fetch CORS).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "parser/error.hpp"
#include "server/http_types.hpp"

namespace dmarcd::server {

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0 binds a free port (see Start)
  uint64_t max_body_bytes = uint64_t{64} << 20;
  uint32_t max_header_bytes = 16 * 1024;
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds request_timeout{30};
  std::chrono::seconds idle_timeout{60};
  int max_connections = 4096;
  int max_connections_per_client = 32;
  int threads = 2;
  // PEM files; both set: HTTPS only (TLS 1.2 or later), read once by Start.
  std::string tls_cert;
  std::string tls_key;
  // Called on an io thread with each complete request before the handler:
  // a response returned is sent instead and the handler never sees the
  // request (access control, server/access.hpp). Must be thread-safe.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> gate;
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

  // Loads the TLS certificate and key if configured, binds and listens,
  // raises the soft limit of open files towards max_connections, then starts
  // the io threads. Returns the bound port (the chosen one when options.port
  // was 0). kConfig for a bad address or an unusable certificate or key,
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
