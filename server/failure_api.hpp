// The failure report endpoints of the REST API:
//
//   GET /api/v1/failure-reports       ?domain=&from=&to=&source_ip=&limit=&offset=
//   GET /api/v1/failure-reports/{id}  one report with every field and the kept headers
//
// Both answer JSON, or CSV with a header row for ?format=csv or an Accept
// header that asks for text/csv (the detail as one row). from and to
// filter the arrival time (Arrival-Date, else when dmarcd received the
// report), from inclusive, to exclusive. Lists answer {"items","total",
// "limit","offset"}, newest first; errors {"error":{"code","message"}}; an
// unknown or malformed parameter is a 400 naming it, an empty one counts as
// absent, a report that does not exist a 404.
//
// Thread-safe: each call borrows its own connection from the pool.
#pragma once

#include <optional>

#include "server/http_types.hpp"
#include "server/reader_pool.hpp"

namespace dmarcd::server {

// The response when request.target is one of the paths above (any method
// other than GET or HEAD: 405), nullopt for any other path.
std::optional<HttpResponse> HandleFailureReports(const HttpRequest& request, ReaderPool& readers);

}  // namespace dmarcd::server
