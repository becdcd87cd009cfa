#include "server/api.hpp"

#include <boost/json.hpp>
#include <boost/url.hpp>
#include <charconv>
#include <exception>
#include <map>
#include <set>
#include <string>

#include "server/api_params.hpp"
#include "server/failure_api.hpp"
#include "server/imap_poller.hpp"
#include "server/iso_time.hpp"
#include "server/logging.hpp"
#include "web/assets.hpp"

namespace dmarcd::server {
namespace {

namespace json = boost::json;

// Sent with every page of the dashboard: scripts only from the files served
// here (Chart.js included), so markup injected into a page (a hostile
// org_name, say) can neither run nor load anything; no plugins, no <base>,
// no framing by other sites. Inline styles may restyle a page but run
// nothing, so they stay allowed.
constexpr const char* kDashboardPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

HttpResponse JsonResponse(int status, const json::value& body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "application/json";
  response.body = json::serialize(body);
  return response;
}

// The HTTP status for an error a layer below returned.
int StatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthorized:
      return 401;
    case ErrorCode::kForbidden:
      return 403;
    case ErrorCode::kTooLarge:
      return 413;
    default:
      return IsTransient(code) ? 503 : 500;
  }
}

HttpResponse FromError(const Error& error) {
  HttpResponse response =
      Api::ErrorResponse(StatusFor(error.code), ErrorCodeName(error.code), error.message);
  if (response.status == 503) response.extra_headers.emplace_back("Retry-After", "5");
  return response;
}

json::object ListBody(json::array items, int64_t total, int64_t limit, int64_t offset) {
  json::object body;
  body["items"] = std::move(items);
  body["total"] = total;
  body["limit"] = limit;
  body["offset"] = offset;
  return body;
}

// The query string, checked against what one endpoint accepts.
struct Query {
  storage::TimeFilter filter;
  storage::PageRequest page;
};

Result<Query> ParseQuery(const boost::urls::url_view& url, const std::set<std::string>& allowed) {
  Query query;
  query.page.limit = kDefaultLimit;
  std::set<std::string> seen;

  for (const auto& param : url.params()) {
    // An empty piece ("?", "a=1&&b=2") or an empty value ("domain=", what a
    // form sends for a field left blank) means the parameter is absent.
    if (param.value.empty()) continue;
    const std::string key(param.key);
    const std::string value(param.value);
    if (allowed.count(key) == 0) {
      return MakeError(ErrorCode::kInvalidArgument, "unknown parameter '" + key + "'");
    }
    if (!seen.insert(key).second) {
      return MakeError(ErrorCode::kInvalidArgument, "parameter '" + key + "' given twice");
    }

    if (key == "domain") {
      query.filter.domain = LowerDomain(value);
    } else if (key == "from" || key == "to") {
      auto time = ParseTimeParam(key, value);
      if (!time) return tl::unexpected(time.error());
      (key == "from" ? query.filter.from : query.filter.to) = *time;
    } else if (key == "limit") {
      auto limit = ParseIntegerParam(key, value, 1, kMaxLimit);
      if (!limit) return tl::unexpected(limit.error());
      query.page.limit = *limit;
    } else if (key == "offset") {
      auto offset = ParseIntegerParam(key, value, 0, std::numeric_limits<int64_t>::max());
      if (!offset) return tl::unexpected(offset.error());
      query.page.offset = *offset;
    }
  }

  if (query.filter.from && query.filter.to && *query.filter.from >= *query.filter.to) {
    return MakeError(ErrorCode::kInvalidArgument, "parameter 'to': must be after 'from'");
  }
  return query;
}

json::object FiguresJson(const storage::Figures& f) {
  json::object o;
  o["messages"] = f.messages;
  o["dmarc_pass"] = f.dmarc_pass;
  o["dmarc_fail"] = f.messages - f.dmarc_pass;
  o["dkim_aligned_pass"] = f.dkim_aligned_pass;
  o["spf_aligned_pass"] = f.spf_aligned_pass;
  o["disposition"] = json::object{{"none", f.disposition_none},
                                  {"quarantine", f.disposition_quarantine},
                                  {"reject", f.disposition_reject}};
  return o;
}

json::object ReportJson(const storage::ReportRow& r) {
  json::object o;
  o["id"] = r.id;
  o["org_name"] = r.org_name;
  o["org_email"] = OptString(r.org_email);
  o["report_id"] = r.report_id;
  o["domain"] = r.domain;
  o["begin"] = FormatIsoTime(r.begin);
  o["end"] = FormatIsoTime(r.end);
  o["records"] = r.records;
  o["messages"] = r.messages;
  o["received_at"] = FormatIsoTime(r.received_at);
  o["warnings"] = StringArray(r.warnings);
  return o;
}

json::object RecordJson(const parser::AggregateRecord& r) {
  json::object o;
  o["source_ip"] = r.source_ip;
  o["count"] = r.count;
  o["disposition"] = OptString(r.disposition);
  o["policy_dkim"] = OptString(r.policy_dkim);
  o["policy_spf"] = OptString(r.policy_spf);
  o["dmarc"] = r.DmarcPass() ? "pass" : "fail";
  json::array reasons;
  for (const auto& reason : r.reasons) {
    reasons.emplace_back(
        json::object{{"type", OptString(reason.type)}, {"comment", OptString(reason.comment)}});
  }
  o["reasons"] = std::move(reasons);
  o["header_from"] = OptString(r.header_from);
  o["envelope_from"] = OptString(r.envelope_from);
  o["envelope_to"] = OptString(r.envelope_to);
  json::array dkim;
  for (const auto& d : r.dkim) {
    dkim.emplace_back(json::object{{"domain", OptString(d.domain)},
                                   {"selector", OptString(d.selector)},
                                   {"result", d.result},
                                   {"human_result", OptString(d.human_result)}});
  }
  o["dkim"] = std::move(dkim);
  json::array spf;
  for (const auto& s : r.spf) {
    spf.emplace_back(json::object{{"domain", OptString(s.domain)},
                                  {"scope", OptString(s.scope)},
                                  {"result", s.result},
                                  {"human_result", OptString(s.human_result)}});
  }
  o["spf"] = std::move(spf);
  return o;
}

json::object DetailJson(const storage::ReportDetail& d) {
  json::object o = ReportJson(d.report);
  const parser::PolicyPublished& p = d.header.policy;
  json::object policy;
  policy["domain"] = p.domain;
  policy["adkim"] = OptString(p.adkim);
  policy["aspf"] = OptString(p.aspf);
  policy["p"] = OptString(p.p);
  policy["sp"] = OptString(p.sp);
  policy["np"] = OptString(p.np);
  policy["pct"] = p.pct ? json::value(*p.pct) : json::value(nullptr);
  policy["fo"] = OptString(p.fo);
  policy["testing"] = OptString(p.testing);
  policy["discovery_method"] = OptString(p.discovery_method);
  o["policy_published"] = std::move(policy);

  json::object metadata;
  metadata["version"] = OptString(d.header.version);
  metadata["namespace"] = OptString(d.header.xml_namespace);
  metadata["extra_contact_info"] = OptString(d.header.extra_contact_info);
  metadata["generator"] = OptString(d.header.generator);
  metadata["errors"] = StringArray(d.header.errors);
  o["metadata"] = std::move(metadata);

  json::array records;
  for (const auto& r : d.records) records.emplace_back(RecordJson(r));
  o["records"] = std::move(records);
  return o;
}

json::object RejectedJson(const storage::RejectedRow& r) {
  json::object o;
  o["id"] = r.id;
  o["received_at"] = FormatIsoTime(r.received_at);
  o["origin"] = r.origin;
  o["name"] = r.name;
  o["code"] = r.code;
  o["message"] = r.message;
  o["size"] = r.size;
  o["sha256"] = r.sha256;
  o["recovered"] = r.recovered;
  return o;
}

json::value TimeOrNull(const std::optional<int64_t>& t) {
  if (!t) return nullptr;
  return json::string(FormatIsoTime(*t));
}

// The answer to an upload: 201 if anything was stored, 200 if everything was
// a duplicate, 422 if everything was rejected (with the first reason on top).
HttpResponse UploadResponse(const storage::EnvelopeOutcome& outcome) {
  json::array parts;
  const Error* first_error = nullptr;
  for (const storage::PartOutcome& part : outcome.parts) {
    json::object p;
    p["name"] = part.name;
    p["status"] = storage::PartStatusName(part.status);
    if (part.status == storage::PartStatus::kRejected) {
      p["report"] = nullptr;
    } else {
      p["kind"] = part.failure ? "failure" : "aggregate";
      p["report"] = json::object{{"id", part.report_pk},
                                 {"org_name", part.org_name},
                                 {"report_id", part.report_id},
                                 {"domain", part.domain},
                                 {"begin", FormatIsoTime(part.begin)},
                                 {"end", FormatIsoTime(part.end)},
                                 {"records", part.records},
                                 {"messages", part.messages}};
    }
    p["warnings"] = StringArray(part.warnings);
    if (part.error) {
      p["error"] =
          json::object{{"code", ErrorCodeName(part.error->code)}, {"message", part.error->message}};
      if (first_error == nullptr) first_error = &*part.error;
    } else {
      p["error"] = nullptr;
    }
    parts.emplace_back(std::move(p));
  }

  const storage::PartStatus overall = outcome.Overall();
  json::object body;
  body["status"] = storage::PartStatusName(overall);
  body["parts"] = std::move(parts);
  int status = 200;
  if (overall == storage::PartStatus::kStored) status = 201;
  if (overall == storage::PartStatus::kRejected) {
    status = 422;
    const Error fallback(ErrorCode::kNoReport, "the upload held nothing dmarcd could read");
    const Error& error = first_error != nullptr ? *first_error : fallback;
    body["error"] = json::object{{"code", ErrorCodeName(error.code)}, {"message", error.message}};
  }
  return JsonResponse(status, body);
}

HttpResponse MethodNotAllowed(const char* allow) {
  HttpResponse response =
      Api::ErrorResponse(405, "method_not_allowed", std::string("allowed: ") + allow);
  response.extra_headers.emplace_back("Allow", allow);
  return response;
}

HttpResponse Unauthorized(std::string_view message) {
  HttpResponse response = Api::ErrorResponse(401, ErrorCodeName(ErrorCode::kUnauthorized), message);
  response.extra_headers.emplace_back("WWW-Authenticate", "Bearer realm=\"dmarcd\"");
  return response;
}

bool IsRead(const std::string& method) { return method == "GET" || method == "HEAD"; }

// What a 405 lists in Allow (RFC 9110 section 10.2.1): every method the
// route takes, the upload included.
constexpr const char* kReadMethods = "GET, HEAD";
constexpr const char* kReportsMethods = "GET, HEAD, POST";

}  // namespace

Api::Api(ReaderPool& readers, IngestQueue* queue, TokenCheck tokens, ApiOptions options)
    : readers_(readers), queue_(queue), tokens_(std::move(tokens)), options_(options) {}

HttpResponse Api::ErrorResponse(int status, std::string_view code, std::string_view message) {
  json::object error{{"code", code}, {"message", message}};
  return JsonResponse(status, json::object{{"error", std::move(error)}});
}

void Api::Handle(const HttpRequest& request, Respond respond) {
  // A request either responds itself or hands `respond` on (an upload);
  // an exception can only come before that hand-over.
  try {
    Route(request, respond);
  } catch (const std::exception& e) {
    Log("http")->error("method={} target=\"{}\" status=500 exception=\"{}\"", request.method,
                       request.target, e.what());
    if (respond) respond(ErrorResponse(500, ErrorCodeName(ErrorCode::kInternal), e.what()));
  }
}

void Api::Route(const HttpRequest& request, Respond& respond) {
  auto parsed = boost::urls::parse_origin_form(request.target);
  if (!parsed) {
    respond(ErrorResponse(400, ErrorCodeName(ErrorCode::kInvalidArgument), "malformed target"));
    return;
  }
  const boost::urls::url_view url = *parsed;
  const std::string path = url.path();
  auto reply = [&respond](HttpResponse response) {
    respond(std::move(response));
    respond = nullptr;
  };

  if (path == "/healthz") {
    if (!IsRead(request.method)) return reply(MethodNotAllowed(kReadMethods));
    auto lease = readers_.Acquire();
    auto version = lease.Database().SchemaVersion();
    json::object checks{{"database", version ? "ok" : version.error().ToString()}};
    bool ok = version.has_value();
    // An IMAP account fails while its last poll did (login, TLS, mailbox,
    // network, messages deferred); the HTTP side serves on regardless.
    if (options_.imap_health != nullptr) {
      for (const ImapHealth::Account& account : options_.imap_health->Snapshot()) {
        ok = ok && account.ok;
        checks["imap:" + account.name] =
            account.ok ? "ok"
                       : "failing: " + account.error + " (last good poll: " +
                             (account.last_good_poll ? FormatIsoTime(*account.last_good_poll)
                                                     : std::string("never")) +
                             ")";
      }
    }
    return reply(JsonResponse(ok ? 200 : 503, json::object{{"status", ok ? "ok" : "failing"},
                                                           {"checks", std::move(checks)}}));
  }

  if (path == "/api/v1/reports" && request.method == "POST") return Upload(request, respond);

  if (path.rfind("/api/", 0) == 0) {
    if (!IsRead(request.method)) {
      return reply(MethodNotAllowed(path == "/api/v1/reports" ? kReportsMethods : kReadMethods));
    }
    if (auto failure = HandleFailureReports(request, readers_)) return reply(std::move(*failure));

    if (path == "/api/v1/domains") {
      auto query = ParseQuery(url, {});
      if (!query) return reply(FromError(query.error()));
      auto lease = readers_.Acquire();
      auto domains = lease.Reader().Domains();
      if (!domains) return reply(FromError(domains.error()));
      json::array items;
      for (const auto& d : *domains) {
        items.emplace_back(json::object{{"domain", d.domain},
                                        {"reports", d.reports},
                                        {"messages", d.messages},
                                        {"first", FormatIsoTime(d.first_begin)},
                                        {"last", FormatIsoTime(d.last_end)}});
      }
      const auto total = static_cast<int64_t>(items.size());
      return reply(JsonResponse(200, ListBody(std::move(items), total, total, 0)));
    }

    if (path == "/api/v1/reports") {
      auto query = ParseQuery(url, {"domain", "from", "to", "limit", "offset"});
      if (!query) return reply(FromError(query.error()));
      auto lease = readers_.Acquire();
      auto page = lease.Reader().Reports(query->filter, query->page);
      if (!page) return reply(FromError(page.error()));
      json::array items;
      for (const auto& r : page->items) items.emplace_back(ReportJson(r));
      return reply(JsonResponse(
          200, ListBody(std::move(items), page->total, query->page.limit, query->page.offset)));
    }

    const std::string report_prefix = "/api/v1/reports/";
    if (path.rfind(report_prefix, 0) == 0) {
      auto query = ParseQuery(url, {});
      if (!query) return reply(FromError(query.error()));
      int64_t id = 0;
      const std::string id_text = path.substr(report_prefix.size());
      auto [ptr, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
      if (ec != std::errc() || ptr != id_text.data() + id_text.size() || id <= 0) {
        return reply(ErrorResponse(404, ErrorCodeName(ErrorCode::kNotFound),
                                   "no report with id '" + id_text + "'"));
      }
      auto lease = readers_.Acquire();
      auto detail = lease.Reader().Report(id);
      if (!detail) return reply(FromError(detail.error()));
      return reply(JsonResponse(200, DetailJson(*detail)));
    }

    if (path == "/api/v1/summary") {
      auto query = ParseQuery(url, {"domain", "from", "to"});
      if (!query) return reply(FromError(query.error()));
      auto lease = readers_.Acquire();
      auto figures = lease.Reader().Summary(query->filter);
      if (!figures) return reply(FromError(figures.error()));
      json::object body;
      body["domain"] = OptString(query->filter.domain);
      body["from"] = TimeOrNull(query->filter.from);
      body["to"] = TimeOrNull(query->filter.to);
      for (auto& [key, value] : FiguresJson(*figures)) body[key] = value;
      return reply(JsonResponse(200, body));
    }

    if (path == "/api/v1/timeseries") {
      auto query = ParseQuery(url, {"domain", "from", "to"});
      if (!query) return reply(FromError(query.error()));
      auto lease = readers_.Acquire();
      auto days = lease.Reader().Timeseries(query->filter);
      if (!days) return reply(FromError(days.error()));
      json::array items;
      for (const auto& day : *days) {
        json::object item;
        item["date"] = FormatIsoDay(day.day);
        for (auto& [key, value] : FiguresJson(day.figures)) item[key] = value;
        items.emplace_back(std::move(item));
      }
      const auto total = static_cast<int64_t>(items.size());
      return reply(JsonResponse(200, ListBody(std::move(items), total, total, 0)));
    }

    if (path == "/api/v1/rejected") {
      auto query = ParseQuery(url, {"limit", "offset"});
      if (!query) return reply(FromError(query.error()));
      auto lease = readers_.Acquire();
      auto page = lease.Reader().Rejected(query->page);
      if (!page) return reply(FromError(page.error()));
      json::array items;
      for (const auto& r : page->items) items.emplace_back(RejectedJson(r));
      return reply(JsonResponse(
          200, ListBody(std::move(items), page->total, query->page.limit, query->page.offset)));
    }

    return reply(ErrorResponse(404, ErrorCodeName(ErrorCode::kNotFound), "no such endpoint"));
  }

  auto reply_page = [&reply](HttpResponse response) {
    response.extra_headers.emplace_back("Content-Security-Policy", kDashboardPolicy);
    reply(std::move(response));
  };
  if (!IsRead(request.method)) return reply_page(MethodNotAllowed(kReadMethods));
  const web::Asset* asset = web::FindAsset(path);
  if (asset == nullptr) {
    return reply_page(ErrorResponse(404, ErrorCodeName(ErrorCode::kNotFound), "no such page"));
  }
  HttpResponse response;
  response.content_type = std::string(asset->content_type);
  response.body = std::string(asset->body);
  reply_page(std::move(response));
}

void Api::Upload(const HttpRequest& request, Respond& respond) {
  // RFC 6750 section 2.1: "Authorization: Bearer <token>"; the scheme name
  // is case-insensitive (RFC 9110 section 11.1).
  auto header = request.headers.find("authorization");
  const std::string scheme_prefix = "bearer ";
  if (header == request.headers.end() || header->second.size() <= scheme_prefix.size()) {
    respond(Unauthorized("an upload needs an Authorization: Bearer token"));
    return;
  }
  std::string scheme = header->second.substr(0, scheme_prefix.size());
  for (char& ch : scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (scheme != scheme_prefix) {
    respond(Unauthorized("an upload needs an Authorization: Bearer token"));
    return;
  }

  auto token = tokens_(std::string_view(header->second).substr(scheme_prefix.size()));
  if (!token) {
    respond(FromError(token.error()));
    return;
  }
  if (!*token) {
    respond(Unauthorized("unknown or revoked token"));
    return;
  }
  if (!storage::ScopeAllows((*token)->scope, storage::TokenScope::kIngest)) {
    respond(ErrorResponse(403, ErrorCodeName(ErrorCode::kForbidden),
                          "token '" + (*token)->name + "' has scope " +
                              std::string(storage::TokenScopeName((*token)->scope)) +
                              "; uploads need ingest or admin"));
    return;
  }

  if (request.body.size() > options_.max_upload_bytes) {
    respond(ErrorResponse(413, ErrorCodeName(ErrorCode::kTooLarge),
                          "upload above " + std::to_string(options_.max_upload_bytes) + " bytes"));
    return;
  }
  if (request.body.empty()) {
    respond(ErrorResponse(400, ErrorCodeName(ErrorCode::kInvalidArgument), "empty body"));
    return;
  }
  if (queue_ == nullptr) {
    respond(ErrorResponse(503, ErrorCodeName(ErrorCode::kInternal), "uploads are disabled"));
    return;
  }

  // Numbered, and with who sent it from where: the rejected table and the
  // log then tell one upload from another by the same token.
  const uint64_t upload_no = ++uploads_;
  std::string origin = "http:upload/" + std::to_string(upload_no) + " token=" + (*token)->name +
                       " client=" + (request.client_address.empty() ? "-" : request.client_address);
  Log("http")->debug("origin={} bytes={} queued", origin, request.body.size());
  parser::Envelope envelope{request.body, std::move(origin)};
  queue_->Submit(std::move(envelope),
                 [done = std::move(respond)](Result<storage::EnvelopeOutcome> outcome) {
                   done(outcome ? UploadResponse(*outcome) : FromError(outcome.error()));
                 });
  respond = nullptr;
}

}  // namespace dmarcd::server
