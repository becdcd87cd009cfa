#include "storage/rollups.hpp"

#include <algorithm>
#include <numeric>
#include <string_view>
#include <tuple>
#include <vector>

#include "storage/ascii.hpp"
#include "storage/day_shares.hpp"

namespace dmarcd::storage {
namespace {

bool AllZero(const Figures& f) {
  return f.messages == 0 && f.dmarc_pass == 0 && f.dkim_aligned_pass == 0 &&
         f.spf_aligned_pass == 0 && f.disposition_none == 0 && f.disposition_quarantine == 0 &&
         f.disposition_reject == 0;
}

void Add(Figures& sum, const Figures& f) {
  sum.messages += f.messages;
  sum.dmarc_pass += f.dmarc_pass;
  sum.dkim_aligned_pass += f.dkim_aligned_pass;
  sum.spf_aligned_pass += f.spf_aligned_pass;
  sum.disposition_none += f.disposition_none;
  sum.disposition_quarantine += f.disposition_quarantine;
  sum.disposition_reject += f.disposition_reject;
}

// Binds the seven figures from `first` on, in the order of the tables.
void BindFigures(Statement& statement, int first, const Figures& f) {
  statement.Bind(first, f.messages)
      .Bind(first + 1, f.dmarc_pass)
      .Bind(first + 2, f.dkim_aligned_pass)
      .Bind(first + 3, f.spf_aligned_pass)
      .Bind(first + 4, f.disposition_none)
      .Bind(first + 5, f.disposition_quarantine)
      .Bind(first + 6, f.disposition_reject);
}

constexpr const char* kAddFigures =
    "messages = messages + excluded.messages, "
    "dmarc_pass = dmarc_pass + excluded.dmarc_pass, "
    "dkim_aligned_pass = dkim_aligned_pass + excluded.dkim_aligned_pass, "
    "spf_aligned_pass = spf_aligned_pass + excluded.spf_aligned_pass, "
    "disposition_none = disposition_none + excluded.disposition_none, "
    "disposition_quarantine = disposition_quarantine + excluded.disposition_quarantine, "
    "disposition_reject = disposition_reject + excluded.disposition_reject";

}  // namespace

// One ended report, waiting for Flush (or a report's sources written
// early): its sources, with their names, and each one's share of every
// day, in the order of `sources`.
struct RollupWriter::HeldReport {
  RollupReport report;
  std::vector<int64_t> days;  // 00:00 UTC of each day covered, oldest first
  // The split of the report's totals; empty for sources written early,
  // whose report writes its days at its end.
  std::vector<DayFigures> report_days;
  SortedSources sources;
  // Empty for a report of one day, where a source's share is all of it.
  std::vector<std::vector<Figures>> shares;
};

RollupWriter::RollupWriter(Database& db)
    : db_(db),
      upsert_source_days_(
          "INSERT INTO source_days (domain, day, source_ip, messages, dmarc_pass, "
          "dkim_aligned_pass, spf_aligned_pass, disposition_none, disposition_quarantine, "
          "disposition_reject, first_seen, last_seen, names) VALUES ",
          13,
          std::string(" ON CONFLICT (domain, day, source_ip) DO UPDATE SET ") + kAddFigures +
              ", first_seen = MIN(first_seen, excluded.first_seen), "
              "last_seen = MAX(last_seen, excluded.last_seen), "
              // The union of two sorted name lists (migration 0005), sorted.
              "names = CASE WHEN source_days.names = excluded.names THEN source_days.names ELSE "
              "(SELECT json_group_array(value) FROM (SELECT value FROM "
              "json_each(source_days.names) UNION SELECT value FROM json_each(excluded.names) "
              "ORDER BY value)) END"),
      // A report of one day may write a source in parts (AddRecord).
      upsert_source_reports_(
          "INSERT INTO source_reports (domain, source_ip, date_begin, report_id, date_end, "
          "records, messages) VALUES ",
          7,
          " ON CONFLICT (domain, source_ip, date_begin, report_id) DO UPDATE SET "
          "records = records + excluded.records, messages = messages + excluded.messages") {}

RollupWriter::~RollupWriter() = default;

RollupWriter::SortedSources RollupWriter::Sorted(Sources& sources) {
  SortedSources sorted;
  sorted.reserve(sources.size());
  for (auto& [ip, source] : sources) sorted.emplace_back(ip, std::move(source));
  sources.clear();
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return sorted;
}

void RollupWriter::BeginReport(const RollupReport& report) {
  report_ = report;
  report_totals_ = Figures{};
  sources_.clear();
}

void RollupWriter::AddName(Source& source, std::string_view kind, std::string_view name) {
  entry_.assign(kind);
  entry_ += ':';
  // Domain names compare case-insensitively (RFC 4343).
  for (const char c : name) entry_ += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  auto found = name_ids_.find(entry_);
  if (found == name_ids_.end()) {
    found = name_ids_.emplace(entry_, static_cast<uint32_t>(names_.size())).first;
    names_.push_back(&found->first);
  }
  const uint32_t id = found->second;
  const auto at = std::lower_bound(source.names.begin(), source.names.end(), id);
  if (at == source.names.end() || *at != id) source.names.insert(at, id);
}

Result<void> RollupWriter::AddRecord(const parser::AggregateRecord& record) {
  auto found = sources_.find(record.source_ip);
  if (found == sources_.end()) {
    // A report of one day owes its sources nothing but their sums, so they
    // can be written in parts: the upserts add up.
    if (sources_.size() >= kRollupReportSources &&
        UtcDayStart(report_.begin) == UtcDayStart(std::max(report_.begin, report_.end - 1))) {
      HeldReport part;
      part.report = report_;
      part.days.push_back(UtcDayStart(report_.begin));
      part.sources = Sorted(sources_);
      if (auto written = Write({&part}); !written) return written;
    }
    found = sources_.emplace(record.source_ip, Source{}).first;
  }
  Source& source = found->second;
  ++source.records;

  // The same weighting as the report's totals (EnvelopeStore::OnRecord):
  // a row stands for `count` messages (RFC 7489 Appendix C).
  Figures f;
  const uint64_t count = record.count;
  f.messages = count;
  f.dmarc_pass = record.DmarcPass() ? count : 0;
  f.dkim_aligned_pass = record.policy_dkim == "pass" ? count : 0;
  f.spf_aligned_pass = record.policy_spf == "pass" ? count : 0;
  f.disposition_none = record.disposition == "none" ? count : 0;
  f.disposition_quarantine = record.disposition == "quarantine" ? count : 0;
  f.disposition_reject = record.disposition == "reject" ? count : 0;
  Add(source.figures, f);
  Add(report_totals_, f);

  if (record.header_from && !record.header_from->empty()) {
    AddName(source, "header_from", *record.header_from);
  }
  for (const auto& dkim : record.dkim) {
    if (dkim.domain && !dkim.domain->empty()) AddName(source, "dkim", *dkim.domain);
  }
  for (const auto& spf : record.spf) {
    if (spf.domain && !spf.domain->empty()) AddName(source, "spf", *spf.domain);
  }
  return {};
}

Result<void> RollupWriter::Prepare() {
  if (prepared_) return {};
  sqlite3* db = db_.Handle();
  const std::string add_figures = kAddFigures;
  const std::pair<Statement*, std::string> statements[] = {
      {&upsert_domain_day_,
       "INSERT INTO domain_days (domain, day, messages, dmarc_pass, dkim_aligned_pass, "
       "spf_aligned_pass, disposition_none, disposition_quarantine, disposition_reject) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (domain, day) DO UPDATE SET " +
           add_figures},
      {&upsert_reporter_day_,
       "INSERT INTO reporter_days (domain, day, reporter_key, messages, dmarc_pass) "
       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (domain, day, reporter_key) DO UPDATE SET "
       "messages = messages + excluded.messages, dmarc_pass = dmarc_pass + excluded.dmarc_pass"},
  };
  for (const auto& [statement, sql] : statements) {
    auto prepared = Statement::Prepare(db, sql);
    if (!prepared) return tl::unexpected(prepared.error());
    *statement = std::move(*prepared);
  }
  prepared_ = true;
  return {};
}

namespace {

// A count (below 2^64) times a number of seconds needs more than 64 bits.
__extension__ typedef unsigned __int128 Wide;

constexpr size_t kFigureCount = 7;

uint64_t& Field(Figures& figures, size_t index) {
  uint64_t* const fields[kFigureCount] = {
      &figures.messages,          &figures.dmarc_pass,       &figures.dkim_aligned_pass,
      &figures.spf_aligned_pass,  &figures.disposition_none, &figures.disposition_quarantine,
      &figures.disposition_reject};
  return *fields[index];
}

uint64_t Value(const Figures& figures, size_t index) {
  const uint64_t values[kFigureCount] = {figures.messages,          figures.dmarc_pass,
                                         figures.dkim_aligned_pass, figures.spf_aligned_pass,
                                         figures.disposition_none,  figures.disposition_quarantine,
                                         figures.disposition_reject};
  return values[index];
}

// The seconds of [begin, end) in each UTC day it overlaps, as
// SplitOverDays counts them; end == begin is one day holding everything.
struct DaySeconds {
  int64_t day = 0;
  uint64_t seconds = 0;
};

std::vector<DaySeconds> DaysOf(int64_t begin, int64_t end) {
  std::vector<DaySeconds> days;
  if (end <= begin) {
    days.push_back(DaySeconds{UtcDayStart(begin), 1});
    return days;
  }
  for (int64_t day = UtcDayStart(begin); day < end; day += kSecondsPerDay) {
    days.push_back(DaySeconds{
        day, static_cast<uint64_t>(std::min(end, day + kSecondsPerDay) - std::max(begin, day))});
  }
  return days;
}

// Splits each source's totals over the days so that every source's shares
// add up to its totals and, on every day, the sources' shares add up to
// the report's share of that day (`report_days`, from SplitOverDays). Each
// share starts at the floor of its exact proportion; the units left are
// handed out source by source (most units first) to the days that still
// need the most, then the larger remainder, then the earlier day: the
// greedy construction of Gale and Ryser, which finds a 0/1 completion
// whenever one exists, and one does because the day shares are themselves
// roundings of the same proportions (controlled rounding). A share is
// therefore its exact proportion rounded down or up.
void Apportion(const std::vector<DaySeconds>& days, const std::vector<DayFigures>& report_days,
               const std::vector<Figures>& totals, std::vector<std::vector<Figures>>& shares) {
  Wide span = 0;
  for (const DaySeconds& day : days) span += day.seconds;
  std::vector<uint64_t> need(days.size());
  std::vector<uint64_t> left(totals.size());
  std::vector<std::vector<Wide>> remainders(totals.size(), std::vector<Wide>(days.size()));
  std::vector<size_t> order(totals.size());
  std::vector<size_t> columns(days.size());

  for (size_t f = 0; f < kFigureCount; ++f) {
    for (size_t d = 0; d < days.size(); ++d) need[d] = Value(report_days[d].figures, f);
    for (size_t s = 0; s < totals.size(); ++s) {
      const uint64_t total = Value(totals[s], f);
      uint64_t given = 0;
      for (size_t d = 0; d < days.size(); ++d) {
        const Wide exact = static_cast<Wide>(total) * days[d].seconds;
        const auto share = static_cast<uint64_t>(exact / span);
        Field(shares[s][d], f) = share;
        remainders[s][d] = exact % span;
        given += share;
        need[d] -= std::min(need[d], share);
      }
      left[s] = total - given;
    }

    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return left[a] > left[b]; });
    for (const size_t s : order) {
      std::iota(columns.begin(), columns.end(), size_t{0});
      std::stable_sort(columns.begin(), columns.end(), [&](size_t a, size_t b) {
        if (need[a] != need[b]) return need[a] > need[b];
        return remainders[s][a] > remainders[s][b];
      });
      // Distinct days first; should the greedy ever run out of them, a
      // unit goes to any day that still needs one, so the sums stay exact.
      for (int pass = 0; pass < 2 && left[s] > 0; ++pass) {
        for (const size_t d : columns) {
          if (left[s] == 0) break;
          if (need[d] == 0) continue;
          ++Field(shares[s][d], f);
          --need[d];
          --left[s];
        }
      }
    }
  }
}

}  // namespace

void RollupWriter::EndReport() {
  auto held = std::make_unique<HeldReport>();
  held->report = report_;
  const std::vector<DaySeconds> days = DaysOf(report_.begin, report_.end);
  for (const DaySeconds& day : days) held->days.push_back(day.day);

  held->sources = Sorted(sources_);

  // The report's day figures are the split of its totals (the rule of
  // report_days); over several days, each source's are apportioned so
  // that they add up both to the source's totals and to those day figures.
  held->report_days = SplitOverDays(report_.begin, report_.end, report_totals_);
  if (days.size() > 1) {
    std::vector<Figures> source_totals;
    source_totals.reserve(held->sources.size());
    for (const auto& [ip, source] : held->sources) source_totals.push_back(source.figures);
    held->shares.assign(held->sources.size(), std::vector<Figures>(days.size()));
    Apportion(days, held->report_days, source_totals, held->shares);
  }

  held_sources_ += held->sources.size();
  held_.push_back(std::move(held));
}

void RollupWriter::RollBackTo(size_t mark) {
  while (held_.size() > mark) {
    held_sources_ -= held_.back()->sources.size();
    held_.pop_back();
  }
}

namespace {

// Appends `text` as a JSON string.
void AppendJsonString(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      out += "\\u00";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

void RollupWriter::NamesJson(const std::vector<const std::vector<uint32_t>*>& ids,
                             std::string& out) const {
  // Sorted bytewise, like SQLite's BINARY collation that the upsert's
  // merge sorts by.
  std::vector<const std::string*> entries;
  for (const std::vector<uint32_t>* some : ids) {
    for (const uint32_t id : *some) entries.push_back(names_[id]);
  }
  std::sort(entries.begin(), entries.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  entries.erase(std::unique(entries.begin(), entries.end(),
                            [](const std::string* a, const std::string* b) { return *a == *b; }),
                entries.end());
  // clear and push_back: g++ 12 at -O2 warns (-Wrestrict, a false
  // positive) about assigning a literal here.
  out.clear();
  out.push_back('[');
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(*entries[i], out);
  }
  out += ']';
}

Result<void> RollupWriter::Flush() {
  // Whatever happens below, nothing is held afterwards: on an error the
  // caller rolls back the transaction, and the rows with it.
  std::vector<std::unique_ptr<HeldReport>> held = std::move(held_);
  held_.clear();
  held_sources_ = 0;
  std::vector<const HeldReport*> reports;
  reports.reserve(held.size());
  for (const auto& report : held) reports.push_back(report.get());
  auto written = reports.empty() ? Result<void>{} : Write(reports);
  held.clear();
  if (sources_.empty()) {
    name_ids_.clear();
    names_.clear();
  }
  return written;
}

Result<void> RollupWriter::Write(const std::vector<const HeldReport*>& reports) {
  if (auto prepared = Prepare(); !prepared) return prepared;

  // The rows of each table, pointing into the reports, put in key order.
  struct SourceDayRow {
    const RollupReport* report;
    int64_t day;
    const std::string* source_ip;
    const Source* source;
    const Figures* share;
    auto Key() const { return std::tie(report->domain, day, *source_ip); }
  };
  struct SourceReportRow {
    const RollupReport* report;
    const std::string* source_ip;
    const Source* source;
    auto Key() const {
      return std::tie(report->domain, *source_ip, report->begin, report->report_pk);
    }
  };
  struct DayRow {
    const RollupReport* report;
    const DayFigures* day;
    auto DomainKey() const { return std::tie(report->domain, day->day); }
    auto ReporterKey() const { return std::tie(report->domain, day->day, report->reporter_key); }
  };
  std::vector<SourceDayRow> source_days;
  std::vector<SourceReportRow> source_reports;
  std::vector<DayRow> days;
  for (const HeldReport* held : reports) {
    const RollupReport& r = held->report;
    const int64_t first_day = UtcDayStart(r.begin);
    size_t index = 0;
    for (const auto& [ip, source] : held->sources) {
      for (size_t d = 0; d < held->days.size(); ++d) {
        const Figures& share = held->shares.empty() ? source.figures : held->shares[index][d];
        // A source stays visible on the report's first day even with no
        // messages (a record with count 0).
        if (AllZero(share) && held->days[d] != first_day) continue;
        source_days.push_back(SourceDayRow{&r, held->days[d], &ip, &source, &share});
      }
      source_reports.push_back(SourceReportRow{&r, &ip, &source});
      ++index;
    }
    for (const DayFigures& day : held->report_days) {
      if (!AllZero(day.figures)) days.push_back(DayRow{&r, &day});
    }
  }

  // Rows of the same key (a source on the same day in several reports) are
  // folded into one upsert.
  std::sort(source_days.begin(), source_days.end(),
            [](const SourceDayRow& a, const SourceDayRow& b) { return a.Key() < b.Key(); });
  struct SourceDayUpsert {
    const SourceDayRow* row;
    Figures sum;
    int64_t first_seen;
    int64_t last_seen;
    std::string names;
  };
  std::vector<SourceDayUpsert> upserts;
  std::vector<const std::vector<uint32_t>*> name_ids;
  for (size_t i = 0; i < source_days.size();) {
    const SourceDayRow& row = source_days[i];
    SourceDayUpsert upsert{&row, Figures{}, row.report->begin, row.report->end, {}};
    name_ids.clear();
    size_t next = i;
    for (; next < source_days.size() && source_days[next].Key() == row.Key(); ++next) {
      const SourceDayRow& same = source_days[next];
      Add(upsert.sum, *same.share);
      upsert.first_seen = std::min(upsert.first_seen, same.report->begin);
      upsert.last_seen = std::max(upsert.last_seen, same.report->end);
      name_ids.push_back(&same.source->names);
    }
    NamesJson(name_ids, upsert.names);
    upserts.push_back(std::move(upsert));
    i = next;
  }
  sqlite3* db = db_.Handle();
  auto days_written =
      upsert_source_days_.Run(db, upserts.size(), [&](Statement& statement, int p, size_t i) {
        const SourceDayUpsert& upsert = upserts[i];
        statement.BindStatic(p, std::string_view(upsert.row->report->domain))
            .Bind(p + 1, upsert.row->day)
            .BindStatic(p + 2, std::string_view(*upsert.row->source_ip));
        BindFigures(statement, p + 3, upsert.sum);
        statement.Bind(p + 10, upsert.first_seen)
            .Bind(p + 11, upsert.last_seen)
            .BindStatic(p + 12, std::string_view(upsert.names));
      });
  if (!days_written) return days_written;

  std::sort(source_reports.begin(), source_reports.end(),
            [](const SourceReportRow& a, const SourceReportRow& b) { return a.Key() < b.Key(); });
  auto reports_written = upsert_source_reports_.Run(
      db, source_reports.size(), [&](Statement& statement, int p, size_t i) {
        const SourceReportRow& row = source_reports[i];
        statement.BindStatic(p, std::string_view(row.report->domain))
            .BindStatic(p + 1, std::string_view(*row.source_ip))
            .Bind(p + 2, row.report->begin)
            .Bind(p + 3, row.report->report_pk)
            .Bind(p + 4, row.report->end)
            .Bind(p + 5, row.source->records)
            .Bind(p + 6, row.source->figures.messages);
      });
  if (!reports_written) return reports_written;

  // Per reporter, then per domain, each key once.
  auto each_group = [&days](auto key, auto write) -> Result<void> {
    std::sort(days.begin(), days.end(),
              [&](const DayRow& a, const DayRow& b) { return key(a) < key(b); });
    for (size_t i = 0; i < days.size();) {
      Figures sum;
      size_t next = i;
      for (; next < days.size() && key(days[next]) == key(days[i]); ++next) {
        Add(sum, days[next].day->figures);
      }
      if (auto done = write(days[i], sum); !done) return done;
      i = next;
    }
    return {};
  };
  auto reporters = each_group([](const DayRow& row) { return row.ReporterKey(); },
                              [this](const DayRow& row, const Figures& sum) {
                                upsert_reporter_day_.Bind(1, std::string_view(row.report->domain))
                                    .Bind(2, row.day->day)
                                    .Bind(3, std::string_view(row.report->reporter_key))
                                    .Bind(4, sum.messages)
                                    .Bind(5, sum.dmarc_pass);
                                return upsert_reporter_day_.Run();
                              });
  if (!reporters) return reporters;
  return each_group(
      [](const DayRow& row) { return row.DomainKey(); },
      [this](const DayRow& row, const Figures& sum) {
        upsert_domain_day_.Bind(1, std::string_view(row.report->domain)).Bind(2, row.day->day);
        BindFigures(upsert_domain_day_, 3, sum);
        return upsert_domain_day_.Run();
      });
}

Result<void> RebuildRollups(Database& db) {
  for (const char* table : {"domain_days", "source_days", "source_reports", "reporter_days"}) {
    const std::string sql = std::string("DELETE FROM ") + table;
    if (auto done = db.Exec(sql.c_str()); !done) return done;
  }

  auto reports = Statement::Prepare(
      db.Handle(),
      "SELECT id, domain, reporter_key, date_begin, date_end FROM reports ORDER BY id");
  auto records = Statement::Prepare(
      db.Handle(),
      "SELECT id, source_ip, count, disposition, policy_dkim, policy_spf, header_from "
      "FROM records WHERE report_id = ? ORDER BY seq");
  auto dkim = Statement::Prepare(
      db.Handle(),
      "SELECT r.seq, x.domain FROM dkim_results x JOIN records r ON r.id = x.record_id "
      "WHERE r.report_id = ? AND x.domain IS NOT NULL");
  auto spf = Statement::Prepare(
      db.Handle(),
      "SELECT r.seq, x.domain FROM spf_results x JOIN records r ON r.id = x.record_id "
      "WHERE r.report_id = ? AND x.domain IS NOT NULL");
  if (!reports || !records || !dkim || !spf) {
    return tl::unexpected(!reports   ? reports.error()
                          : !records ? records.error()
                          : !dkim    ? dkim.error()
                                     : spf.error());
  }

  std::vector<RollupReport> all;
  for (;;) {
    auto row = reports->Step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    all.push_back(RollupReport{reports->Int(0), reports->Text(1), reports->Text(2), reports->Int(3),
                               reports->Int(4)});
  }

  // Only what the roll-ups read of a record: figures, source, names.
  RollupWriter writer(db);
  std::vector<parser::AggregateRecord> rows;
  for (const RollupReport& report : all) {
    rows.clear();
    records->Bind(1, report.report_pk);
    for (;;) {
      auto row = records->Step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      parser::AggregateRecord record;
      record.source_ip = records->Text(1);
      record.count = records->Uint(2);
      record.disposition = records->OptionalText(3);
      record.policy_dkim = records->OptionalText(4);
      record.policy_spf = records->OptionalText(5);
      record.header_from = records->OptionalText(6);
      rows.push_back(std::move(record));
    }
    records->Reset();

    for (auto [statement, is_dkim] : {std::pair{&*dkim, true}, std::pair{&*spf, false}}) {
      statement->Bind(1, report.report_pk);
      for (;;) {
        auto row = statement->Step();
        if (!row) return tl::unexpected(row.error());
        if (!*row) break;
        const int64_t seq = statement->Int(0);
        if (seq < 0 || static_cast<size_t>(seq) >= rows.size()) continue;
        if (is_dkim) {
          rows[static_cast<size_t>(seq)].dkim.push_back(
              parser::DkimAuthResult{statement->OptionalText(1), std::nullopt, "", std::nullopt});
        } else {
          rows[static_cast<size_t>(seq)].spf.push_back(
              parser::SpfAuthResult{statement->OptionalText(1), std::nullopt, "", std::nullopt});
        }
      }
      statement->Reset();
    }

    writer.BeginReport(report);
    for (const parser::AggregateRecord& record : rows) {
      if (auto added = writer.AddRecord(record); !added) return added;
    }
    writer.EndReport();
    if (writer.HeldSources() >= kRollupFlushSources) {
      if (auto done = writer.Flush(); !done) return done;
    }
  }
  return writer.Flush();
}

Result<void> AfterMigration(Database& db, int version) {
  // Version 4 made the roll-up tables and 5 gave them their present shape;
  // a database that gets 4 gets 5 next, so they are built once, after 5.
  if (version == 5) return RebuildRollups(db);
  return {};
}

}  // namespace dmarcd::storage
