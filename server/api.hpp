// The REST API and static files: routes a plain HttpRequest to its handler
// and answers with a plain HttpResponse (Boost.Beast stays in
// http_server.cpp). Every route is one row of a table (Routes(): method,
// pattern, description), which server/openapi.json documents in OpenAPI 3.1
// and /api/v1/openapi.json serves. The contract (paths, parameters, JSON
// shapes, status codes) is the one the dashboard consumes:
//
//   GET  /healthz                       200 or 503 with the failing check named
//   GET  /metrics                       Prometheus text (ApiOptions::metrics_text), else 404
//   GET  /api/v1/openapi.json           the OpenAPI document
//   GET  /api/v1/domains                list of policy domains
//   GET  /api/v1/summary                ?domain=&from=&to=
//   GET  /api/v1/timeseries             ?domain=&from=&to=&bucket=day|week|month&fill=
//   GET  /api/v1/sources                ?domain=&from=&to=&result=&sort=&limit=&offset=
//   GET  /api/v1/sources/{ip}/records   ?domain=&from=&to=&limit=&offset=
//   GET  /api/v1/reporters              ?domain=&from=&to=&limit=&offset=
//   GET  /api/v1/policy                 ?domain= (required)&limit=&offset=
//   GET  /api/v1/reports                ?domain=&from=&to=&source_ip=&limit=&offset=
//   GET  /api/v1/reports/{id}           one report, its records paged (limit, offset)
//   GET  /api/v1/reports/{id}/raw       the envelope as received, 404 if none was kept
//   GET  /api/v1/rejected               ?limit=&offset=
//   GET  /api/v1/failure-reports[/{id}] see failure_api.hpp
//   POST /api/v1/reports                upload (Bearer token of scope ingest or admin)
//   GET  /, /<asset>                    the dashboard (web::FindAsset)
//
// Summary, timeseries, sources and reporters read the daily roll-ups
// (storage/rollups.hpp); a summary equals the sum of its timeseries for the
// same range, whatever the bucket. Lists answer {"items","total","limit",
// "offset"}; errors answer {"error":{"code","message"}}. An unknown or
// malformed query parameter is a 400 invalid_argument naming it; an empty
// one ("domain=", or an empty piece as in "?" or "a=1&&b=2") counts as
// absent. Every route that returns a table also answers CSV (RFC 4180, a
// header row, text/csv; charset=utf-8) for ?format=csv or an Accept header
// naming text/csv; nested lists are joined with ';'. A method a path does
// not take is a 405 whose Allow lists the ones it does. Dashboard pages
// carry a Content-Security-Policy that allows only the files served here.
//
// An upload's origin, as stored for rejected input and logged, is
// "http:upload/<N> token=<name> client=<address>", N counting the uploads
// this Api accepted since it was made.
//
// Thread safety: Handle may be called from any number of threads at once.
// Reads borrow a connection from the ReaderPool; an upload is handed to the
// IngestQueue and `respond` is called later from the writer thread, so the
// caller must move the response to its own executor.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "parser/error.hpp"
#include "server/http_types.hpp"
#include "server/ingest_queue.hpp"
#include "server/reader_pool.hpp"
#include "storage/tokens.hpp"

namespace dmarcd::server {

// Looks up a bearer token's secret: the active token, nullopt when there is
// none, an error when the database failed.
using TokenCheck = std::function<Result<std::optional<storage::TokenRow>>(std::string_view secret)>;

class ImapHealth;

struct ApiOptions {
  uint64_t max_upload_bytes = uint64_t{64} << 20;
  // The IMAP accounts /healthz reports on (one check "imap:<name>" each);
  // null when nothing polls. Must outlive the Api.
  const ImapHealth* imap_health = nullptr;
  // The Prometheus text exposition (format 0.0.4) that GET /metrics
  // answers; unset, /metrics is a 404. Called on an HTTP thread.
  std::function<std::string()> metrics_text = nullptr;
};

// One row of the route table.
struct RouteInfo {
  std::string_view method;   // "GET" (HEAD too) or "POST"
  std::string_view pattern;  // "/api/v1/reports/{id}": a {name} matches one path segment
  std::string_view description;
};

class Api {
 public:
  using Respond = std::function<void(HttpResponse)>;

  // `queue` may be null (read-only use): uploads then answer 503.
  Api(ReaderPool& readers, IngestQueue* queue, TokenCheck tokens, ApiOptions options = {});

  // Calls `respond` exactly once, on this thread for everything but an
  // accepted upload. Never throws: an exception becomes a logged 500.
  void Handle(const HttpRequest& request, Respond respond);

  // {"error":{"code":code,"message":message}} with the given status.
  static HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message);

  // Every route the Api answers besides the dashboard's files, in table
  // order.
  static std::span<const RouteInfo> Routes();

  // A bounded label for metrics: the pattern of the route `path` matches
  // ("/api/v1/reports/{id}"), "static" for a dashboard file, "other" for
  // anything else. A query string is ignored, and so is the method (a 405
  // counts under the path's route).
  static std::string RouteName(std::string_view method, std::string_view path);

 private:
  void Route(const HttpRequest& request, Respond& respond);
  HttpResponse Healthz() const;
  void Upload(const HttpRequest& request, Respond& respond);

  ReaderPool& readers_;
  IngestQueue* queue_;
  TokenCheck tokens_;
  ApiOptions options_;
  std::atomic<uint64_t> uploads_{0};
};

}  // namespace dmarcd::server
