#include "storage/reader.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <set>
#include <utility>
#include <variant>

#include "parser/byte_sink.hpp"
#include "parser/gzip_inflater.hpp"
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

constexpr const char* kAllDomains = "domain IN (SELECT domain FROM domain_days GROUP BY domain)";

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

// DayWhere for the roll-up tables, whose keys lead with the domain: with no
// domain asked, the domains are listed so that SQLite still seeks by key
// (one range per domain) rather than reading the whole table.
Where RollupWhere(const TimeFilter& filter) {
  Where where;
  if (!filter.domain) where.Add(kAllDomains);
  const Where days = DayWhere(filter);
  if (!days.sql.empty())
    where.Add(std::string_view(days.sql).substr(std::string_view("WHERE ").size()));
  where.params = days.params;
  return where;
}

constexpr const char* kFigureSums =
    "COALESCE(SUM(messages), 0), COALESCE(SUM(dmarc_pass), 0), "
    "COALESCE(SUM(dkim_aligned_pass), 0), COALESCE(SUM(spf_aligned_pass), 0), "
    "COALESCE(SUM(disposition_none), 0), COALESCE(SUM(disposition_quarantine), 0), "
    "COALESCE(SUM(disposition_reject), 0)";

// A source's names over the rows of a GROUP BY: each row's names column
// (migration 0005, a JSON array), joined by a byte JSON never leaves bare.
constexpr const char* kNameLists = "group_concat(names, char(31))";

// Appends code point `code` (from \\uXXXX, so below 0x10000) as UTF-8.
void AppendUtf8(uint32_t code, std::string& out) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xc0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3f));
  } else {
    out += static_cast<char>(0xe0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (code & 0x3f));
  }
}

// Adds the "kind:name" strings of `lists` (kNameLists) to the source's
// header_from, DKIM and SPF domains, each sorted and once. The arrays are
// dmarcd's own or SQLite's json_group_array: strings, escaped as JSON.
void AddNames(std::string_view lists, SourceRow& source) {
  std::set<std::string> entries;
  for (size_t i = lists.find('"'); i != std::string_view::npos; i = lists.find('"', i)) {
    std::string text;
    for (++i; i < lists.size() && lists[i] != '"'; ++i) {
      if (lists[i] != '\\' || i + 1 >= lists.size()) {
        text += lists[i];
        continue;
      }
      const char escaped = lists[++i];
      switch (escaped) {
        case 'b':
          text += '\b';
          break;
        case 'f':
          text += '\f';
          break;
        case 'n':
          text += '\n';
          break;
        case 'r':
          text += '\r';
          break;
        case 't':
          text += '\t';
          break;
        case 'u': {
          uint32_t code = 0;
          const std::string_view hex = lists.substr(i + 1, 4);
          for (const char h : hex) {
            code = code * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h))
                                                         ? h - '0'
                                                         : (std::tolower(h) - 'a' + 10) & 0xf);
          }
          i += hex.size();
          AppendUtf8(code, text);
          break;
        }
        default:
          text += escaped;
          break;
      }
    }
    ++i;  // the closing quote
    entries.insert(std::move(text));
  }
  for (const std::string& entry : entries) {
    const size_t colon = entry.find(':');
    if (colon == std::string::npos) continue;
    const std::string_view kind = std::string_view(entry).substr(0, colon);
    std::vector<std::string>& list_of = kind == "header_from" ? source.header_from
                                        : kind == "dkim"      ? source.dkim_domains
                                                              : source.spf_domains;
    list_of.push_back(entry.substr(colon + 1));
  }
}

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

// source_reports rows for `source_ip` whose report overlaps the period.
Where SourceReportWhere(const TimeFilter& filter, const std::string& source_ip) {
  Where where = ReportWhere(filter);
  if (!filter.domain) where.Add(kAllDomains);
  where.Add("source_ip = ?");
  where.params.emplace_back(source_ip);
  return where;
}

// Collects what the gzip inflater writes.
class StringSink final : public parser::ByteSink {
 public:
  explicit StringSink(std::string& out) : out_(out) {}
  Result<void> Write(std::string_view chunk) override {
    out_.append(chunk);
    return {};
  }
  bool Stopped() const override { return false; }

 private:
  std::string& out_;
};

// Runs a statement that yields one row and reads it, or none.
template <typename Read>
Result<void> ReadOne(Statement& statement, Read&& read) {
  return ForEachRow(statement, std::forward<Read>(read));
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

Result<Page<ReportRow>> Reader::Reports(const TimeFilter& filter, const PageRequest& page,
                                        const std::optional<std::string>& source_ip) {
  Where where = ReportWhere(filter);
  if (source_ip) {
    // source_reports is keyed by domain first (see RollupWhere).
    where.Add(filter.domain ? "id IN (SELECT report_id FROM source_reports WHERE domain = ? "
                              "AND source_ip = ?)"
                            : "id IN (SELECT report_id FROM source_reports WHERE " +
                                  std::string(kAllDomains) + " AND source_ip = ?)");
    if (filter.domain) where.params.emplace_back(AsciiLower(*filter.domain));
    where.params.emplace_back(*source_ip);
  }
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

Result<ReportDetail> Reader::Report(int64_t id, const std::optional<PageRequest>& records_page) {
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
  // queries rather than one per record. seq runs 0, 1, 2 ... so a page is a
  // range of seq.
  int64_t first_seq = 0;
  int64_t end_seq = std::numeric_limits<int64_t>::max();
  if (records_page) {
    first_seq = std::max<int64_t>(records_page->offset, 0);
    end_seq = first_seq + std::clamp<int64_t>(records_page->limit, 0,
                                              std::numeric_limits<int64_t>::max() - first_seq);
  }
  auto records = impl_->Prepare(
      "SELECT seq, source_ip, count, disposition, policy_dkim, policy_spf, header_from, "
      "envelope_from, envelope_to FROM records WHERE report_id = ? AND seq >= ? AND seq < ? "
      "ORDER BY seq");
  if (!records) {
    return tl::unexpected(records.error());
  }
  std::vector<parser::AggregateRecord>& out = detail.records;
  records->Bind(1, id).Bind(2, first_seq).Bind(3, end_seq);
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

  auto at = [&out, first_seq](int64_t seq) -> parser::AggregateRecord* {
    const int64_t index = seq - first_seq;
    return index >= 0 && static_cast<size_t>(index) < out.size() ? &out[static_cast<size_t>(index)]
                                                                 : nullptr;
  };
  auto reasons = impl_->Prepare(
      "SELECT r.seq, x.type, x.comment FROM record_reasons x JOIN records r ON r.id = x.record_id "
      "WHERE r.report_id = ? AND r.seq >= ? AND r.seq < ? ORDER BY r.seq, x.seq");
  auto dkim = impl_->Prepare(
      "SELECT r.seq, x.domain, x.selector, x.result, x.human_result FROM dkim_results x "
      "JOIN records r ON r.id = x.record_id WHERE r.report_id = ? AND r.seq >= ? AND r.seq < ? "
      "ORDER BY r.seq, x.seq");
  auto spf = impl_->Prepare(
      "SELECT r.seq, x.domain, x.scope, x.result, x.human_result FROM spf_results x "
      "JOIN records r ON r.id = x.record_id WHERE r.report_id = ? AND r.seq >= ? AND r.seq < ? "
      "ORDER BY r.seq, x.seq");
  if (!reasons || !dkim || !spf) {
    return tl::unexpected(!reasons ? reasons.error() : !dkim ? dkim.error() : spf.error());
  }
  reasons->Bind(1, id).Bind(2, first_seq).Bind(3, end_seq);
  dkim->Bind(1, id).Bind(2, first_seq).Bind(3, end_seq);
  spf->Bind(1, id).Bind(2, first_seq).Bind(3, end_seq);
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
  const Where where = RollupWhere(filter);
  auto query =
      impl_->Prepare(std::string("SELECT ") + kFigureSums + " FROM domain_days " + where.sql);
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
  const Where where = RollupWhere(filter);
  auto query = impl_->Prepare(std::string("SELECT day, ") + kFigureSums + " FROM domain_days " +
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

Result<RawEnvelope> Reader::Raw(int64_t id) {
  auto query = impl_->Prepare(
      "SELECT i.compression, i.bytes, i.origin, i.sha256, i.size FROM reports r "
      "JOIN raw_inputs i ON i.id = r.raw_input_id WHERE r.id = ?");
  if (!query) {
    return tl::unexpected(query.error());
  }
  auto found = query->Bind(1, id).Step();
  if (!found) {
    return tl::unexpected(found.error());
  }
  if (!*found) {
    return MakeError(ErrorCode::kNotFound, "no stored envelope for report " + std::to_string(id));
  }
  RawEnvelope raw;
  const std::string compression = query->Text(0);
  std::string stored = query->Blob(1);
  raw.origin = query->Text(2);
  raw.sha256 = query->Text(3);
  const uint64_t size = query->Uint(4);
  query->Reset();
  if (compression != "gzip") {
    raw.bytes = std::move(stored);
    return raw;
  }

  // Archived gzip-compressed (EnvelopeStore::ArchiveRaw); the size as
  // received is known, so it is the cap, and the ratio check (meant for
  // input from outside) is off for our own archive.
  parser::Limits limits;
  limits.max_inflated_bytes = size;
  limits.max_compression_ratio = 1e18;
  StringSink sink(raw.bytes);
  parser::GzipInflater inflater(sink, limits, "raw input of report " + std::to_string(id));
  if (auto written = inflater.Write(stored); !written) {
    return tl::unexpected(written.error());
  }
  if (auto finished = inflater.Finish(); !finished) {
    return tl::unexpected(finished.error());
  }
  return raw;
}

// The general path: every source of the period grouped, filtered, sorted
// and paged by SQLite.
Result<void> ListSources(sqlite3* db, const Where& where, const SourceQuery& query,
                         const PageRequest& page, Page<SourceRow>& result) {
  std::string having;
  if (query.result == SourceResult::kFail || query.result == SourceResult::kFailBoth) {
    having = " HAVING SUM(messages) > SUM(dmarc_pass)";
  } else if (query.result == SourceResult::kPass) {
    having = " HAVING SUM(messages) = SUM(dmarc_pass)";
  }
  std::string order;
  switch (query.sort) {
    case SourceSort::kFailing:
      order = "SUM(messages) - SUM(dmarc_pass) DESC, source_ip";
      break;
    case SourceSort::kMessages:
      order = "SUM(messages) DESC, source_ip";
      break;
    case SourceSort::kLastSeen:
      order = "MAX(last_seen) DESC, source_ip";
      break;
    case SourceSort::kSourceIp:
      order = "source_ip";
      break;
  }

  // COUNT(*) OVER () runs after GROUP BY and HAVING: the number of sources,
  // in the same pass as the page.
  const std::string groups = " FROM source_days " + where.sql + " GROUP BY source_ip" + having;
  auto list = Statement::Prepare(db, std::string("SELECT source_ip, ") + kFigureSums +
                                         ", MIN(first_seen), MAX(last_seen), COUNT(*) OVER ()" +
                                         groups + " ORDER BY " + order + " LIMIT ? OFFSET ?");
  if (!list) {
    return tl::unexpected(list.error());
  }
  where.BindTo(*list, 1);
  const int next = static_cast<int>(where.params.size()) + 1;
  list->Bind(next, std::max<int64_t>(page.limit, 0))
      .Bind(next + 1, std::max<int64_t>(page.offset, 0));
  auto listed = ForEachRow(*list, [&](const Statement& row) {
    SourceRow source;
    source.source_ip = row.Text(0);
    source.figures = ReadFigures(row, 1);
    source.first_seen = row.Int(8);
    source.last_seen = row.Int(9);
    result.total = row.Int(10);
    result.items.push_back(std::move(source));
  });
  if (!listed) {
    return tl::unexpected(listed.error());
  }
  if (result.items.empty() && page.offset > 0) {
    auto count = Statement::Prepare(db, "SELECT COUNT(*) FROM (SELECT source_ip" + groups + ")");
    if (!count) {
      return tl::unexpected(count.error());
    }
    where.BindTo(*count, 1);
    auto counted = ForEachRow(*count, [&](const Statement& row) { result.total = row.Int(0); });
    if (!counted) {
      return tl::unexpected(counted.error());
    }
  }

  return {};
}

// The page of failing sources in failing order, read from the rows that
// hold failures only (a fraction of a busy domain's rows), with the number
// of failing sources; nullopt when the page is not whole (the caller then
// takes the general path).
Result<std::optional<std::pair<std::vector<std::string>, int64_t>>> FailingPage(
    sqlite3* db, const Where& where, const PageRequest& page) {
  Where failing = where;
  failing.Add("messages > dmarc_pass");
  auto list =
      Statement::Prepare(db, "SELECT source_ip, COUNT(*) OVER () FROM source_days " + failing.sql +
                                 " GROUP BY source_ip ORDER BY SUM(messages - dmarc_pass) DESC, "
                                 "source_ip LIMIT ? OFFSET ?");
  if (!list) {
    return tl::unexpected(list.error());
  }
  failing.BindTo(*list, 1);
  const int next = static_cast<int>(failing.params.size()) + 1;
  list->Bind(next, std::max<int64_t>(page.limit, 0))
      .Bind(next + 1, std::max<int64_t>(page.offset, 0));
  std::vector<std::string> ips;
  int64_t total = 0;
  auto listed = ForEachRow(*list, [&](const Statement& row) {
    ips.push_back(row.Text(0));
    total = row.Int(1);
  });
  if (!listed) {
    return tl::unexpected(listed.error());
  }
  if (ips.empty()) {
    return std::nullopt;
  }
  return std::make_pair(std::move(ips), total);
}

Result<Page<SourceRow>> Reader::Sources(const TimeFilter& filter, const SourceQuery& query,
                                        const PageRequest& page) {
  const Where where = RollupWhere(filter);
  Page<SourceRow> result;

  // The dashboard's default, the failing sources first: the page comes
  // from the failing rows, then the figures of its sources alone, so a
  // month of a busy domain does not sort every source it had.
  bool done = false;
  if (query.sort == SourceSort::kFailing && query.result != SourceResult::kPass) {
    auto failing = FailingPage(impl_->db_.Handle(), where, page);
    if (!failing) {
      return tl::unexpected(failing.error());
    }
    const bool whole = *failing && (query.result != SourceResult::kAll ||
                                    static_cast<int64_t>((*failing)->first.size()) == page.limit);
    if (whole) {
      const std::vector<std::string>& ips = (*failing)->first;
      result.total = (*failing)->second;
      if (query.result == SourceResult::kAll) {
        auto count =
            impl_->Prepare("SELECT COUNT(DISTINCT source_ip) FROM source_days " + where.sql);
        if (!count) {
          return tl::unexpected(count.error());
        }
        where.BindTo(*count, 1);
        auto counted = ForEachRow(*count, [&](const Statement& row) { result.total = row.Int(0); });
        if (!counted) {
          return tl::unexpected(counted.error());
        }
      }

      Where page_where = where;
      std::string in = "source_ip IN (";
      for (size_t i = 0; i < ips.size(); ++i) {
        in += i == 0 ? "?" : ", ?";
        page_where.params.emplace_back(ips[i]);
      }
      page_where.Add(in + ")");
      // The names come in the same pass (kNameLists).
      auto figures = impl_->Prepare(std::string("SELECT source_ip, ") + kFigureSums +
                                    ", MIN(first_seen), MAX(last_seen), " + kNameLists +
                                    " FROM source_days " + page_where.sql + " GROUP BY source_ip");
      if (!figures) {
        return tl::unexpected(figures.error());
      }
      page_where.BindTo(*figures, 1);
      std::map<std::string, SourceRow> by_ip;
      auto read = ForEachRow(*figures, [&](const Statement& row) {
        SourceRow source;
        source.source_ip = row.Text(0);
        source.figures = ReadFigures(row, 1);
        source.first_seen = row.Int(8);
        source.last_seen = row.Int(9);
        AddNames(row.Text(10), source);
        by_ip[source.source_ip] = std::move(source);
      });
      if (!read) {
        return tl::unexpected(read.error());
      }
      for (const std::string& ip : ips) result.items.push_back(std::move(by_ip[ip]));
      done = true;
    }
  }

  if (!done) {
    auto listed = ListSources(impl_->db_.Handle(), where, query, page, result);
    if (!listed) {
      return tl::unexpected(listed.error());
    }
  }

  // The page's names, unless they came with its figures: one pass over
  // its sources' day rows.
  if (!result.items.empty() && !done) {
    Where names_where = RollupWhere(filter);
    std::string in = "source_ip IN (";
    for (size_t i = 0; i < result.items.size(); ++i) {
      in += i == 0 ? "?" : ", ?";
      names_where.params.emplace_back(result.items[i].source_ip);
    }
    names_where.Add(in + ")");
    auto names = impl_->Prepare(std::string("SELECT source_ip, ") + kNameLists +
                                " FROM source_days " + names_where.sql + " GROUP BY source_ip");
    if (!names) {
      return tl::unexpected(names.error());
    }
    names_where.BindTo(*names, 1);
    std::map<std::string, SourceRow*, std::less<>> by_ip;
    for (SourceRow& source : result.items) by_ip[source.source_ip] = &source;
    auto named = ForEachRow(*names, [&](const Statement& row) {
      const auto found = by_ip.find(row.Text(0));
      if (found != by_ip.end()) AddNames(row.Text(1), *found->second);
    });
    if (!named) {
      return tl::unexpected(named.error());
    }
  }

  const Where reports_where = SourceReportWhere(filter, "");
  auto reports = impl_->Prepare("SELECT COUNT(*) FROM source_reports " + reports_where.sql);
  if (!reports) {
    return tl::unexpected(reports.error());
  }
  const int reports_ip = static_cast<int>(reports_where.params.size());
  for (SourceRow& source : result.items) {
    reports_where.BindTo(*reports, 1);
    reports->Bind(reports_ip, std::string_view(source.source_ip));
    auto counted = ReadOne(*reports, [&](const Statement& row) { source.reports = row.Int(0); });
    if (!counted) {
      return tl::unexpected(counted.error());
    }
  }
  return result;
}

Result<Page<SourceRecordRow>> Reader::SourceRecords(const std::string& source_ip,
                                                    const TimeFilter& filter,
                                                    const PageRequest& page) {
  const Where where = SourceReportWhere(filter, source_ip);
  auto reports = impl_->Prepare("SELECT report_id, records FROM source_reports " + where.sql +
                                " ORDER BY date_begin DESC, report_id DESC");
  if (!reports) {
    return tl::unexpected(reports.error());
  }
  where.BindTo(*reports, 1);
  std::vector<std::pair<int64_t, int64_t>> report_records;
  Page<SourceRecordRow> result;
  auto listed = ForEachRow(*reports, [&](const Statement& row) {
    report_records.emplace_back(row.Int(0), row.Int(1));
    result.total += row.Int(1);
  });
  if (!listed) {
    return tl::unexpected(listed.error());
  }

  auto records = impl_->Prepare(
      "SELECT x.id, x.source_ip, x.count, x.disposition, x.policy_dkim, x.policy_spf, "
      "x.header_from, x.envelope_from, x.envelope_to, r.report_id, r.org_name, r.domain, "
      "r.date_begin, r.date_end FROM records x JOIN reports r ON r.id = x.report_id "
      "WHERE x.report_id = ? AND x.source_ip = ? ORDER BY x.seq LIMIT ? OFFSET ?");
  auto dkim = impl_->Prepare(
      "SELECT domain, selector, result, human_result FROM dkim_results WHERE record_id = ? "
      "ORDER BY seq");
  auto spf = impl_->Prepare(
      "SELECT domain, scope, result, human_result FROM spf_results WHERE record_id = ? "
      "ORDER BY seq");
  if (!records || !dkim || !spf) {
    return tl::unexpected(!records ? records.error() : !dkim ? dkim.error() : spf.error());
  }

  // Skip whole reports up to the offset, then read records until the page
  // is full.
  int64_t skip = std::max<int64_t>(page.offset, 0);
  const auto limit = static_cast<size_t>(std::max<int64_t>(page.limit, 0));
  std::vector<int64_t> record_pks;
  for (const auto& [report, count] : report_records) {
    const int64_t report_pk = report;  // a lambda cannot capture a structured binding (C++17)
    if (result.items.size() >= limit) break;
    if (skip >= count) {
      skip -= count;
      continue;
    }
    records->Bind(1, report_pk)
        .Bind(2, std::string_view(source_ip))
        .Bind(3, static_cast<int64_t>(limit - result.items.size()))
        .Bind(4, skip);
    skip = 0;
    auto read = ForEachRow(*records, [&](const Statement& row) {
      SourceRecordRow item;
      record_pks.push_back(row.Int(0));
      item.record.source_ip = row.Text(1);
      item.record.count = row.Uint(2);
      item.record.disposition = row.OptionalText(3);
      item.record.policy_dkim = row.OptionalText(4);
      item.record.policy_spf = row.OptionalText(5);
      item.record.header_from = row.OptionalText(6);
      item.record.envelope_from = row.OptionalText(7);
      item.record.envelope_to = row.OptionalText(8);
      item.report_pk = report_pk;
      item.report_id = row.Text(9);
      item.org_name = row.Text(10);
      item.domain = row.Text(11);
      item.begin = row.Int(12);
      item.end = row.Int(13);
      result.items.push_back(std::move(item));
    });
    if (!read) {
      return tl::unexpected(read.error());
    }
  }

  for (size_t i = 0; i < result.items.size(); ++i) {
    parser::AggregateRecord& record = result.items[i].record;
    dkim->Bind(1, record_pks[i]);
    auto read_dkim = ForEachRow(*dkim, [&](const Statement& row) {
      record.dkim.push_back(parser::DkimAuthResult{row.OptionalText(0), row.OptionalText(1),
                                                   row.Text(2), row.OptionalText(3)});
    });
    spf->Bind(1, record_pks[i]);
    auto read_spf = ForEachRow(*spf, [&](const Statement& row) {
      record.spf.push_back(parser::SpfAuthResult{row.OptionalText(0), row.OptionalText(1),
                                                 row.Text(2), row.OptionalText(3)});
    });
    if (!read_dkim || !read_spf) {
      return tl::unexpected(!read_dkim ? read_dkim.error() : read_spf.error());
    }
  }
  return result;
}

Result<Page<ReporterRow>> Reader::Reporters(const TimeFilter& filter, const PageRequest& page) {
  const Where where = RollupWhere(filter);
  const std::string groups = " FROM reporter_days " + where.sql + " GROUP BY reporter_key";
  auto list = impl_->Prepare(
      "SELECT reporter_key, COALESCE(SUM(messages), 0), COALESCE(SUM(dmarc_pass), 0), "
      "COUNT(*) OVER ()" +
      groups + " ORDER BY SUM(messages) DESC, reporter_key LIMIT ? OFFSET ?");
  if (!list) {
    return tl::unexpected(list.error());
  }
  where.BindTo(*list, 1);
  const int next = static_cast<int>(where.params.size()) + 1;
  list->Bind(next, std::max<int64_t>(page.limit, 0))
      .Bind(next + 1, std::max<int64_t>(page.offset, 0));
  Page<ReporterRow> result;
  auto listed = ForEachRow(*list, [&](const Statement& row) {
    ReporterRow reporter;
    reporter.reporter_key = row.Text(0);
    reporter.messages = row.Uint(1);
    reporter.dmarc_pass = row.Uint(2);
    result.total = row.Int(3);
    result.items.push_back(std::move(reporter));
  });
  if (!listed) {
    return tl::unexpected(listed.error());
  }
  if (result.items.empty() && page.offset > 0) {
    auto count = impl_->Prepare("SELECT COUNT(*) FROM (SELECT reporter_key" + groups + ")");
    if (!count) {
      return tl::unexpected(count.error());
    }
    where.BindTo(*count, 1);
    auto counted = ForEachRow(*count, [&](const Statement& row) { result.total = row.Int(0); });
    if (!counted) {
      return tl::unexpected(counted.error());
    }
  }

  // SQLite takes the bare org_name from the row that holds MAX(date_end):
  // the name the reporter's newest report gives.
  for (ReporterRow& reporter : result.items) {
    Where reports_where = ReportWhere(filter);
    reports_where.Add("reporter_key = ?");
    reports_where.params.emplace_back(reporter.reporter_key);
    auto reports =
        impl_->Prepare("SELECT org_name, MAX(date_end), COUNT(*), MIN(date_begin) FROM reports " +
                       reports_where.sql);
    if (!reports) {
      return tl::unexpected(reports.error());
    }
    reports_where.BindTo(*reports, 1);
    auto read = ReadOne(*reports, [&](const Statement& row) {
      reporter.org_name = row.IsNull(0) ? std::string() : row.Text(0);
      reporter.last_seen = row.IsNull(1) ? 0 : row.Int(1);
      reporter.reports = row.Int(2);
      reporter.first_seen = row.IsNull(3) ? 0 : row.Int(3);
    });
    if (!read) {
      return tl::unexpected(read.error());
    }
  }
  return result;
}

Result<Page<PolicyRow>> Reader::Policies(const std::string& domain, const PageRequest& page) {
  auto list = impl_->Prepare(
      "SELECT policy_p, policy_sp, policy_np, policy_adkim, policy_aspf, policy_pct, policy_fo, "
      "policy_testing, COUNT(*), MIN(date_begin), MAX(date_end), COUNT(*) OVER () "
      "FROM reports WHERE domain = ? GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 "
      "ORDER BY MIN(date_begin), MIN(id) LIMIT ? OFFSET ?");
  if (!list) {
    return tl::unexpected(list.error());
  }
  list->Bind(1, std::string_view(AsciiLower(domain)))
      .Bind(2, std::max<int64_t>(page.limit, 0))
      .Bind(3, std::max<int64_t>(page.offset, 0));
  Page<PolicyRow> result;
  auto listed = ForEachRow(*list, [&](const Statement& row) {
    PolicyRow policy;
    policy.p = row.OptionalText(0);
    policy.sp = row.OptionalText(1);
    policy.np = row.OptionalText(2);
    policy.adkim = row.OptionalText(3);
    policy.aspf = row.OptionalText(4);
    policy.pct = row.OptionalInt(5);
    policy.fo = row.OptionalText(6);
    policy.testing = row.OptionalText(7);
    policy.reports = row.Int(8);
    policy.first_seen = row.Int(9);
    policy.last_seen = row.Int(10);
    result.total = row.Int(11);
    result.items.push_back(std::move(policy));
  });
  if (!listed) {
    return tl::unexpected(listed.error());
  }
  if (result.items.empty() && page.offset > 0) {
    auto count = impl_->Prepare(
        "SELECT COUNT(*) FROM (SELECT 1 FROM reports WHERE domain = ? "
        "GROUP BY policy_p, policy_sp, policy_np, policy_adkim, policy_aspf, policy_pct, "
        "policy_fo, policy_testing)");
    if (!count) {
      return tl::unexpected(count.error());
    }
    count->Bind(1, std::string_view(AsciiLower(domain)));
    auto counted = ForEachRow(*count, [&](const Statement& row) { result.total = row.Int(0); });
    if (!counted) {
      return tl::unexpected(counted.error());
    }
  }
  return result;
}

}  // namespace dmarcd::storage
