#include "server/api.hpp"

#include <array>
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <exception>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "parser/pipeline.hpp"
#include "parser/report_values.hpp"
#include "server/api_params.hpp"
#include "server/csv.hpp"
#include "server/failure_api.hpp"
#include "server/imap_poller.hpp"
#include "server/iso_time.hpp"
#include "server/logging.hpp"
#include "server/openapi.hpp"
#include "storage/day_shares.hpp"
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

// The query string, checked against what one endpoint accepts. domain,
// from, to, limit and offset are read here; any other allowed parameter is
// kept as text in `extra` for the handler to check.
struct Query {
  storage::TimeFilter filter;
  storage::PageRequest page;
  std::map<std::string, std::string> extra;
  bool csv = false;  // ?format=csv, or an Accept header naming text/csv
};

// An Accept header that names text/csv (RFC 9110 section 12.5.1) asks for
// CSV; anything else gets JSON.
bool AcceptsCsv(const HttpRequest& request) {
  auto accept = request.headers.find("accept");
  return accept != request.headers.end() && accept->second.find("text/csv") != std::string::npos;
}

Result<Query> ParseQuery(const HttpRequest& request, const boost::urls::url_view& url,
                         const std::set<std::string>& allowed,
                         int64_t default_limit = kDefaultLimit, int64_t max_limit = kMaxLimit) {
  Query query;
  query.page.limit = default_limit;
  query.csv = allowed.count("format") != 0 && AcceptsCsv(request);
  std::set<std::string> seen;

  for (const auto& param : url.params()) {
    const std::string key(param.key);
    const std::string value(param.value);
    auto accepted = AcceptParam(key, value, allowed, seen);
    if (!accepted) return tl::unexpected(accepted.error());
    if (!*accepted) continue;

    if (key == "domain") {
      query.filter.domain = LowerDomain(value);
    } else if (key == "from" || key == "to") {
      auto time = ParseTimeParam(key, value);
      if (!time) return tl::unexpected(time.error());
      (key == "from" ? query.filter.from : query.filter.to) = *time;
    } else if (key == "limit") {
      auto limit = ParseIntegerParam(key, value, 1, max_limit);
      if (!limit) return tl::unexpected(limit.error());
      query.page.limit = *limit;
    } else if (key == "offset") {
      auto offset = ParseIntegerParam(key, value, 0, std::numeric_limits<int64_t>::max());
      if (!offset) return tl::unexpected(offset.error());
      query.page.offset = *offset;
    } else if (key == "format") {
      if (value != "csv" && value != "json") {
        return MakeError(ErrorCode::kInvalidArgument, "parameter 'format': expected csv or json");
      }
      query.csv = value == "csv";
    } else {
      query.extra[key] = value;
    }
  }

  if (query.filter.from && query.filter.to && *query.filter.from >= *query.filter.to) {
    return MakeError(ErrorCode::kInvalidArgument, "parameter 'to': must be after 'from'");
  }
  return query;
}

// One of `choices` for parameter `name`, or `fallback` when absent.
Result<std::string> ParseChoice(const Query& query, const std::string& name,
                                const std::vector<std::string>& choices,
                                const std::string& fallback) {
  auto it = query.extra.find(name);
  if (it == query.extra.end()) return fallback;
  for (const std::string& choice : choices) {
    if (it->second == choice) return choice;
  }
  std::string expected;
  for (const std::string& choice : choices) expected += (expected.empty() ? "" : ", ") + choice;
  return MakeError(ErrorCode::kInvalidArgument,
                   "parameter '" + name + "': expected one of " + expected);
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

HttpResponse MethodNotAllowed(const std::string& allow) {
  HttpResponse response = Api::ErrorResponse(405, "method_not_allowed", "allowed: " + allow);
  response.extra_headers.emplace_back("Allow", allow);
  return response;
}

HttpResponse Unauthorized(std::string_view message) {
  HttpResponse response = Api::ErrorResponse(401, ErrorCodeName(ErrorCode::kUnauthorized), message);
  response.extra_headers.emplace_back("WWW-Authenticate", "Bearer realm=\"dmarcd\"");
  return response;
}

bool IsRead(const std::string& method) { return method == "GET" || method == "HEAD"; }

// CSV for a list: one column per key of `columns`, in that order. A nested
// object (disposition) becomes one column per member ("disposition_none");
// a list is joined with ';', and a list of objects writes each object's
// values joined with ':' ("example.com:selector1:pass"). null is empty.
std::string CsvText(const json::value& value);

std::string CsvJoined(const json::array& values) {
  std::string out;
  for (const json::value& value : values) {
    if (!out.empty()) out += ';';
    if (value.is_object()) {
      // Appended piece by piece: an operator+ chain here trips g++ 12's
      // -Wrestrict false positive at -O2.
      bool first = true;
      for (const auto& member : value.as_object()) {
        if (!first) out += ':';
        out += CsvText(member.value());
        first = false;
      }
    } else {
      out += CsvText(value);
    }
  }
  return out;
}

std::string CsvText(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      return "";
    case json::kind::string:
      return std::string(value.as_string());
    case json::kind::array:
      return CsvJoined(value.as_array());
    case json::kind::double_: {
      // Boost.JSON writes doubles as "2.5E-1"; a spreadsheet reads "0.25"
      // more easily, and six significant digits are plenty for a rate.
      char text[32];
      std::snprintf(text, sizeof(text), "%.6g", value.as_double());
      return text;
    }
    default:
      // Numbers and booleans as JSON writes them.
      return json::serialize(value);
  }
}

constexpr std::array<const char*, 3> kDispositions = {"none", "quarantine", "reject"};

// A column of figures' dispositions ({"none": N, ...} in JSON), written as
// one CSV column per disposition; a record's "disposition" is one string.
constexpr const char* kDispositionCounts = "disposition_*";

HttpResponse CsvResponse(const json::array& items, const std::vector<std::string>& columns) {
  std::vector<std::string> header;
  for (const std::string& column : columns) {
    if (column == kDispositionCounts) {
      for (const char* kind : kDispositions) header.push_back(std::string("disposition_") + kind);
    } else {
      header.push_back(column);
    }
  }
  std::string body = CsvRow(header);
  std::vector<std::string> cells;
  for (const json::value& item : items) {
    cells.clear();
    const json::object& object = item.as_object();
    for (const std::string& column : columns) {
      if (column == kDispositionCounts) {
        const json::value* value = object.if_contains("disposition");
        for (const char* kind : kDispositions) {
          const json::value* count = value != nullptr && value->is_object()
                                         ? value->as_object().if_contains(kind)
                                         : nullptr;
          cells.push_back(count != nullptr ? CsvText(*count) : "");
        }
      } else {
        const json::value* value = object.if_contains(column);
        cells.push_back(value != nullptr ? CsvText(*value) : "");
      }
    }
    body += CsvRow(cells);
  }
  HttpResponse response;
  response.content_type = "text/csv; charset=utf-8";
  response.body = std::move(body);
  return response;
}

const std::vector<std::string> kFigureColumns = {"messages",         "dmarc_pass",
                                                 "dmarc_fail",       "dkim_aligned_pass",
                                                 "spf_aligned_pass", kDispositionCounts};

std::vector<std::string> WithFigures(std::vector<std::string> columns) {
  columns.insert(columns.end(), kFigureColumns.begin(), kFigureColumns.end());
  return columns;
}

// A list answer: JSON {"items","total","limit","offset"} or CSV.
HttpResponse ListResponse(const Query& query, json::array items, int64_t total,
                          const std::vector<std::string>& columns) {
  if (query.csv) return CsvResponse(items, columns);
  return JsonResponse(200, ListBody(std::move(items), total, query.page.limit, query.page.offset));
}

json::object SourceJson(const storage::SourceRow& s) {
  json::object o;
  o["source_ip"] = s.source_ip;
  o["reverse_dns"] = nullptr;
  for (auto& [key, value] : FiguresJson(s.figures)) o[key] = value;
  // policy_evaluated fails DMARC exactly when neither identifier passed
  // aligned (RFC 7489 section 6.6.2).
  o["fail_both"] = s.figures.messages - s.figures.dmarc_pass;
  // Shares of the source's messages, weighted by message count as the
  // report's own counts are; null for a source with no messages.
  auto rate = [&s](uint64_t part) -> json::value {
    if (s.figures.messages == 0) return nullptr;
    return static_cast<double>(part) / static_cast<double>(s.figures.messages);
  };
  o["dmarc_pass_rate"] = rate(s.figures.dmarc_pass);
  o["dkim_aligned_pass_rate"] = rate(s.figures.dkim_aligned_pass);
  o["spf_aligned_pass_rate"] = rate(s.figures.spf_aligned_pass);
  o["header_from"] = StringArray(s.header_from);
  o["dkim_domains"] = StringArray(s.dkim_domains);
  o["spf_domains"] = StringArray(s.spf_domains);
  o["reports"] = s.reports;
  o["first_seen"] = FormatIsoTime(s.first_seen);
  o["last_seen"] = FormatIsoTime(s.last_seen);
  return o;
}

json::object SourceRecordJson(const storage::SourceRecordRow& row) {
  const parser::AggregateRecord& r = row.record;
  json::object o;
  o["report_id"] = row.report_pk;
  o["report"] = row.report_id;
  o["org_name"] = row.org_name;
  o["begin"] = FormatIsoTime(row.begin);
  o["end"] = FormatIsoTime(row.end);
  o["domain"] = row.domain;
  o["source_ip"] = r.source_ip;
  o["count"] = r.count;
  o["disposition"] = OptString(r.disposition);
  o["policy_dkim"] = OptString(r.policy_dkim);
  o["policy_spf"] = OptString(r.policy_spf);
  o["header_from"] = OptString(r.header_from);
  o["envelope_from"] = OptString(r.envelope_from);
  json::array dkim;
  for (const auto& d : r.dkim) {
    dkim.emplace_back(json::object{{"domain", OptString(d.domain)},
                                   {"selector", OptString(d.selector)},
                                   {"result", d.result}});
  }
  o["dkim"] = std::move(dkim);
  json::array spf;
  for (const auto& x : r.spf) {
    spf.emplace_back(json::object{
        {"domain", OptString(x.domain)}, {"scope", OptString(x.scope)}, {"result", x.result}});
  }
  o["spf"] = std::move(spf);
  return o;
}

json::value OptInt(const std::optional<int64_t>& value) {
  if (!value) return nullptr;
  return *value;
}

// The most buckets fill=true lists: ten years of days.
constexpr size_t kMaxFilledBuckets = 3660;

// Timeseries buckets: a day, a week from Monday (ISO 8601), a calendar
// month; all UTC.
enum class Bucket { kDay, kWeek, kMonth };

int64_t BucketStart(int64_t day, Bucket bucket) {
  using std::chrono::days;
  using std::chrono::sys_days;
  const sys_days date{days{day / storage::kSecondsPerDay}};
  sys_days start = date;
  if (bucket == Bucket::kWeek) {
    const unsigned since_monday = (std::chrono::weekday(date).c_encoding() + 6) % 7;
    start = date - days{since_monday};
  } else if (bucket == Bucket::kMonth) {
    const std::chrono::year_month_day ymd(date);
    start = sys_days(ymd.year() / ymd.month() / std::chrono::day{1});
  }
  return start.time_since_epoch().count() * storage::kSecondsPerDay;
}

int64_t NextBucket(int64_t start, Bucket bucket) {
  using std::chrono::days;
  using std::chrono::sys_days;
  if (bucket == Bucket::kDay) return start + storage::kSecondsPerDay;
  if (bucket == Bucket::kWeek) return start + 7 * storage::kSecondsPerDay;
  const std::chrono::year_month_day ymd(sys_days{days{start / storage::kSecondsPerDay}});
  const sys_days next(ymd + std::chrono::months{1});
  return next.time_since_epoch().count() * storage::kSecondsPerDay;
}

void AddFigures(storage::Figures& sum, const storage::Figures& f) {
  sum.messages += f.messages;
  sum.dmarc_pass += f.dmarc_pass;
  sum.dkim_aligned_pass += f.dkim_aligned_pass;
  sum.spf_aligned_pass += f.spf_aligned_pass;
  sum.disposition_none += f.disposition_none;
  sum.disposition_quarantine += f.disposition_quarantine;
  sum.disposition_reject += f.disposition_reject;
}

// What a route handler gets: the request, its parsed target, the values of
// the pattern's {name} segments in order, and the reader pool.
struct RouteContext {
  const HttpRequest& request;
  const boost::urls::url_view& url;
  std::vector<std::string> segments;
  ReaderPool& readers;
  const ApiOptions& options;
};

using Handler = HttpResponse (*)(const RouteContext& context);

// A positive report id from a path segment; nullopt for anything else.
std::optional<int64_t> ReportIdFrom(const std::string& text) {
  int64_t id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || ptr != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

HttpResponse NoSuchReport(const std::string& id_text) {
  return Api::ErrorResponse(404, ErrorCodeName(ErrorCode::kNotFound),
                            "no report with id '" + id_text + "'");
}

HttpResponse HandleMetrics(const RouteContext& c) {
  if (!c.options.metrics_text) {
    return Api::ErrorResponse(404, ErrorCodeName(ErrorCode::kNotFound), "metrics are off");
  }
  HttpResponse response;
  // The Prometheus text exposition format, version 0.0.4.
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = c.options.metrics_text();
  return response;
}

HttpResponse HandleOpenApi(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url, {});
  if (!query) return FromError(query.error());
  HttpResponse response;
  response.content_type = "application/json";
  response.body = std::string(kOpenApiDocument);
  return response;
}

HttpResponse HandleDomains(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url, {"format"});
  if (!query) return FromError(query.error());
  auto lease = c.readers.Acquire();
  auto domains = lease.Reader().Domains();
  if (!domains) return FromError(domains.error());
  json::array items;
  for (const auto& d : *domains) {
    items.emplace_back(json::object{{"domain", d.domain},
                                    {"reports", d.reports},
                                    {"messages", d.messages},
                                    {"first", FormatIsoTime(d.first_begin)},
                                    {"last", FormatIsoTime(d.last_end)}});
  }
  const auto total = static_cast<int64_t>(items.size());
  if (query->csv) return CsvResponse(items, {"domain", "reports", "messages", "first", "last"});
  return JsonResponse(200, ListBody(std::move(items), total, total, 0));
}

HttpResponse HandleSummary(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url, {"domain", "from", "to", "format"});
  if (!query) return FromError(query.error());
  auto lease = c.readers.Acquire();
  auto figures = lease.Reader().Summary(query->filter);
  if (!figures) return FromError(figures.error());
  json::object body;
  body["domain"] = OptString(query->filter.domain);
  body["from"] = TimeOrNull(query->filter.from);
  body["to"] = TimeOrNull(query->filter.to);
  for (auto& [key, value] : FiguresJson(*figures)) body[key] = value;
  if (query->csv) return CsvResponse(json::array{body}, WithFigures({"domain", "from", "to"}));
  return JsonResponse(200, body);
}

HttpResponse HandleTimeseries(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url, {"domain", "from", "to", "bucket", "fill", "format"});
  if (!query) return FromError(query.error());
  auto bucket_name = ParseChoice(*query, "bucket", {"day", "week", "month"}, "day");
  auto fill = ParseChoice(*query, "fill", {"true", "false"}, "true");
  if (!bucket_name || !fill) return FromError(!bucket_name ? bucket_name.error() : fill.error());
  const Bucket bucket = *bucket_name == "week"    ? Bucket::kWeek
                        : *bucket_name == "month" ? Bucket::kMonth
                                                  : Bucket::kDay;

  auto lease = c.readers.Acquire();
  auto days = lease.Reader().Timeseries(query->filter);
  if (!days) return FromError(days.error());

  // Every day lands in exactly one bucket, so the buckets add up to the
  // summary of the same range. With both ends given, empty buckets inside
  // [from, to) are listed as zeros so a chart has a continuous axis.
  std::map<int64_t, storage::Figures> buckets;
  const storage::TimeFilter& filter = query->filter;
  if (*fill == "true" && filter.from && filter.to) {
    for (int64_t start = BucketStart(storage::UtcDayStart(*filter.from), bucket);
         start < *filter.to; start = NextBucket(start, bucket)) {
      // A bound on the answer's size whatever the range asked.
      if (buckets.size() == kMaxFilledBuckets) {
        return Api::ErrorResponse(400, ErrorCodeName(ErrorCode::kInvalidArgument),
                                  "parameter 'fill': more than " +
                                      std::to_string(kMaxFilledBuckets) +
                                      " buckets from 'from' to 'to'; ask for a larger bucket "
                                      "or fill=false");
      }
      buckets[start];
    }
  }
  for (const auto& day : *days) AddFigures(buckets[BucketStart(day.day, bucket)], day.figures);

  json::array items;
  for (const auto& [start, figures] : buckets) {
    json::object item;
    item["date"] = FormatIsoDay(start);
    for (auto& [key, value] : FiguresJson(figures)) item[key] = value;
    items.emplace_back(std::move(item));
  }
  const auto total = static_cast<int64_t>(items.size());
  if (query->csv) return CsvResponse(items, WithFigures({"date"}));
  return JsonResponse(200, ListBody(std::move(items), total, total, 0));
}

HttpResponse HandleSources(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url,
                          {"domain", "from", "to", "result", "sort", "limit", "offset", "format"});
  if (!query) return FromError(query.error());
  auto result = ParseChoice(*query, "result", {"all", "fail", "pass", "fail_both"}, "all");
  auto sort =
      ParseChoice(*query, "sort", {"failing", "messages", "last_seen", "source_ip"}, "failing");
  if (!result || !sort) return FromError(!result ? result.error() : sort.error());
  storage::SourceQuery source_query;
  source_query.result = *result == "fail"        ? storage::SourceResult::kFail
                        : *result == "pass"      ? storage::SourceResult::kPass
                        : *result == "fail_both" ? storage::SourceResult::kFailBoth
                                                 : storage::SourceResult::kAll;
  source_query.sort = *sort == "messages"    ? storage::SourceSort::kMessages
                      : *sort == "last_seen" ? storage::SourceSort::kLastSeen
                      : *sort == "source_ip" ? storage::SourceSort::kSourceIp
                                             : storage::SourceSort::kFailing;

  auto lease = c.readers.Acquire();
  auto page = lease.Reader().Sources(query->filter, source_query, query->page);
  if (!page) return FromError(page.error());
  json::array items;
  for (const auto& source : page->items) items.emplace_back(SourceJson(source));
  std::vector<std::string> columns = WithFigures({"source_ip", "reverse_dns"});
  columns.insert(columns.end(), {"fail_both", "dmarc_pass_rate", "dkim_aligned_pass_rate",
                                 "spf_aligned_pass_rate", "header_from", "dkim_domains",
                                 "spf_domains", "reports", "first_seen", "last_seen"});
  return ListResponse(*query, std::move(items), page->total, columns);
}

HttpResponse HandleSourceRecords(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url, {"domain", "from", "to", "limit", "offset", "format"});
  if (!query) return FromError(query.error());
  // Stored addresses are canonical (parser::CanonicalIp), so the one asked
  // for is too: "2001:DB8:0::25" finds 2001:db8::25.
  const std::optional<std::string> ip = parser::CanonicalIp(c.segments.at(0));
  if (!ip) {
    return FromError(Error(ErrorCode::kInvalidArgument,
                           "'" + c.segments.at(0) + "' is not an IPv4 or IPv6 address"));
  }
  auto lease = c.readers.Acquire();
  auto page = lease.Reader().SourceRecords(*ip, query->filter, query->page);
  if (!page) return FromError(page.error());
  json::array items;
  for (const auto& row : page->items) items.emplace_back(SourceRecordJson(row));
  return ListResponse(
      *query, std::move(items), page->total,
      {"report_id", "report", "org_name", "begin", "end", "domain", "source_ip", "count",
       "disposition", "policy_dkim", "policy_spf", "header_from", "envelope_from", "dkim", "spf"});
}

HttpResponse HandleReporters(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url, {"domain", "from", "to", "limit", "offset", "format"});
  if (!query) return FromError(query.error());
  auto lease = c.readers.Acquire();
  auto page = lease.Reader().Reporters(query->filter, query->page);
  if (!page) return FromError(page.error());
  json::array items;
  for (const auto& r : page->items) {
    items.emplace_back(json::object{{"org_name", r.org_name},
                                    {"reporter_key", r.reporter_key},
                                    {"reports", r.reports},
                                    {"messages", r.messages},
                                    {"dmarc_pass", r.dmarc_pass},
                                    {"dmarc_fail", r.messages - r.dmarc_pass},
                                    {"first_seen", FormatIsoTime(r.first_seen)},
                                    {"last_seen", FormatIsoTime(r.last_seen)}});
  }
  return ListResponse(*query, std::move(items), page->total,
                      {"org_name", "reporter_key", "reports", "messages", "dmarc_pass",
                       "dmarc_fail", "first_seen", "last_seen"});
}

HttpResponse HandlePolicy(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url, {"domain", "limit", "offset", "format"});
  if (!query) return FromError(query.error());
  if (!query->filter.domain) {
    return Api::ErrorResponse(400, ErrorCodeName(ErrorCode::kInvalidArgument),
                              "parameter 'domain' is required");
  }
  auto lease = c.readers.Acquire();
  auto page = lease.Reader().Policies(*query->filter.domain, query->page);
  if (!page) return FromError(page.error());
  json::array items;
  for (const auto& p : page->items) {
    items.emplace_back(json::object{{"p", OptString(p.p)},
                                    {"sp", OptString(p.sp)},
                                    {"np", OptString(p.np)},
                                    {"adkim", OptString(p.adkim)},
                                    {"aspf", OptString(p.aspf)},
                                    {"pct", OptInt(p.pct)},
                                    {"fo", OptString(p.fo)},
                                    {"testing", OptString(p.testing)},
                                    {"reports", p.reports},
                                    {"first_seen", FormatIsoTime(p.first_seen)},
                                    {"last_seen", FormatIsoTime(p.last_seen)}});
  }
  return ListResponse(*query, std::move(items), page->total,
                      {"p", "sp", "np", "adkim", "aspf", "pct", "fo", "testing", "reports",
                       "first_seen", "last_seen"});
}

HttpResponse HandleReports(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url,
                          {"domain", "from", "to", "source_ip", "limit", "offset", "format"});
  if (!query) return FromError(query.error());
  std::optional<std::string> source_ip;
  if (auto it = query->extra.find("source_ip"); it != query->extra.end()) {
    auto ip = ParseIpParam("source_ip", it->second);
    if (!ip) return FromError(ip.error());
    source_ip = std::move(*ip);
  }
  auto lease = c.readers.Acquire();
  auto page = lease.Reader().Reports(query->filter, query->page, source_ip);
  if (!page) return FromError(page.error());
  json::array items;
  for (const auto& r : page->items) items.emplace_back(ReportJson(r));
  return ListResponse(*query, std::move(items), page->total,
                      {"id", "org_name", "org_email", "report_id", "domain", "begin", "end",
                       "records", "messages", "received_at", "warnings"});
}

HttpResponse HandleReport(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url, {"limit", "offset", "format"});
  if (!query) return FromError(query.error());
  const std::optional<int64_t> id = ReportIdFrom(c.segments.at(0));
  if (!id) return NoSuchReport(c.segments.at(0));
  auto lease = c.readers.Acquire();
  auto detail = lease.Reader().Report(*id, query->page);
  if (!detail) return FromError(detail.error());
  json::object body = DetailJson(*detail);
  if (query->csv) {
    return CsvResponse(body.at("records").as_array(),
                       {"source_ip", "count", "disposition", "policy_dkim", "policy_spf", "dmarc",
                        "reasons", "header_from", "envelope_from", "envelope_to", "dkim", "spf"});
  }
  body["records_total"] = detail->report.records;
  body["limit"] = query->page.limit;
  body["offset"] = query->page.offset;
  return JsonResponse(200, body);
}

HttpResponse HandleRaw(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url, {});
  if (!query) return FromError(query.error());
  const std::optional<int64_t> id = ReportIdFrom(c.segments.at(0));
  if (!id) return NoSuchReport(c.segments.at(0));
  auto lease = c.readers.Acquire();
  auto raw = lease.Reader().Raw(*id);
  if (!raw) return FromError(raw.error());

  // The type the bytes are, not what the sender claimed (DESIGN.md: sniff
  // by content).
  std::string type = "application/octet-stream";
  std::string extension = "bin";
  switch (parser::SniffPayload(raw->bytes)) {
    case parser::PayloadKind::kGzip:
      type = "application/gzip";
      extension = "gz";
      break;
    case parser::PayloadKind::kZip:
      type = "application/zip";
      extension = "zip";
      break;
    case parser::PayloadKind::kXml:
      type = "application/xml";
      extension = "xml";
      break;
    case parser::PayloadKind::kEmail:
      type = "message/rfc822";
      extension = "eml";
      break;
    case parser::PayloadKind::kUnknown:
      break;
  }
  HttpResponse response;
  response.content_type = type;
  response.body = std::move(raw->bytes);
  response.extra_headers.emplace_back(
      "Content-Disposition",
      "attachment; filename=\"report-" + std::to_string(*id) + "." + extension + "\"");
  return response;
}

HttpResponse HandleRejected(const RouteContext& c) {
  auto query = ParseQuery(c.request, c.url, {"limit", "offset", "format"});
  if (!query) return FromError(query.error());
  auto lease = c.readers.Acquire();
  auto page = lease.Reader().Rejected(query->page);
  if (!page) return FromError(page.error());
  json::array items;
  for (const auto& r : page->items) items.emplace_back(RejectedJson(r));
  return ListResponse(
      *query, std::move(items), page->total,
      {"id", "received_at", "origin", "name", "code", "message", "size", "sha256", "recovered"});
}

HttpResponse HandleFailure(const RouteContext& c) {
  if (auto response = HandleFailureReports(c.request, c.readers)) return std::move(*response);
  return Api::ErrorResponse(404, ErrorCodeName(ErrorCode::kNotFound), "no such endpoint");
}

struct RouteEntry {
  RouteInfo info;
  Handler handler;  // null for the two the Api answers itself: /healthz and the upload
};

// Every route. server/openapi.json describes each one (a test holds the two
// together); RouteName labels metrics with the patterns.
const RouteEntry kRouteTable[] = {
    {{"GET", "/healthz", "Health of the database and of each IMAP account"}, nullptr},
    {{"GET", "/metrics", "Prometheus metrics"}, HandleMetrics},
    {{"GET", "/api/v1/openapi.json", "This API as an OpenAPI 3.1 document"}, HandleOpenApi},
    {{"GET", "/api/v1/domains", "Policy domains with reports"}, HandleDomains},
    {{"GET", "/api/v1/summary", "Figures for a domain and period"}, HandleSummary},
    {{"GET", "/api/v1/timeseries", "Figures per day, week or month"}, HandleTimeseries},
    {{"GET", "/api/v1/sources", "Sending source IPs with their figures"}, HandleSources},
    {{"GET", "/api/v1/sources/{ip}/records", "The records behind one source IP"},
     HandleSourceRecords},
    {{"GET", "/api/v1/reporters", "Reporting organisations"}, HandleReporters},
    {{"GET", "/api/v1/policy", "Published policies as reporters saw them"}, HandlePolicy},
    {{"GET", "/api/v1/reports", "Aggregate reports"}, HandleReports},
    {{"POST", "/api/v1/reports", "Upload reports (bearer token of scope ingest or admin)"},
     nullptr},
    {{"GET", "/api/v1/reports/{id}", "One aggregate report with its records"}, HandleReport},
    {{"GET", "/api/v1/reports/{id}/raw", "The envelope a report came in, as received"}, HandleRaw},
    {{"GET", "/api/v1/rejected", "Input that held no storable report"}, HandleRejected},
    {{"GET", "/api/v1/failure-reports", "Failure (forensic) reports"}, HandleFailure},
    {{"GET", "/api/v1/failure-reports/{id}", "One failure report"}, HandleFailure},
};

// The decoded path segments of `path` when it matches `pattern`.
std::optional<std::vector<std::string>> Match(std::string_view pattern,
                                              const std::vector<std::string>& path) {
  std::vector<std::string> values;
  size_t index = 0;
  size_t start = 1;  // past the leading '/'
  while (start <= pattern.size()) {
    size_t end = pattern.find('/', start);
    if (end == std::string_view::npos) end = pattern.size();
    const std::string_view piece = pattern.substr(start, end - start);
    if (index >= path.size()) return std::nullopt;
    if (!piece.empty() && piece.front() == '{') {
      if (path[index].empty()) return std::nullopt;
      values.push_back(path[index]);
    } else if (piece != path[index]) {
      return std::nullopt;
    }
    ++index;
    start = end + 1;
  }
  if (index != path.size()) return std::nullopt;
  return values;
}

std::vector<std::string> Segments(const boost::urls::url_view& url) {
  std::vector<std::string> segments;
  for (auto segment : url.segments()) segments.emplace_back(segment);
  return segments;
}

}  // namespace

Api::Api(ReaderPool& readers, IngestQueue* queue, TokenCheck tokens, ApiOptions options)
    : readers_(readers), queue_(queue), tokens_(std::move(tokens)), options_(std::move(options)) {}

HttpResponse Api::ErrorResponse(int status, std::string_view code, std::string_view message) {
  json::object error{{"code", code}, {"message", message}};
  return JsonResponse(status, json::object{{"error", std::move(error)}});
}

std::span<const RouteInfo> Api::Routes() {
  static const std::vector<RouteInfo> routes = [] {
    std::vector<RouteInfo> out;
    for (const RouteEntry& entry : kRouteTable) out.push_back(entry.info);
    return out;
  }();
  return routes;
}

std::string Api::RouteName(std::string_view method, std::string_view path) {
  static_cast<void>(method);
  const std::string_view bare = path.substr(0, path.find('?'));
  auto parsed = boost::urls::parse_origin_form(bare);
  if (!parsed) return "other";
  const std::vector<std::string> segments = Segments(*parsed);
  for (const RouteEntry& entry : kRouteTable) {
    if (Match(entry.info.pattern, segments)) return std::string(entry.info.pattern);
  }
  if (bare.rfind("/api/", 0) != 0 && web::FindAsset(std::string(parsed->path())) != nullptr) {
    return "static";
  }
  return "other";
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

HttpResponse Api::Healthz() const {
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
  // A writer that could not commit its last envelope (a full or locked
  // database) leaves reads working: degraded rather than failing.
  const std::optional<Error> writer_fault =
      queue_ != nullptr ? queue_->WriterFault() : std::nullopt;
  if (queue_ != nullptr) {
    checks["writer"] = writer_fault ? "failing: " + writer_fault->ToString() : "ok";
  }
  const char* status = !ok ? "failing" : writer_fault ? "degraded" : "ok";
  return JsonResponse(ok && !writer_fault ? 200 : 503,
                      json::object{{"status", status}, {"checks", std::move(checks)}});
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

  // The route for this path and method, and every method the path takes
  // for a 405's Allow (RFC 9110 section 10.2.1); HEAD goes with GET.
  const std::vector<std::string> segments = Segments(url);
  const RouteEntry* found = nullptr;
  std::vector<std::string> values;
  bool takes_get = false;
  bool takes_post = false;
  for (const RouteEntry& entry : kRouteTable) {
    auto matched = Match(entry.info.pattern, segments);
    if (!matched) continue;
    const bool get = entry.info.method == "GET";
    takes_get = takes_get || get;
    takes_post = takes_post || !get;
    if (found == nullptr &&
        (entry.info.method == request.method || (get && request.method == "HEAD"))) {
      found = &entry;
      values = std::move(*matched);
    }
  }

  if (found != nullptr) {
    if (found->handler != nullptr) {
      const RouteContext context{request, url, std::move(values), readers_, options_};
      return reply(found->handler(context));
    }
    if (found->info.method == "POST") return Upload(request, respond);
    return reply(Healthz());
  }
  if (takes_get || takes_post) {
    std::string allow = takes_get ? "GET, HEAD" : "";
    if (takes_post) allow += allow.empty() ? "POST" : ", POST";
    return reply(MethodNotAllowed(allow));
  }
  if (path.rfind("/api/", 0) == 0) {
    return reply(ErrorResponse(404, ErrorCodeName(ErrorCode::kNotFound), "no such endpoint"));
  }

  auto reply_page = [&reply](HttpResponse response) {
    response.extra_headers.emplace_back("Content-Security-Policy", kDashboardPolicy);
    reply(std::move(response));
  };
  if (!IsRead(request.method)) return reply_page(MethodNotAllowed("GET, HEAD"));
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
