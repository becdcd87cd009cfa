// Plain request and response structs that the HTTP server (the only code
// that knows Boost.Beast) converts to and from, so routing and handlers
// compile without Beast and can be called directly in tests.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dmarcd::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin form: "/api/v1/reports?limit=1"
  // Header names in lower case; a repeated header keeps its last value.
  std::map<std::string, std::string> headers;
  std::string body;
  // The peer's IP address ("127.0.0.1", "::1"); empty when unknown.
  std::string client_address;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  // Headers besides Content-Type, Content-Length, Server, Connection and
  // X-Content-Type-Options (always nosniff), which the server sets.
  std::vector<std::pair<std::string, std::string>> extra_headers;
  std::string body;
};

}  // namespace dmarcd::server
