// The REST API and static files: routes a plain HttpRequest to its handler
// and answers with a plain HttpResponse (Boost.Beast stays in
// http_server.cpp). The contract (paths, parameters, JSON shapes, status
// codes) is the one the dashboard consumes:
//
//   GET  /healthz                     200 or 503 with the failing check named
//   GET  /api/v1/domains              list of policy domains
//   GET  /api/v1/reports              ?domain=&from=&to=&limit=&offset=
//   GET  /api/v1/reports/{id}         one report with records, 404 if absent; here
//                                     "records" is the array of records, not a count
//   GET  /api/v1/summary              ?domain=&from=&to=
//   GET  /api/v1/timeseries           ?domain=&from=&to=, one item per UTC day
//   GET  /api/v1/rejected             ?limit=&offset=
//   POST /api/v1/reports              upload (Bearer token of scope ingest or admin)
//   GET  /, /<asset>                  the dashboard (web::FindAsset)
//
// Lists answer {"items","total","limit","offset"}; errors answer
// {"error":{"code","message"}}. An unknown or malformed query parameter is
// a 400 invalid_argument naming it; an empty one ("domain=", or an empty
// piece as in "?" or "a=1&&b=2") counts as absent. A method a path does
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

 private:
  void Route(const HttpRequest& request, Respond& respond);
  void Upload(const HttpRequest& request, Respond& respond);

  ReaderPool& readers_;
  IngestQueue* queue_;
  TokenCheck tokens_;
  ApiOptions options_;
  std::atomic<uint64_t> uploads_{0};
};

}  // namespace dmarcd::server
