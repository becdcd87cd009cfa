#include "server/failure_api.hpp"

#include <boost/json.hpp>
#include <boost/url.hpp>
#include <charconv>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "server/api_params.hpp"
#include "server/csv.hpp"
#include "server/iso_time.hpp"
#include "storage/failure_reader.hpp"

namespace dmarcd::server {
namespace {

namespace json = boost::json;

constexpr std::string_view kPath = "/api/v1/failure-reports";

HttpResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  HttpResponse response;
  response.status = status;
  json::object error{{"code", code}, {"message", message}};
  response.body = json::serialize(json::object{{"error", std::move(error)}});
  return response;
}

HttpResponse FromError(const Error& error) {
  int status = 500;
  if (error.code == ErrorCode::kNotFound) status = 404;
  if (error.code == ErrorCode::kInvalidArgument) status = 400;
  if (IsTransient(error.code)) status = 503;
  HttpResponse response = ErrorResponse(status, ErrorCodeName(error.code), error.message);
  if (status == 503) response.extra_headers.emplace_back("Retry-After", "5");
  return response;
}

struct Query {
  storage::FailureFilter filter;
  storage::PageRequest page{kDefaultLimit, 0};
  bool csv = false;
};

bool WantsCsv(const HttpRequest& request) {
  auto accept = request.headers.find("accept");
  return accept != request.headers.end() && accept->second.find("text/csv") != std::string::npos;
}

Result<Query> ParseQuery(const HttpRequest& request, const boost::urls::url_view& url,
                         const std::set<std::string>& allowed) {
  Query query;
  query.csv = WantsCsv(request);
  // Every failure route also takes format=csv|json.
  std::set<std::string> names = allowed;
  names.insert("format");
  std::set<std::string> seen;
  for (const auto& param : url.params()) {
    const std::string key(param.key);
    const std::string value(param.value);
    auto accepted = AcceptParam(key, value, names, seen);
    if (!accepted) return tl::unexpected(accepted.error());
    if (!*accepted) continue;
    if (key == "format") {
      if (value != "csv" && value != "json") {
        return MakeError(ErrorCode::kInvalidArgument, "parameter 'format': expected csv or json");
      }
      query.csv = value == "csv";
    } else if (key == "domain") {
      query.filter.domain = LowerDomain(value);
    } else if (key == "from" || key == "to") {
      auto time = ParseTimeParam(key, value);
      if (!time) return tl::unexpected(time.error());
      (key == "from" ? query.filter.from : query.filter.to) = *time;
    } else if (key == "source_ip") {
      auto ip = ParseIpParam(key, value);
      if (!ip) return tl::unexpected(ip.error());
      query.filter.source_ip = std::move(*ip);
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

json::object RowJson(const storage::FailureRow& row, bool detail) {
  const parser::FailureReport& r = row.report;
  json::object o;
  o["id"] = row.id;
  o["domain"] = row.domain;
  o["format"] = r.format == parser::FailureFormat::kArf ? "arf" : "non_standard";
  o["arrived_at"] = FormatIsoTime(row.arrived_at);
  o["received_at"] = FormatIsoTime(row.received_at);
  o["feedback_type"] = r.feedback_type;
  o["source_ip"] = OptString(r.source_ip);
  o["source_ip_comment"] = OptString(r.source_ip_comment);
  o["auth_failure"] = StringArray(r.auth_failure);
  o["identity_alignment"] = StringArray(r.identity_alignment);
  o["delivery_result"] = OptString(r.delivery_result);
  o["reported_domain"] = StringArray(r.reported_domain);
  o["original_mail_from"] = OptString(r.original_mail_from);
  o["original_rcpt_to"] = StringArray(r.original_rcpt_to);
  o["from"] = OptString(r.from);
  o["to"] = OptString(r.to);
  o["subject"] = OptString(r.subject);
  o["date"] = OptString(r.date);
  o["message_id"] = OptString(r.message_id);
  o["user_agent"] = OptString(r.user_agent);
  o["version"] = OptString(r.version);
  o["arrival_date"] = r.arrival_date ? json::value(FormatIsoTime(*r.arrival_date)) : nullptr;
  o["arrival_date_text"] = OptString(r.arrival_date_text);
  o["reporting_mta"] = OptString(r.reporting_mta);
  o["incidents"] = r.incidents ? json::value(*r.incidents) : nullptr;
  o["original_envelope_id"] = OptString(r.original_envelope_id);
  o["authentication_results"] = StringArray(r.authentication_results);
  o["reported_uri"] = StringArray(r.reported_uri);
  o["dkim_domain"] = OptString(r.dkim_domain);
  o["dkim_identity"] = OptString(r.dkim_identity);
  o["dkim_selector"] = OptString(r.dkim_selector);
  o["dkim_canonicalized_header"] = OptString(r.dkim_canonicalized_header);
  o["dkim_canonicalized_body"] = OptString(r.dkim_canonicalized_body);
  o["spf_dns"] = OptString(r.spf_dns);
  o["returned_part_type"] = OptString(r.returned_part_type);
  o["sample_kept"] = row.sample_kept;
  o["local_parts_redacted"] = row.local_parts_redacted;
  o["warnings"] = StringArray(r.warnings);
  o["origin"] = row.origin;
  if (detail) {
    o["fields"] = StringArray(r.fields);
    o["headers"] = r.headers;
    o["body"] = OptString(r.body);
  }
  return o;
}

std::string Joined(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& value : values) out += (out.empty() ? "" : " ") + value;
  return out;
}

std::vector<std::string> CsvHeader(bool detail) {
  std::vector<std::string> names = {"id",
                                    "arrived_at",
                                    "domain",
                                    "format",
                                    "feedback_type",
                                    "source_ip",
                                    "auth_failure",
                                    "identity_alignment",
                                    "delivery_result",
                                    "from",
                                    "subject",
                                    "message_id",
                                    "original_mail_from",
                                    "original_rcpt_to",
                                    "reported_domain",
                                    "user_agent",
                                    "received_at"};
  if (detail) {
    for (const char* name : {"authentication_results", "dkim_domain", "dkim_selector", "spf_dns",
                             "returned_part_type", "sample_kept", "headers"}) {
      names.emplace_back(name);
    }
  }
  return names;
}

std::vector<std::string> FailureCells(const storage::FailureRow& row, bool detail) {
  const parser::FailureReport& r = row.report;
  std::vector<std::string> cells = {
      std::to_string(row.id),
      FormatIsoTime(row.arrived_at),
      row.domain,
      r.format == parser::FailureFormat::kArf ? "arf" : "non_standard",
      r.feedback_type,
      r.source_ip.value_or(""),
      Joined(r.auth_failure),
      Joined(r.identity_alignment),
      r.delivery_result.value_or(""),
      r.from.value_or(""),
      r.subject.value_or(""),
      r.message_id.value_or(""),
      r.original_mail_from.value_or(""),
      Joined(r.original_rcpt_to),
      Joined(r.reported_domain),
      r.user_agent.value_or(""),
      FormatIsoTime(row.received_at)};
  if (detail) {
    std::string results;
    for (const std::string& line : r.authentication_results) {
      results += (results.empty() ? "" : "\n") + line;
    }
    cells.push_back(results);
    cells.push_back(r.dkim_domain.value_or(""));
    cells.push_back(r.dkim_selector.value_or(""));
    cells.push_back(r.spf_dns.value_or(""));
    cells.push_back(r.returned_part_type.value_or(""));
    cells.push_back(row.sample_kept);
    cells.push_back(r.headers);
  }
  return cells;
}

HttpResponse CsvResponse(const std::vector<storage::FailureRow>& rows, bool detail) {
  std::string body = CsvRow(CsvHeader(detail));
  for (const auto& row : rows) body += CsvRow(FailureCells(row, detail));
  HttpResponse response;
  response.content_type = "text/csv; charset=utf-8";
  response.body = std::move(body);
  return response;
}

HttpResponse JsonResponse(const json::value& body) {
  HttpResponse response;
  response.body = json::serialize(body);
  return response;
}

}  // namespace

std::optional<HttpResponse> HandleFailureReports(const HttpRequest& request, ReaderPool& readers) {
  auto parsed = boost::urls::parse_origin_form(request.target);
  if (!parsed) return std::nullopt;
  const std::string path = parsed->path();
  const bool list = path == kPath;
  const bool detail = path.starts_with(std::string(kPath) + "/");
  if (!list && !detail) return std::nullopt;
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse response = ErrorResponse(405, "method_not_allowed", "allowed: GET, HEAD");
    response.extra_headers.emplace_back("Allow", "GET, HEAD");
    return response;
  }

  if (list) {
    auto query =
        ParseQuery(request, *parsed, {"domain", "from", "to", "source_ip", "limit", "offset"});
    if (!query) return FromError(query.error());
    auto lease = readers.Acquire();
    storage::FailureReader reader(lease.Database());
    auto page = reader.List(query->filter, query->page);
    if (!page) return FromError(page.error());
    if (query->csv) return CsvResponse(page->items, false);
    json::array items;
    for (const auto& row : page->items) items.emplace_back(RowJson(row, false));
    return JsonResponse(json::object{{"items", std::move(items)},
                                     {"total", page->total},
                                     {"limit", query->page.limit},
                                     {"offset", query->page.offset}});
  }

  auto query = ParseQuery(request, *parsed, {});
  if (!query) return FromError(query.error());
  const std::string id_text = path.substr(kPath.size() + 1);
  int64_t id = 0;
  auto [ptr, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc() || ptr != id_text.data() + id_text.size() || id <= 0) {
    return ErrorResponse(404, ErrorCodeName(ErrorCode::kNotFound),
                         "no failure report with id '" + id_text + "'");
  }
  auto lease = readers.Acquire();
  storage::FailureReader reader(lease.Database());
  auto row = reader.Get(id);
  if (!row) return FromError(row.error());
  if (query->csv) return CsvResponse({*row}, true);
  return JsonResponse(RowJson(*row, true));
}

}  // namespace dmarcd::server
