#include "storage/failure_reader.hpp"

#include <algorithm>
#include <utility>
#include <variant>
#include <vector>

#include "storage/statement.hpp"

namespace dmarcd::storage {
namespace {

constexpr const char* kColumns =
    "id, domain, arrived_at, received_at, origin, sample_kept, local_parts_redacted, format, "
    "feedback_type, user_agent, version, arrival_date, arrival_date_text, reporting_mta, "
    "source_ip, source_ip_comment, incidents, original_envelope_id, original_mail_from, "
    "original_rcpt_to, reported_domain, reported_uri, authentication_results, auth_failure, "
    "identity_alignment, delivery_result, dkim_domain, dkim_identity, dkim_selector, "
    "dkim_canonicalized_header, dkim_canonicalized_body, spf_dns, returned_part_type, mail_from, "
    "mail_to, subject, mail_date, message_id, warnings";

// Lists are stored one item a line (failure_store.cpp).
std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

FailureRow ReadRow(const Statement& row) {
  FailureRow out;
  out.id = row.Int(0);
  out.domain = row.Text(1);
  out.arrived_at = row.Int(2);
  out.received_at = row.Int(3);
  out.origin = row.Text(4);
  out.sample_kept = row.Text(5);
  out.local_parts_redacted = row.Int(6) != 0;
  parser::FailureReport& r = out.report;
  r.format =
      row.Text(7) == "arf" ? parser::FailureFormat::kArf : parser::FailureFormat::kNonStandard;
  r.feedback_type = row.Text(8);
  r.user_agent = row.OptionalText(9);
  r.version = row.OptionalText(10);
  r.arrival_date = row.OptionalInt(11);
  r.arrival_date_text = row.OptionalText(12);
  r.reporting_mta = row.OptionalText(13);
  r.source_ip = row.OptionalText(14);
  r.source_ip_comment = row.OptionalText(15);
  if (auto incidents = row.OptionalInt(16)) r.incidents = static_cast<uint64_t>(*incidents);
  r.original_envelope_id = row.OptionalText(17);
  r.original_mail_from = row.OptionalText(18);
  r.original_rcpt_to = SplitLines(row.Text(19));
  r.reported_domain = SplitLines(row.Text(20));
  r.reported_uri = SplitLines(row.Text(21));
  r.authentication_results = SplitLines(row.Text(22));
  r.auth_failure = SplitLines(row.Text(23));
  r.identity_alignment = SplitLines(row.Text(24));
  r.delivery_result = row.OptionalText(25);
  r.dkim_domain = row.OptionalText(26);
  r.dkim_identity = row.OptionalText(27);
  r.dkim_selector = row.OptionalText(28);
  r.dkim_canonicalized_header = row.OptionalText(29);
  r.dkim_canonicalized_body = row.OptionalText(30);
  r.spf_dns = row.OptionalText(31);
  r.returned_part_type = row.OptionalText(32);
  r.from = row.OptionalText(33);
  r.to = row.OptionalText(34);
  r.subject = row.OptionalText(35);
  r.date = row.OptionalText(36);
  r.message_id = row.OptionalText(37);
  r.warnings = SplitLines(row.Text(38));
  return out;
}

struct Where {
  std::string sql;
  std::vector<std::variant<std::string, int64_t>> params;
};

Where FilterWhere(const FailureFilter& filter) {
  Where where;
  auto add = [&](const char* clause) {
    where.sql += where.sql.empty() ? " WHERE " : " AND ";
    where.sql += clause;
  };
  if (filter.domain) {
    add("domain = ?");
    where.params.emplace_back(*filter.domain);
  }
  if (filter.from) {
    add("arrived_at >= ?");
    where.params.emplace_back(*filter.from);
  }
  if (filter.to) {
    add("arrived_at < ?");
    where.params.emplace_back(*filter.to);
  }
  if (filter.source_ip) {
    add("source_ip = ?");
    where.params.emplace_back(*filter.source_ip);
  }
  return where;
}

void BindWhere(const Where& where, Statement& statement) {
  int index = 1;
  for (const auto& param : where.params) {
    if (const auto* text = std::get_if<std::string>(&param)) {
      statement.Bind(index++, std::string_view(*text));
    } else {
      statement.Bind(index++, std::get<int64_t>(param));
    }
  }
}

}  // namespace

Result<Page<FailureRow>> FailureReader::List(const FailureFilter& filter, const PageRequest& page) {
  const Where where = FilterWhere(filter);
  Page<FailureRow> result;
  auto count = Statement::Prepare(db_.Handle(), "SELECT COUNT(*) FROM failure_reports" + where.sql);
  if (!count) return tl::unexpected(count.error());
  BindWhere(where, *count);
  auto counted = count->Step();
  if (!counted) return tl::unexpected(counted.error());
  result.total = *counted ? count->Int(0) : 0;

  auto list = Statement::Prepare(db_.Handle(), std::string("SELECT ") + kColumns +
                                                   " FROM failure_reports" + where.sql +
                                                   " ORDER BY arrived_at DESC, id DESC LIMIT ? "
                                                   "OFFSET ?");
  if (!list) return tl::unexpected(list.error());
  BindWhere(where, *list);
  const int next = static_cast<int>(where.params.size()) + 1;
  list->Bind(next, std::max<int64_t>(page.limit, 0))
      .Bind(next + 1, std::max<int64_t>(page.offset, 0));
  for (;;) {
    auto row = list->Step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    result.items.push_back(ReadRow(*list));
  }
  return result;
}

Result<FailureRow> FailureReader::Get(int64_t id) {
  auto get = Statement::Prepare(db_.Handle(), std::string("SELECT ") + kColumns +
                                                  ", fields, headers, body FROM failure_reports "
                                                  "WHERE id = ?");
  if (!get) return tl::unexpected(get.error());
  get->Bind(1, id);
  auto row = get->Step();
  if (!row) return tl::unexpected(row.error());
  if (!*row)
    return MakeError(ErrorCode::kNotFound, "no failure report with id " + std::to_string(id));
  FailureRow out = ReadRow(*get);
  out.report.fields = SplitLines(get->Text(39));
  out.report.headers = get->Text(40);
  if (!get->IsNull(41)) out.report.body = get->Blob(41);
  return out;
}

}  // namespace dmarcd::storage
