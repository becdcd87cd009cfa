#include "storage/reader.hpp"

#include <algorithm>
#include <utility>
#include <variant>

#include "storage/ascii.hpp"
#include "storage/day_shares.hpp"
#include "storage/statement.hpp"

namespace dmarcd::storage {
namespace {

// A WHERE clause and its parameters, built from a TimeFilter.
struct Where {
  std::string sql;
  std::vector<std::variant<int64_t, std::string>> params;

  void Add(std::string_view condition) {
    sql += sql.empty() ? "WHERE " : " AND ";
    sql += condition;
  }
  void BindTo(Statement& statement, int first) const {
    for (size_t i = 0; i < params.size(); ++i) {
      const int index = first + static_cast<int>(i);
      if (const auto* number = std::get_if<int64_t>(&params[i])) {
        statement.Bind(index, *number);
      } else {
        statement.Bind(index, std::string_view(std::get<std::string>(params[i])));
      }
    }
  }
};

// Reports whose [begin, end) overlaps [from, to). A report with end == begin
// covers the instant begin (it belongs to that day, as in SplitOverDays).
Where ReportWhere(const TimeFilter& filter) {
  Where where;
  if (filter.domain) {
    where.Add("domain = ?");
    where.params.emplace_back(AsciiLower(*filter.domain));
  }
  if (filter.to) {
    where.Add("date_begin < ?");
    where.params.emplace_back(*filter.to);
  }
  if (filter.from) {
    where.Add("(date_end > ? OR (date_end = date_begin AND date_begin >= ?))");
    where.params.emplace_back(*filter.from);
    where.params.emplace_back(*filter.from);
  }
  return where;
}

// Days [day, day + 86400) that overlap [from, to).
Where DayWhere(const TimeFilter& filter) {
  Where where;
  if (filter.domain) {
    where.Add("domain = ?");
    where.params.emplace_back(AsciiLower(*filter.domain));
  }
  if (filter.to) {
    where.Add("day < ?");
    where.params.emplace_back(*filter.to);
  }
  if (filter.from) {
    where.Add("day > ?");
    where.params.emplace_back(*filter.from - kSecondsPerDay);
  }
  return where;
}

constexpr const char* kFigureSums =
    "COALESCE(SUM(messages), 0), COALESCE(SUM(dmarc_pass), 0), "
    "COALESCE(SUM(dkim_aligned_pass), 0), COALESCE(SUM(spf_aligned_pass), 0), "
    "COALESCE(SUM(disposition_none), 0), COALESCE(SUM(disposition_quarantine), 0), "
    "COALESCE(SUM(disposition_reject), 0)";

Figures ReadFigures(const Statement& row, int first) {
  Figures figures;
  figures.messages = row.Uint(first);
  figures.dmarc_pass = row.Uint(first + 1);
  figures.dkim_aligned_pass = row.Uint(first + 2);
  figures.spf_aligned_pass = row.Uint(first + 3);
  figures.disposition_none = row.Uint(first + 4);
  figures.disposition_quarantine = row.Uint(first + 5);
  figures.disposition_reject = row.Uint(first + 6);
  return figures;
}

// Runs `statement` to the end, calling `each` on every row.
template <typename Each>
Result<void> ForEachRow(Statement& statement, Each&& each) {
  for (;;) {
    auto row = statement.Step();
    if (!row) {
      return tl::unexpected(row.error());
    }
    if (!*row) {
      statement.Reset();
      return {};
    }
    each(statement);
  }
}

}  // namespace

class Reader::Impl {
 public:
  explicit Impl(Database& db) : db_(db) {}

  Result<Statement> Prepare(std::string_view sql) { return Statement::Prepare(db_.Handle(), sql); }

  Result<std::vector<std::string>> Notes(int64_t report_pk, std::string_view kind) {
    if (!notes_) {
      auto prepared =
          Prepare("SELECT text FROM report_notes WHERE report_id = ? AND kind = ? ORDER BY seq");
      if (!prepared) {
        return tl::unexpected(prepared.error());
      }
      notes_ = std::move(*prepared);
    }
    notes_->Bind(1, report_pk).Bind(2, kind);
    std::vector<std::string> texts;
    auto done = ForEachRow(*notes_, [&](const Statement& row) { texts.push_back(row.Text(0)); });
    notes_->Reset();
    if (!done) {
      return tl::unexpected(done.error());
    }
    return texts;
  }

  Database& db_;
  std::optional<Statement> notes_;
};

Reader::Reader(Database& db) : impl_(std::make_unique<Impl>(db)) {}

Reader::~Reader() = default;

Result<std::vector<DomainRow>> Reader::Domains() {
  auto query = impl_->Prepare(
      "SELECT domain, COUNT(*), COALESCE(SUM(messages), 0), MIN(date_begin), MAX(date_end) "
      "FROM reports GROUP BY domain ORDER BY domain");
  if (!query) {
    return tl::unexpected(query.error());
  }
  std::vector<DomainRow> domains;
  auto done = ForEachRow(*query, [&](const Statement& row) {
    domains.push_back(DomainRow{row.Text(0), row.Int(1), row.Uint(2), row.Int(3), row.Int(4)});
  });
  if (!done) {
    return tl::unexpected(done.error());
  }
  return domains;
}

Result<Page<ReportRow>> Reader::Reports(const TimeFilter& filter, const PageRequest& page) {
  const Where where = ReportWhere(filter);
  Page<ReportRow> result;

  auto count = impl_->Prepare("SELECT COUNT(*) FROM reports " + where.sql);
  if (!count) {
    return tl::unexpected(count.error());
  }
  where.BindTo(*count, 1);
  auto counted = ForEachRow(*count, [&](const Statement& row) { result.total = row.Int(0); });
  if (!counted) {
    return tl::unexpected(counted.error());
  }

  auto list = impl_->Prepare(
      "SELECT id, org_name, org_email, report_id, domain, date_begin, date_end, records, "
      "messages, received_at, origin FROM reports " +
      where.sql + " ORDER BY date_begin DESC, id DESC LIMIT ? OFFSET ?");
  if (!list) {
    return tl::unexpected(list.error());
  }
  where.BindTo(*list, 1);
  const int next = static_cast<int>(where.params.size()) + 1;
  list->Bind(next, std::max<int64_t>(page.limit, 0))
      .Bind(next + 1, std::max<int64_t>(page.offset, 0));
  auto listed = ForEachRow(*list, [&](const Statement& row) {
    ReportRow report;
    report.id = row.Int(0);
    report.org_name = row.Text(1);
    report.org_email = row.OptionalText(2);
    report.report_id = row.Text(3);
    report.domain = row.Text(4);
    report.begin = row.Int(5);
    report.end = row.Int(6);
    report.records = row.Uint(7);
    report.messages = row.Uint(8);
    report.received_at = row.Int(9);
    report.origin = row.Text(10);
    result.items.push_back(std::move(report));
  });
  if (!listed) {
    return tl::unexpected(listed.error());
  }

  for (ReportRow& report : result.items) {
    auto warnings = impl_->Notes(report.id, "warning");
    if (!warnings) {
      return tl::unexpected(warnings.error());
    }
    report.warnings = std::move(*warnings);
  }
  return result;
}

Result<ReportDetail> Reader::Report(int64_t id) {
  auto query = impl_->Prepare(
      "SELECT id, org_name, org_email, report_id, domain, date_begin, date_end, records, "
      "messages, received_at, origin, extra_contact_info, version, namespace, generator, "
      "policy_adkim, policy_aspf, policy_p, policy_sp, policy_np, policy_pct, policy_fo, "
      "policy_testing, policy_discovery_method FROM reports WHERE id = ?");
  if (!query) {
    return tl::unexpected(query.error());
  }
  auto found = query->Bind(1, id).Step();
  if (!found) {
    return tl::unexpected(found.error());
  }
  if (!*found) {
    return MakeError(ErrorCode::kNotFound, "no report with id " + std::to_string(id));
  }

  ReportDetail detail;
  ReportRow& report = detail.report;
  report.id = query->Int(0);
  report.org_name = query->Text(1);
  report.org_email = query->OptionalText(2);
  report.report_id = query->Text(3);
  report.domain = query->Text(4);
  report.begin = query->Int(5);
  report.end = query->Int(6);
  report.records = query->Uint(7);
  report.messages = query->Uint(8);
  report.received_at = query->Int(9);
  report.origin = query->Text(10);

  parser::AggregateHeader& header = detail.header;
  header.org_name = report.org_name;
  header.email = report.org_email;
  header.extra_contact_info = query->OptionalText(11);
  header.report_id = report.report_id;
  header.begin = report.begin;
  header.end = report.end;
  header.version = query->OptionalText(12);
  header.xml_namespace = query->OptionalText(13);
  header.generator = query->OptionalText(14);
  header.policy.domain = report.domain;
  header.policy.adkim = query->OptionalText(15);
  header.policy.aspf = query->OptionalText(16);
  header.policy.p = query->OptionalText(17);
  header.policy.sp = query->OptionalText(18);
  header.policy.np = query->OptionalText(19);
  if (auto pct = query->OptionalInt(20)) {
    header.policy.pct = static_cast<int>(*pct);
  }
  header.policy.fo = query->OptionalText(21);
  header.policy.testing = query->OptionalText(22);
  header.policy.discovery_method = query->OptionalText(23);

  auto errors = impl_->Notes(id, "error");
  auto warnings = impl_->Notes(id, "warning");
  if (!errors || !warnings) {
    return tl::unexpected(!errors ? errors.error() : warnings.error());
  }
  header.errors = std::move(*errors);
  report.warnings = std::move(*warnings);

  // Records, then each kind of child row in one pass over the report, all in
  // document order (seq), so a report of millions of records costs four
  // queries rather than one per record.
  auto records = impl_->Prepare(
      "SELECT seq, source_ip, count, disposition, policy_dkim, policy_spf, header_from, "
      "envelope_from, envelope_to FROM records WHERE report_id = ? ORDER BY seq");
  if (!records) {
    return tl::unexpected(records.error());
  }
  std::vector<parser::AggregateRecord>& out = detail.records;
  records->Bind(1, id);
  auto listed = ForEachRow(*records, [&](const Statement& row) {
    parser::AggregateRecord record;
    record.source_ip = row.Text(1);
    record.count = row.Uint(2);
    record.disposition = row.OptionalText(3);
    record.policy_dkim = row.OptionalText(4);
    record.policy_spf = row.OptionalText(5);
    record.header_from = row.OptionalText(6);
    record.envelope_from = row.OptionalText(7);
    record.envelope_to = row.OptionalText(8);
    out.push_back(std::move(record));
  });
  if (!listed) {
    return tl::unexpected(listed.error());
  }

  auto at = [&out](int64_t seq) -> parser::AggregateRecord* {
    return seq >= 0 && static_cast<size_t>(seq) < out.size() ? &out[static_cast<size_t>(seq)]
                                                             : nullptr;
  };
  auto reasons = impl_->Prepare(
      "SELECT r.seq, x.type, x.comment FROM record_reasons x JOIN records r ON r.id = x.record_id "
      "WHERE r.report_id = ? ORDER BY r.seq, x.seq");
  auto dkim = impl_->Prepare(
      "SELECT r.seq, x.domain, x.selector, x.result, x.human_result FROM dkim_results x "
      "JOIN records r ON r.id = x.record_id WHERE r.report_id = ? ORDER BY r.seq, x.seq");
  auto spf = impl_->Prepare(
      "SELECT r.seq, x.domain, x.scope, x.result, x.human_result FROM spf_results x "
      "JOIN records r ON r.id = x.record_id WHERE r.report_id = ? ORDER BY r.seq, x.seq");
  if (!reasons || !dkim || !spf) {
    return tl::unexpected(!reasons ? reasons.error() : !dkim ? dkim.error() : spf.error());
  }
  reasons->Bind(1, id);
  dkim->Bind(1, id);
  spf->Bind(1, id);
  auto read_reasons = ForEachRow(*reasons, [&](const Statement& row) {
    if (auto* record = at(row.Int(0))) {
      record->reasons.push_back(parser::PolicyOverride{row.OptionalText(1), row.OptionalText(2)});
    }
  });
  auto read_dkim = ForEachRow(*dkim, [&](const Statement& row) {
    if (auto* record = at(row.Int(0))) {
      record->dkim.push_back(parser::DkimAuthResult{row.OptionalText(1), row.OptionalText(2),
                                                    row.Text(3), row.OptionalText(4)});
    }
  });
  auto read_spf = ForEachRow(*spf, [&](const Statement& row) {
    if (auto* record = at(row.Int(0))) {
      record->spf.push_back(parser::SpfAuthResult{row.OptionalText(1), row.OptionalText(2),
                                                  row.Text(3), row.OptionalText(4)});
    }
  });
  if (!read_reasons || !read_dkim || !read_spf) {
    return tl::unexpected(!read_reasons ? read_reasons.error()
                          : !read_dkim  ? read_dkim.error()
                                        : read_spf.error());
  }
  return detail;
}

Result<Figures> Reader::Summary(const TimeFilter& filter) {
  const Where where = DayWhere(filter);
  auto query =
      impl_->Prepare(std::string("SELECT ") + kFigureSums + " FROM report_days " + where.sql);
  if (!query) {
    return tl::unexpected(query.error());
  }
  where.BindTo(*query, 1);
  Figures figures;
  auto done = ForEachRow(*query, [&](const Statement& row) { figures = ReadFigures(row, 0); });
  if (!done) {
    return tl::unexpected(done.error());
  }
  return figures;
}

Result<std::vector<DayFigures>> Reader::Timeseries(const TimeFilter& filter) {
  const Where where = DayWhere(filter);
  auto query = impl_->Prepare(std::string("SELECT day, ") + kFigureSums + " FROM report_days " +
                              where.sql + " GROUP BY day ORDER BY day");
  if (!query) {
    return tl::unexpected(query.error());
  }
  where.BindTo(*query, 1);
  std::vector<DayFigures> days;
  auto done = ForEachRow(*query, [&](const Statement& row) {
    days.push_back(DayFigures{row.Int(0), ReadFigures(row, 1)});
  });
  if (!done) {
    return tl::unexpected(done.error());
  }
  return days;
}

Result<Page<RejectedRow>> Reader::Rejected(const PageRequest& page) {
  Page<RejectedRow> result;
  auto count = impl_->Prepare("SELECT COUNT(*) FROM rejected");
  if (!count) {
    return tl::unexpected(count.error());
  }
  auto counted = ForEachRow(*count, [&](const Statement& row) { result.total = row.Int(0); });
  if (!counted) {
    return tl::unexpected(counted.error());
  }

  auto list = impl_->Prepare(
      "SELECT id, received_at, origin, name, code, message, size, sha256, "
      "recovered_at IS NOT NULL FROM rejected ORDER BY received_at DESC, id DESC "
      "LIMIT ? OFFSET ?");
  if (!list) {
    return tl::unexpected(list.error());
  }
  list->Bind(1, std::max<int64_t>(page.limit, 0)).Bind(2, std::max<int64_t>(page.offset, 0));
  auto listed = ForEachRow(*list, [&](const Statement& row) {
    RejectedRow rejected;
    rejected.id = row.Int(0);
    rejected.received_at = row.Int(1);
    rejected.origin = row.Text(2);
    rejected.name = row.Text(3);
    rejected.code = row.Text(4);
    rejected.message = row.Text(5);
    rejected.size = row.Uint(6);
    rejected.sha256 = row.Text(7);
    rejected.recovered = row.Int(8) != 0;
    result.items.push_back(std::move(rejected));
  });
  if (!listed) {
    return tl::unexpected(listed.error());
  }
  return result;
}

}  // namespace dmarcd::storage
