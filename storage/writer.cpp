#include "storage/writer.hpp"

#include <sqlite3.h>

#include <optional>
#include <utility>

#include "parser/pipeline.hpp"
#include "storage/envelope_store.hpp"
#include "storage/statement.hpp"

namespace dmarcd::storage {

std::string_view PartStatusName(PartStatus status) {
  switch (status) {
    case PartStatus::kStored:
      return "stored";
    case PartStatus::kDuplicate:
      return "duplicate";
    case PartStatus::kRejected:
      return "rejected";
  }
  return "rejected";
}

int EnvelopeOutcome::Count(PartStatus status) const {
  int count = 0;
  for (const PartOutcome& part : parts) {
    count += part.status == status ? 1 : 0;
  }
  return count;
}

uint64_t EnvelopeOutcome::Records() const {
  uint64_t records = 0;
  for (const PartOutcome& part : parts) {
    records += part.status == PartStatus::kStored ? part.records : 0;
  }
  return records;
}

PartStatus EnvelopeOutcome::Overall() const {
  if (Count(PartStatus::kStored) > 0) {
    return PartStatus::kStored;
  }
  if (Count(PartStatus::kDuplicate) > 0) {
    return PartStatus::kDuplicate;
  }
  return PartStatus::kRejected;
}

class Writer::Impl {
 public:
  Impl(Database& db, const parser::Limits& limits) : db_(db), limits_(limits), store_(db) {}

  Result<EnvelopeOutcome> Ingest(const parser::Envelope& envelope,
                                 const PreparedEnvelope* prepared);
  Result<EnvelopeOutcome> IngestSource(parser::EnvelopeSource& source);
  Result<void> BeginBatch();
  Result<void> CommitBatch();
  void AbandonBatch();
  Result<ReparseOutcome> Reparse(std::optional<int64_t> rejected_pk);
  void SetFailurePrivacy(const FailurePrivacy& privacy) {
    privacy_ = privacy;
    store_.SetFailurePrivacy(privacy);
  }

 private:
  Result<void> ReparseRow(int64_t id, ReparseOutcome& totals);
  // The transaction (or, in a batch, the savepoint) of one envelope.
  Result<void> BeginEnvelope();
  Result<EnvelopeOutcome> FailEnvelope(Error error);
  Result<EnvelopeOutcome> FinishEnvelope();

  Database& db_;
  parser::Limits limits_;
  EnvelopeStore store_;
  FailurePrivacy privacy_;
  bool in_batch_ = false;
  // The roll-ups held before the current envelope (EnvelopeStore::RollupMark).
  size_t envelope_mark_ = 0;
  // A fault inside the batch that SQLite answered by rolling the whole
  // transaction back: CommitBatch must not pretend anything was stored.
  std::optional<Error> batch_lost_;
};

Result<void> Writer::Impl::BeginBatch() {
  if (in_batch_) {
    return MakeError(ErrorCode::kInternal, "a batch is already open");
  }
  if (auto begun = db_.Exec("BEGIN IMMEDIATE"); !begun) {
    return begun;
  }
  in_batch_ = true;
  batch_lost_.reset();
  // Roll-ups wait in memory for one sorted write before the commit.
  store_.RollBackRollups(0);
  store_.HoldRollups(true);
  return {};
}

Result<void> Writer::Impl::CommitBatch() {
  if (!in_batch_) {
    return MakeError(ErrorCode::kInternal, "no batch is open");
  }
  in_batch_ = false;
  store_.HoldRollups(false);
  if (!batch_lost_) {
    if (auto flushed = store_.FlushRollups(); !flushed) batch_lost_ = flushed.error();
  }
  store_.RollBackRollups(0);
  if (batch_lost_) {
    if (sqlite3_get_autocommit(db_.Handle()) == 0) {
      db_.Exec("ROLLBACK");
    }
    // The loss ends with the batch: an envelope stored on its own next
    // (the caller's retry) starts afresh, or the writer would stay stuck
    // on a fault long gone (space freed, the lock released).
    Error lost = std::move(*batch_lost_);
    batch_lost_.reset();
    return tl::unexpected(std::move(lost));
  }
  if (auto committed = db_.Exec("COMMIT"); !committed) {
    db_.Exec("ROLLBACK");
    return committed;
  }
  return {};
}

void Writer::Impl::AbandonBatch() {
  if (!in_batch_) {
    return;
  }
  in_batch_ = false;
  batch_lost_.reset();
  store_.HoldRollups(false);
  store_.RollBackRollups(0);
  if (sqlite3_get_autocommit(db_.Handle()) == 0) {
    db_.Exec("ROLLBACK");
  }
}

Result<void> Writer::Impl::BeginEnvelope() {
  if (batch_lost_) {
    return tl::unexpected(*batch_lost_);
  }
  envelope_mark_ = store_.RollupMark();
  // IMMEDIATE takes the write lock now, so a busy database fails here,
  // before any parsing, rather than at the first insert. In a batch the
  // lock is held already and a savepoint stands in for the transaction.
  return db_.Exec(in_batch_ ? "SAVEPOINT envelope" : "BEGIN IMMEDIATE");
}

Result<EnvelopeOutcome> Writer::Impl::FailEnvelope(Error error) {
  if (!in_batch_) {
    db_.Exec("ROLLBACK");
    store_.RollBackRollups(0);
  } else if (sqlite3_get_autocommit(db_.Handle()) != 0) {
    // SQLite gave up the whole transaction (a full disk, an I/O error):
    // the envelopes before this one in the batch are gone too.
    batch_lost_ = error;
    store_.RollBackRollups(0);
  } else {
    db_.Exec("ROLLBACK TO envelope");
    db_.Exec("RELEASE envelope");
    store_.RollBackRollups(envelope_mark_);
  }
  return tl::unexpected(std::move(error));
}

Result<EnvelopeOutcome> Writer::Impl::FinishEnvelope() {
  auto outcome = store_.FinishEnvelope();
  if (!outcome) {
    return FailEnvelope(outcome.error());
  }
  if (auto committed = db_.Exec(in_batch_ ? "RELEASE envelope" : "COMMIT"); !committed) {
    return FailEnvelope(committed.error());
  }
  // Held roll-ups past the cap are written now, in the batch's transaction
  // but outside any envelope's savepoint: a fault there spoils the batch.
  if (in_batch_ && store_.HeldRollupSources() >= kRollupFlushSources) {
    if (auto flushed = store_.FlushRollups(); !flushed) {
      batch_lost_ = flushed.error();
      db_.Exec("ROLLBACK");
      return tl::unexpected(flushed.error());
    }
  }
  return outcome;
}

Result<EnvelopeOutcome> Writer::Impl::Ingest(const parser::Envelope& envelope,
                                             const PreparedEnvelope* prepared) {
  if (auto begun = BeginEnvelope(); !begun) {
    return tl::unexpected(begun.error());
  }

  // A failure report is cut down to what the privacy settings keep before
  // any of it is written, the raw archive included (failure_store.hpp). A
  // prepared envelope is one MayBeFailureReport turned down, which those
  // settings leave as it is, so its recording and archive copy hold.
  std::optional<parser::Envelope> kept;
  if (prepared == nullptr) {
    auto cut = ApplyFailurePrivacy(db_, envelope, privacy_);
    if (!cut) {
      return FailEnvelope(cut.error());
    }
    kept = std::move(*cut);
  }
  const parser::Envelope& stored = kept ? *kept : envelope;

  if (auto begun = store_.BeginEnvelope(stored, prepared); !begun) {
    return FailEnvelope(begun.error());
  }
  auto parsed = prepared != nullptr ? parser::ReplayEnvelope(prepared->recorded, store_)
                                    : parser::ParseEnvelope(stored, limits_, store_);
  if (!parsed) {
    return FailEnvelope(parsed.error());
  }
  return FinishEnvelope();
}

Result<EnvelopeOutcome> Writer::Impl::IngestSource(parser::EnvelopeSource& source) {
  if (auto begun = BeginEnvelope(); !begun) {
    return tl::unexpected(begun.error());
  }
  if (auto begun = store_.BeginEnvelopeSource(source); !begun) {
    return FailEnvelope(begun.error());
  }
  if (auto parsed = parser::ParseEnvelopeSource(source, limits_, store_); !parsed) {
    return FailEnvelope(parsed.error());
  }
  return FinishEnvelope();
}

Result<Writer::ReparseOutcome> Writer::Impl::Reparse(std::optional<int64_t> rejected_pk) {
  std::vector<int64_t> ids;
  if (rejected_pk) {
    auto check = Statement::Prepare(db_.Handle(), "SELECT id FROM rejected WHERE id = ?");
    if (!check) {
      return tl::unexpected(check.error());
    }
    check->Bind(1, *rejected_pk);
    auto found = check->Step();
    if (!found) {
      return tl::unexpected(found.error());
    }
    if (!*found) {
      return MakeError(ErrorCode::kNotFound,
                       "no rejected input with id " + std::to_string(*rejected_pk));
    }
    ids.push_back(*rejected_pk);
  } else {
    auto list = Statement::Prepare(
        db_.Handle(), "SELECT id FROM rejected WHERE recovered_at IS NULL ORDER BY id");
    if (!list) {
      return tl::unexpected(list.error());
    }
    for (;;) {
      auto row = list->Step();
      if (!row) {
        return tl::unexpected(row.error());
      }
      if (!*row) {
        break;
      }
      ids.push_back(list->Int(0));
    }
  }

  ReparseOutcome totals;
  for (const int64_t id : ids) {
    if (auto done = ReparseRow(id, totals); !done) {
      return tl::unexpected(done.error());
    }
  }
  return totals;
}

// One transaction per row: a row that fails for a transient reason leaves
// the rows before it done.
Result<void> Writer::Impl::ReparseRow(int64_t id, ReparseOutcome& totals) {
  if (auto begun = db_.Exec("BEGIN IMMEDIATE"); !begun) {
    return begun;
  }
  auto fail = [this](Error error) -> Result<void> {
    db_.Exec("ROLLBACK");
    store_.RollBackRollups(0);
    return tl::unexpected(std::move(error));
  };

  auto load = Statement::Prepare(
      db_.Handle(),
      "SELECT bytes, raw_input_id, recovered_at IS NOT NULL FROM rejected WHERE id = ?");
  if (!load) {
    return fail(load.error());
  }
  load->Bind(1, id);
  auto found = load->Step();
  if (!found) {
    return fail(found.error());
  }
  // A recovered row is done: parsing it again would only find duplicates.
  if (!*found || load->Int(2) != 0) {
    db_.Exec("ROLLBACK");
    return {};
  }
  parser::Envelope envelope{load->Blob(0), "reparse:" + std::to_string(id)};
  const int64_t raw_pk = load->IsNull(1) ? 0 : load->Int(1);
  load.value() = Statement();

  // A failure report filed before dmarcd read them is stored as the
  // privacy settings say, like a new one.
  auto kept = ApplyFailurePrivacy(db_, envelope, privacy_);
  if (!kept) {
    return fail(kept.error());
  }
  const parser::Envelope& parsed_envelope = *kept ? **kept : envelope;

  if (auto begun = store_.BeginReparse(parsed_envelope, id, raw_pk); !begun) {
    return fail(begun.error());
  }
  if (auto parsed = parser::ParseEnvelope(parsed_envelope, limits_, store_); !parsed) {
    return fail(parsed.error());
  }
  auto outcome = store_.FinishEnvelope();
  if (!outcome) {
    return fail(outcome.error());
  }

  ++totals.tried;
  const bool recovered = outcome->Count(PartStatus::kStored) > 0;
  if (recovered) {
    auto mark =
        Statement::Prepare(db_.Handle(), "UPDATE rejected SET recovered_at = ? WHERE id = ?");
    auto link = Statement::Prepare(
        db_.Handle(),
        "INSERT OR IGNORE INTO rejected_recoveries (rejected_id, report_id) VALUES (?, ?)");
    if (!mark || !link) {
      return fail(!mark ? mark.error() : link.error());
    }
    if (auto marked = mark->Bind(1, UnixNow()).Bind(2, id).Run(); !marked) {
      return fail(marked.error());
    }
    for (const PartOutcome& part : outcome->parts) {
      // rejected_recoveries links aggregate reports; a failure report
      // counts as a recovery without a link.
      if (part.status != PartStatus::kStored || part.failure) {
        continue;
      }
      if (auto linked = link->Bind(1, id).Bind(2, part.report_pk).Run(); !linked) {
        return fail(linked.error());
      }
    }
    ++totals.recovered;
  } else {
    // The first reason the parser gives now replaces the old one.
    const Error* reason = nullptr;
    for (const PartOutcome& part : outcome->parts) {
      if (part.status == PartStatus::kRejected && part.error) {
        reason = &*part.error;
        break;
      }
    }
    if (reason != nullptr) {
      auto update = Statement::Prepare(db_.Handle(),
                                       "UPDATE rejected SET code = ?, message = ? WHERE id = ?");
      if (!update) {
        return fail(update.error());
      }
      update->Bind(1, ErrorCodeName(reason->code))
          .Bind(2, std::string_view(reason->message))
          .Bind(3, id);
      if (auto updated = update->Run(); !updated) {
        return fail(updated.error());
      }
    }
    ++totals.still_rejected;
  }

  if (auto committed = db_.Exec("COMMIT"); !committed) {
    return fail(committed.error());
  }
  totals.outcomes.push_back(std::move(*outcome));
  return {};
}

Writer::Writer(Database& db, const parser::Limits& limits)
    : impl_(std::make_unique<Impl>(db, limits)) {}

Writer::~Writer() = default;

void Writer::SetFailurePrivacy(const FailurePrivacy& privacy) { impl_->SetFailurePrivacy(privacy); }

Result<EnvelopeOutcome> Writer::Ingest(const parser::Envelope& envelope,
                                       const PreparedEnvelope* prepared) {
  return impl_->Ingest(envelope, prepared);
}

Result<EnvelopeOutcome> Writer::IngestSource(parser::EnvelopeSource& source) {
  return impl_->IngestSource(source);
}

Result<void> Writer::BeginBatch() { return impl_->BeginBatch(); }

Result<void> Writer::CommitBatch() { return impl_->CommitBatch(); }

void Writer::AbandonBatch() { impl_->AbandonBatch(); }

Result<Writer::ReparseOutcome> Writer::Reparse(std::optional<int64_t> rejected_pk) {
  return impl_->Reparse(rejected_pk);
}

}  // namespace dmarcd::storage
