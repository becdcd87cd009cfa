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

// One ended report, waiting for Flush: its sources (with their names) and
// each source's share of every day, in the order of `sources`.
struct RollupWriter::HeldReport {
  RollupReport report;
  std::vector<int64_t> days;  // 00:00 UTC of each day covered, oldest first
  std::vector<DayFigures> report_days;
  std::map<std::string, Source> sources;
  std::vector<std::vector<Figures>> shares;
};

RollupWriter::RollupWriter(Database& db) : db_(db) {}

RollupWriter::~RollupWriter() = default;

void RollupWriter::BeginReport() { sources_.clear(); }

void RollupWriter::AddRecord(const parser::AggregateRecord& record) {
  Source& source = sources_[record.source_ip];
  ++source.records;

  // The same weighting as the report's totals (EnvelopeStore::OnRecord):
  // a row stands for `count` messages (RFC 7489 Appendix C).
  Figures& f = source.figures;
  const uint64_t count = record.count;
  f.messages += count;
  f.dmarc_pass += record.DmarcPass() ? count : 0;
  f.dkim_aligned_pass += record.policy_dkim == "pass" ? count : 0;
  f.spf_aligned_pass += record.policy_spf == "pass" ? count : 0;
  f.disposition_none += record.disposition == "none" ? count : 0;
  f.disposition_quarantine += record.disposition == "quarantine" ? count : 0;
  f.disposition_reject += record.disposition == "reject" ? count : 0;

  // Domain names compare case-insensitively (RFC 4343).
  if (record.header_from && !record.header_from->empty()) {
    source.names.emplace(NameKind::kHeaderFrom, AsciiLower(*record.header_from));
  }
  for (const auto& dkim : record.dkim) {
    if (dkim.domain && !dkim.domain->empty())
      source.names.emplace(NameKind::kDkim, AsciiLower(*dkim.domain));
  }
  for (const auto& spf : record.spf) {
    if (spf.domain && !spf.domain->empty())
      source.names.emplace(NameKind::kSpf, AsciiLower(*spf.domain));
  }
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
      {&upsert_source_day_,
       "INSERT INTO source_days (domain, day, source_ip, messages, dmarc_pass, "
       "dkim_aligned_pass, spf_aligned_pass, disposition_none, disposition_quarantine, "
       "disposition_reject, first_seen, last_seen, names) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
       "ON CONFLICT (domain, day, source_ip) DO UPDATE SET " +
           add_figures +
           ", first_seen = MIN(first_seen, excluded.first_seen), "
           "last_seen = MAX(last_seen, excluded.last_seen), "
           // The union of two sorted name lists (migration 0005), sorted.
           "names = (SELECT json_group_array(value) FROM (SELECT value FROM "
           "json_each(source_days.names) UNION SELECT value FROM json_each(excluded.names) "
           "ORDER BY value))"},
      {&upsert_reporter_day_,
       "INSERT INTO reporter_days (domain, day, reporter_key, messages, dmarc_pass) "
       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (domain, day, reporter_key) DO UPDATE SET "
       "messages = messages + excluded.messages, dmarc_pass = dmarc_pass + excluded.dmarc_pass"},
      {&insert_source_report_,
       "INSERT INTO source_reports (domain, source_ip, date_begin, report_id, date_end, records, "
       "messages) VALUES (?, ?, ?, ?, ?, ?, ?)"},
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

void RollupWriter::EndReport(const RollupReport& report) {
  auto held = std::make_unique<HeldReport>();
  held->report = report;
  const std::vector<DaySeconds> days = DaysOf(report.begin, report.end);
  for (const DaySeconds& day : days) held->days.push_back(day.day);

  // The report's day figures are the split of its totals (the rule of
  // report_days); each source's are apportioned so that they add up both
  // to the source's totals and to those day figures.
  Figures totals;
  for (const auto& [ip, source] : sources_) Add(totals, source.figures);
  held->report_days = SplitOverDays(report.begin, report.end, totals);
  std::vector<Figures> source_totals;
  source_totals.reserve(sources_.size());
  for (const auto& [ip, source] : sources_) source_totals.push_back(source.figures);
  held->shares.assign(sources_.size(), std::vector<Figures>(days.size()));
  Apportion(days, held->report_days, source_totals, held->shares);

  held_sources_ += sources_.size();
  held->sources = std::move(sources_);
  sources_.clear();
  held_.push_back(std::move(held));
}

void RollupWriter::RollBackTo(size_t mark) {
  while (held_.size() > mark) {
    held_sources_ -= held_.back()->sources.size();
    held_.pop_back();
  }
}

namespace {

constexpr std::string_view kNameKinds[] = {"header_from", "dkim", "spf"};

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

// The names column of migration 0005: the union of `sets` as a JSON array
// of "kind:name", sorted bytewise like SQLite's BINARY collation, which
// the upsert's merge sorts by.
template <typename NameSet>
void NamesJson(const std::vector<const NameSet*>& sets, std::string& out) {
  std::vector<std::string> names;
  for (const NameSet* set : sets) {
    for (const auto& [kind, name] : *set) {
      std::string entry(kNameKinds[static_cast<size_t>(kind)]);
      entry += ':';
      entry += name;
      names.push_back(std::move(entry));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  // clear and push_back: g++ 12 at -O2 warns (-Wrestrict, a false
  // positive) about assigning a literal here.
  out.clear();
  out.push_back('[');
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(names[i], out);
  }
  out += ']';
}

// The held rows of each table, pointing into the held reports. `names`
// are those of one report's source, or of several once merged.
template <typename NameSet>
struct SourceDayRow {
  std::string_view domain;
  int64_t day;
  std::string_view source_ip;
  Figures figures;
  int64_t first_seen;
  int64_t last_seen;
  std::vector<const NameSet*> names;
  auto Key() const { return std::tie(domain, day, source_ip); }
};

struct SourceReportRow {
  std::string_view domain;
  std::string_view source_ip;
  const RollupReport* report;
  uint64_t records;
  uint64_t messages;
  auto Key() const { return std::tie(domain, source_ip, report->begin, report->report_pk); }
};

struct DomainDayRow {
  std::string_view domain;
  int64_t day;
  std::string_view reporter_key;
  Figures figures;
  auto DomainKey() const { return std::tie(domain, day); }
  auto ReporterKey() const { return std::tie(domain, day, reporter_key); }
};

// Sorts `rows` by `key` and folds each run of equal keys into its first
// row with `merge`; returns the number of rows left at the front.
template <typename Row, typename Key, typename Merge>
size_t SortAndMerge(std::vector<Row>& rows, Key key, Merge merge) {
  std::sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) { return key(a) < key(b); });
  size_t kept = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (kept > 0 && key(rows[kept - 1]) == key(rows[i])) {
      merge(rows[kept - 1], rows[i]);
    } else {
      rows[kept++] = rows[i];
    }
  }
  return kept;
}

}  // namespace

Result<void> RollupWriter::Flush() {
  // Whatever happens below, nothing is held afterwards: on an error the
  // caller rolls back the transaction, and the rows with it.
  std::vector<std::unique_ptr<HeldReport>> held = std::move(held_);
  held_.clear();
  held_sources_ = 0;
  if (held.empty()) return {};
  if (auto prepared = Prepare(); !prepared) return prepared;

  using DayRow = SourceDayRow<decltype(Source::names)>;
  std::vector<DayRow> source_days;
  std::vector<SourceReportRow> source_reports;
  std::vector<DomainDayRow> domain_days;
  for (const auto& report : held) {
    const RollupReport& r = report->report;
    const int64_t first_day = UtcDayStart(r.begin);
    size_t index = 0;
    for (const auto& [ip, source] : report->sources) {
      const std::vector<Figures>& shares = report->shares[index++];
      for (size_t d = 0; d < report->days.size(); ++d) {
        // A source stays visible on the report's first day even with no
        // messages (a record with count 0).
        if (AllZero(shares[d]) && report->days[d] != first_day) continue;
        source_days.push_back(
            DayRow{r.domain, report->days[d], ip, shares[d], r.begin, r.end, {&source.names}});
      }
      source_reports.push_back(
          SourceReportRow{r.domain, ip, &r, source.records, source.figures.messages});
    }
    for (const DayFigures& day : report->report_days) {
      if (AllZero(day.figures)) continue;
      domain_days.push_back(DomainDayRow{r.domain, day.day, r.reporter_key, day.figures});
    }
  }

  source_days.resize(SortAndMerge(
      source_days, [](const DayRow& row) { return row.Key(); },
      [](DayRow& into, const DayRow& row) {
        Add(into.figures, row.figures);
        into.first_seen = std::min(into.first_seen, row.first_seen);
        into.last_seen = std::max(into.last_seen, row.last_seen);
        into.names.insert(into.names.end(), row.names.begin(), row.names.end());
      }));
  std::string names;
  for (const DayRow& row : source_days) {
    NamesJson(row.names, names);
    upsert_source_day_.Bind(1, row.domain).Bind(2, row.day).Bind(3, row.source_ip);
    BindFigures(upsert_source_day_, 4, row.figures);
    upsert_source_day_.Bind(11, row.first_seen)
        .Bind(12, row.last_seen)
        .Bind(13, std::string_view(names));
    if (auto done = upsert_source_day_.Run(); !done) return done;
  }

  std::sort(source_reports.begin(), source_reports.end(),
            [](const SourceReportRow& a, const SourceReportRow& b) { return a.Key() < b.Key(); });
  for (const SourceReportRow& row : source_reports) {
    insert_source_report_.Bind(1, row.domain)
        .Bind(2, row.source_ip)
        .Bind(3, row.report->begin)
        .Bind(4, row.report->report_pk)
        .Bind(5, row.report->end)
        .Bind(6, row.records)
        .Bind(7, row.messages);
    if (auto done = insert_source_report_.Run(); !done) return done;
  }

  // reporter_days first: merging domain_days by (domain, day) folds the
  // reporters together.
  std::vector<DomainDayRow> reporter_days = domain_days;
  reporter_days.resize(SortAndMerge(
      reporter_days, [](const DomainDayRow& row) { return row.ReporterKey(); },
      [](DomainDayRow& into, const DomainDayRow& row) { Add(into.figures, row.figures); }));
  for (const DomainDayRow& row : reporter_days) {
    upsert_reporter_day_.Bind(1, row.domain)
        .Bind(2, row.day)
        .Bind(3, row.reporter_key)
        .Bind(4, row.figures.messages)
        .Bind(5, row.figures.dmarc_pass);
    if (auto done = upsert_reporter_day_.Run(); !done) return done;
  }

  domain_days.resize(SortAndMerge(
      domain_days, [](const DomainDayRow& row) { return row.DomainKey(); },
      [](DomainDayRow& into, const DomainDayRow& row) { Add(into.figures, row.figures); }));
  for (const DomainDayRow& row : domain_days) {
    upsert_domain_day_.Bind(1, row.domain).Bind(2, row.day);
    BindFigures(upsert_domain_day_, 3, row.figures);
    if (auto done = upsert_domain_day_.Run(); !done) return done;
  }
  return {};
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

    writer.BeginReport();
    for (const parser::AggregateRecord& record : rows) writer.AddRecord(record);
    writer.EndReport(report);
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
