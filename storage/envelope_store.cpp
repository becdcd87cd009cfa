#include "storage/envelope_store.hpp"

#include <openssl/evp.h>
#include <sqlite3.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>
#include <span>
#include <utility>

#include "storage/ascii.hpp"
#include "storage/day_shares.hpp"
#include "storage/prepared_envelope.hpp"
#include "storage/tokens.hpp"

namespace dmarcd::storage {
namespace {

constexpr int64_t kLatestTime = 253402300799;  // 9999-12-31T23:59:59Z
constexpr uint64_t kMaxRangeDays = 366;

// The parser accepts any ordered pair of 64-bit times (a range of weeks is
// real); the day split needs one row per day, so a range no reporter sends
// is refused here rather than written as millions of rows.
Result<void> CheckDateRange(int64_t begin, int64_t end) {
  if (begin < 0 || end > kLatestTime) {
    return MakeError(ErrorCode::kBadDateRange, "date range " + std::to_string(begin) + " to " +
                                                   std::to_string(end) +
                                                   " lies outside the years 1970 to 9999");
  }
  // end >= begin (the parser checked), so the difference fits in 64 bits.
  const uint64_t span = static_cast<uint64_t>(end) - static_cast<uint64_t>(begin);
  if (span > kMaxRangeDays * kSecondsPerDay) {
    return MakeError(ErrorCode::kBadDateRange,
                     "date range of " + std::to_string(span / kSecondsPerDay) +
                         " days is longer than the " + std::to_string(kMaxRangeDays) +
                         " days dmarcd accepts");
  }
  return {};
}

// Chunks of the archive copies: large enough that the per-call cost of
// zlib, OpenSSL and SQLite's blob I/O vanishes, small beside the memory
// target of a big ingest.
constexpr size_t kCopyChunk = size_t{256} << 10;

// SHA-256 (FIPS 180-4) over bytes that come in chunks, by OpenSSL.
class Sha256Stream {
 public:
  Sha256Stream() : context_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr);
  }
  void Update(std::string_view bytes) {
    EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size());
  }
  std::string FinishHex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    EVP_DigestFinal_ex(context_.get(), digest.data(), &size);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (unsigned int i = 0; i < size; ++i) {
      hex += kHex[digest[i] >> 4];
      hex += kHex[digest[i] & 0x0f];
    }
    return hex;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context_;
};

// One pass over the source, chunk by chunk.
template <typename Visit>
Result<void> ForEachChunk(parser::EnvelopeSource& source, std::string& buffer, Visit&& visit) {
  if (auto rewound = source.Rewind(); !rewound) {
    return rewound;
  }
  for (;;) {
    auto read = source.Read(buffer);
    if (!read) {
      return tl::unexpected(read.error());
    }
    if (*read == 0) {
      return {};
    }
    if (auto done = visit(std::string_view(buffer.data(), *read)); !done) {
      return done;
    }
  }
}

template <typename Visit>
Result<void> ForEachFileChunk(std::FILE* file, std::string& buffer, Visit&& visit) {
  std::rewind(file);
  for (;;) {
    const size_t read = std::fread(buffer.data(), 1, buffer.size(), file);
    if (read > 0) {
      if (auto done = visit(std::string_view(buffer.data(), read)); !done) {
        return done;
      }
    }
    if (read < buffer.size()) {
      if (std::ferror(file) != 0) {
        return MakeError(ErrorCode::kIo, "cannot read back the compressed archive copy");
      }
      return {};
    }
  }
}

struct Spooled {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file;
  uint64_t size = 0;
};

// GzipFast for a source: deflated chunk by chunk into an anonymous
// temporary file (tmpfile, removed when closed).
Result<Spooled> DeflateToFile(parser::EnvelopeSource& source, std::string& buffer) {
  Spooled spooled{{std::tmpfile(), &std::fclose}, 0};
  if (!spooled.file) {
    return MakeError(ErrorCode::kIo, "cannot create a temporary file for the archive copy");
  }
  z_stream stream{};
  constexpr int kGzipWindowBits = 15 + 16;  // zlib: +16 selects the gzip wrapper
  if (deflateInit2(&stream, 1, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return MakeError(ErrorCode::kInternal, "zlib: cannot start deflate");
  }
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&stream, &deflateEnd);
  std::string out(kCopyChunk, '\0');
  auto pump = [&](std::string_view chunk, int flush) -> Result<void> {
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(chunk.data()));
    stream.avail_in = static_cast<uInt>(chunk.size());
    int rc = Z_OK;
    do {
      stream.next_out = reinterpret_cast<Bytef*>(out.data());
      stream.avail_out = static_cast<uInt>(out.size());
      rc = deflate(&stream, flush);
      const size_t produced = out.size() - stream.avail_out;
      if (std::fwrite(out.data(), 1, produced, spooled.file.get()) != produced) {
        return MakeError(ErrorCode::kIo, "cannot write the compressed archive copy");
      }
      spooled.size += produced;
    } while (stream.avail_out == 0 || (flush == Z_FINISH && rc == Z_OK));
    if (rc == Z_STREAM_ERROR) {
      return MakeError(ErrorCode::kInternal, "zlib: deflate failed");
    }
    return {};
  };
  auto deflated =
      ForEachChunk(source, buffer, [&](std::string_view chunk) { return pump(chunk, Z_NO_FLUSH); });
  if (!deflated) {
    return tl::unexpected(deflated.error());
  }
  if (auto finished = pump({}, Z_FINISH); !finished) {
    return tl::unexpected(finished.error());
  }
  if (std::fflush(spooled.file.get()) != 0) {
    return MakeError(ErrorCode::kIo, "cannot write the compressed archive copy");
  }
  return spooled;
}

}  // namespace

EnvelopeStore::EnvelopeStore(Database& db) : db_(db) {}

void EnvelopeStore::StartEnvelope(const std::string& origin) {
  outcome_ = EnvelopeOutcome{};
  transient_.reset();
  doc_ = Document{};
  origin_ = origin;
  received_at_ = UnixNow();
  source_ = nullptr;
  // Rows held from an envelope that failed before its flush went with its
  // transaction; in a group commit the Writer keeps track itself.
  if (!hold_rollups_) rollups_.Clear();
}

Result<void> EnvelopeStore::BeginEnvelope(const parser::Envelope& envelope,
                                          const PreparedEnvelope* prepared) {
  if (auto statements = PrepareStatements(); !statements) {
    return statements;
  }
  StartEnvelope(envelope.origin);
  reparsing_.reset();
  auto raw = ArchiveRaw(envelope, prepared);
  if (!raw) {
    return tl::unexpected(raw.error());
  }
  raw_pk_ = *raw;
  outcome_.raw_pk = raw_pk_;
  return {};
}

Result<void> EnvelopeStore::BeginEnvelopeSource(parser::EnvelopeSource& source) {
  if (auto prepared = PrepareStatements(); !prepared) {
    return prepared;
  }
  StartEnvelope(source.Origin());
  reparsing_.reset();
  auto raw = ArchiveSource(source);
  if (!raw) {
    return tl::unexpected(raw.error());
  }
  source_ = &source;
  raw_pk_ = *raw;
  outcome_.raw_pk = raw_pk_;
  return {};
}

Result<void> EnvelopeStore::BeginReparse(const parser::Envelope& envelope, int64_t rejected_pk,
                                         int64_t raw_pk) {
  if (auto prepared = PrepareStatements(); !prepared) {
    return prepared;
  }
  StartEnvelope(envelope.origin);
  reparsing_ = rejected_pk;
  raw_pk_ = raw_pk;
  outcome_.raw_pk = raw_pk_;
  return {};
}

Result<EnvelopeOutcome> EnvelopeStore::FinishEnvelope() {
  if (transient_) {
    return tl::unexpected(*transient_);
  }
  if (!hold_rollups_) {
    if (auto flushed = rollups_.Flush(); !flushed) {
      return tl::unexpected(flushed.error());
    }
  }
  return std::move(outcome_);
}

Result<void> EnvelopeStore::PrepareStatements() {
  if (prepared_) {
    return {};
  }
  sqlite3* db = db_.Handle();
  const std::pair<Statement*, const char*> statements[] = {
      {&find_raw_, "SELECT id FROM raw_inputs WHERE sha256 = ?"},
      {&insert_raw_,
       "INSERT INTO raw_inputs (sha256, size, compression, bytes, origin, received_at) "
       "VALUES (?, ?, ?, ?, ?, ?)"},
      {&find_report_,
       "SELECT id, records, messages FROM reports WHERE reporter_key = ? AND report_id = ? "
       "AND domain = ? AND date_begin = ? AND date_end = ?"},
      {&insert_report_,
       "INSERT INTO reports (reporter_key, org_name, org_email, extra_contact_info, report_id, "
       "domain, date_begin, date_end, version, namespace, generator, policy_adkim, policy_aspf, "
       "policy_p, policy_sp, policy_np, policy_pct, policy_fo, policy_testing, "
       "policy_discovery_method, raw_input_id, document_name, received_at, origin) "
       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {&insert_note_, "INSERT INTO report_notes (report_id, kind, seq, text) VALUES (?, ?, ?, ?)"},
      {&last_record_pk_, "SELECT COALESCE(MAX(id), 0) FROM records"},
      {&insert_reason_,
       "INSERT INTO record_reasons (record_id, seq, type, comment) VALUES (?, ?, ?, ?)"},
      {&finish_report_, "UPDATE reports SET records = ?, messages = ? WHERE id = ?"},
      {&insert_day_,
       "INSERT INTO report_days (report_id, day, domain, messages, dmarc_pass, "
       "dkim_aligned_pass, spf_aligned_pass, disposition_none, disposition_quarantine, "
       "disposition_reject) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {&find_rejected_, "SELECT id FROM rejected WHERE sha256 = ?"},
      {&insert_rejected_,
       "INSERT INTO rejected (received_at, origin, name, code, message, size, sha256, bytes, "
       "raw_input_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"},
  };
  for (const auto& [statement, sql] : statements) {
    auto prepared = Statement::Prepare(db, sql);
    if (!prepared) {
      return tl::unexpected(prepared.error());
    }
    *statement = std::move(*prepared);
  }
  prepared_ = true;
  return {};
}

Result<int64_t> EnvelopeStore::ArchiveRaw(const parser::Envelope& envelope,
                                          const PreparedEnvelope* prepared) {
  const std::string sha256 = prepared != nullptr ? prepared->sha256 : Sha256Hex(envelope.bytes);
  find_raw_.Bind(1, std::string_view(sha256));
  auto found = find_raw_.Step();
  if (!found) {
    return tl::unexpected(found.error());
  }
  const int64_t existing = *found ? find_raw_.Int(0) : 0;
  find_raw_.Reset();
  if (existing != 0) {
    return existing;
  }

  // Compressed only now, once the bytes are known to be new, unless the
  // preparation did it already.
  const bool compressed =
      prepared != nullptr ? prepared->compressed : ArrivedCompressed(envelope.bytes);
  std::string gzipped;
  std::string_view copy = envelope.bytes;
  if (!compressed) {
    if (prepared == nullptr) {
      auto packed = GzipArchiveCopy(envelope.bytes);
      if (!packed) {
        return tl::unexpected(packed.error());
      }
      gzipped = std::move(*packed);
    }
    copy = prepared != nullptr ? std::string_view(prepared->gzipped) : std::string_view(gzipped);
  }
  insert_raw_.Bind(1, std::string_view(sha256))
      .Bind(2, uint64_t{envelope.bytes.size()})
      .Bind(3, std::string_view(compressed ? "none" : "gzip"))
      .BindBlob(4, copy)
      .Bind(5, std::string_view(envelope.origin))
      .Bind(6, received_at_);
  if (auto inserted = insert_raw_.Run(); !inserted) {
    return tl::unexpected(inserted.error());
  }
  return sqlite3_last_insert_rowid(db_.Handle());
}

Result<int64_t> EnvelopeStore::ArchiveSource(parser::EnvelopeSource& source) {
  // First pass: the SHA-256 that names the envelope, and its first bytes,
  // which say whether it arrived compressed.
  Sha256Stream sha256;
  std::string head;
  std::string buffer(kCopyChunk, '\0');
  auto hashed = ForEachChunk(source, buffer, [&](std::string_view chunk) -> Result<void> {
    if (head.size() < 16) head.append(chunk.substr(0, 16 - head.size()));
    sha256.Update(chunk);
    return {};
  });
  if (!hashed) {
    return tl::unexpected(hashed.error());
  }
  const std::string digest = sha256.FinishHex();
  find_raw_.Bind(1, std::string_view(digest));
  auto found = find_raw_.Step();
  if (!found) {
    return tl::unexpected(found.error());
  }
  const int64_t existing = *found ? find_raw_.Int(0) : 0;
  find_raw_.Reset();
  if (existing != 0) {
    return existing;
  }

  // Second pass: the archive copy, written into a blob of the right size.
  // An uncompressed input is deflated into a temporary file first, since
  // its compressed size is only known at the end.
  const bool compressed = ArrivedCompressed(head);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> spool(nullptr, &std::fclose);
  uint64_t stored_size = source.Size();
  if (!compressed) {
    auto deflated = DeflateToFile(source, buffer);
    if (!deflated) {
      return tl::unexpected(deflated.error());
    }
    spool = std::move(deflated->file);
    stored_size = deflated->size;
  }
  insert_raw_.Bind(1, std::string_view(digest))
      .Bind(2, source.Size())
      .Bind(3, std::string_view(compressed ? "none" : "gzip"))
      .BindZeroBlob(4, stored_size)
      .Bind(5, std::string_view(source.Origin()))
      .Bind(6, received_at_);
  if (auto inserted = insert_raw_.Run(); !inserted) {
    return tl::unexpected(inserted.error());
  }
  const int64_t raw_pk = sqlite3_last_insert_rowid(db_.Handle());
  auto blob = BlobHandle::Open(db_.Handle(), "raw_inputs", "bytes", raw_pk, true);
  if (!blob) {
    return tl::unexpected(blob.error());
  }
  uint64_t offset = 0;
  auto write = [&](std::string_view chunk) -> Result<void> {
    if (offset + chunk.size() > stored_size) {
      return MakeError(ErrorCode::kIo, "the input grew while it was read: " + source.Origin());
    }
    auto written = blob->Write(chunk, offset);
    offset += chunk.size();
    return written;
  };
  auto copied = compressed ? ForEachChunk(source, buffer, write)
                           : ForEachFileChunk(spool.get(), buffer, write);
  if (!copied) {
    return tl::unexpected(copied.error());
  }
  if (offset != stored_size) {
    return MakeError(ErrorCode::kIo, "the input shrank while it was read: " + source.Origin());
  }
  return raw_pk;
}

// The envelope is the part: its archived bytes become the rejected row's,
// copied blob to blob. They are the gzip of the input when it arrived
// uncompressed, which Reparse reads as well as the input itself.
Result<int64_t> EnvelopeStore::RejectSource(const std::string& name, const Error& error) {
  auto raw = BlobHandle::Open(db_.Handle(), "raw_inputs", "bytes", raw_pk_, false);
  if (!raw) {
    return tl::unexpected(raw.error());
  }
  const uint64_t size = raw->Size();
  std::string buffer(kCopyChunk, '\0');
  Sha256Stream sha256;
  for (uint64_t offset = 0; offset < size; offset += buffer.size()) {
    const std::span<char> chunk(buffer.data(), std::min<uint64_t>(buffer.size(), size - offset));
    if (auto read = raw->Read(chunk, offset); !read) {
      return tl::unexpected(read.error());
    }
    sha256.Update(std::string_view(chunk.data(), chunk.size()));
  }
  const std::string digest = sha256.FinishHex();
  find_rejected_.Bind(1, std::string_view(digest));
  auto found = find_rejected_.Step();
  if (!found) {
    return tl::unexpected(found.error());
  }
  const int64_t existing = *found ? find_rejected_.Int(0) : 0;
  find_rejected_.Reset();
  if (existing != 0) {
    return existing;
  }

  insert_rejected_.Bind(1, received_at_)
      .Bind(2, std::string_view(origin_))
      .Bind(3, std::string_view(name))
      .Bind(4, ErrorCodeName(error.code))
      .Bind(5, std::string_view(error.message))
      .Bind(6, size)
      .Bind(7, std::string_view(digest))
      .BindZeroBlob(8, size)
      .Bind(9, raw_pk_);
  if (auto inserted = insert_rejected_.Run(); !inserted) {
    return tl::unexpected(inserted.error());
  }
  const int64_t rejected_pk = sqlite3_last_insert_rowid(db_.Handle());
  auto copy = BlobHandle::Open(db_.Handle(), "rejected", "bytes", rejected_pk, true);
  if (!copy) {
    return tl::unexpected(copy.error());
  }
  for (uint64_t offset = 0; offset < size; offset += buffer.size()) {
    const std::span<char> chunk(buffer.data(), std::min<uint64_t>(buffer.size(), size - offset));
    if (auto read = raw->Read(chunk, offset); !read) {
      return tl::unexpected(read.error());
    }
    if (auto written = copy->Write(std::string_view(chunk.data(), chunk.size()), offset);
        !written) {
      return tl::unexpected(written.error());
    }
  }
  return rejected_pk;
}

parser::AggregateSink& EnvelopeStore::OnAggregateBegin(const parser::DocumentInfo& doc) {
  doc_ = Document{};
  doc_.part.name = doc.name;
  doc_.rollup_mark = rollups_.Held();
  pending_records_.clear();
  // A savepoint per document: a report that fails half-way is undone alone,
  // and its good siblings in the same envelope stay.
  if (auto opened = db_.Exec("SAVEPOINT document"); !opened) {
    doc_.failure = opened.error();
  } else {
    doc_.savepoint = true;
  }
  return *this;
}

Result<parser::SinkAction> EnvelopeStore::OnHeader(const parser::AggregateHeader& header) {
  if (doc_.failure) {
    return tl::unexpected(*doc_.failure);
  }
  if (auto plausible = CheckDateRange(header.begin, header.end); !plausible) {
    return tl::unexpected(plausible.error());
  }
  const std::string reporter_key = header.ReporterKey();
  const std::string domain = AsciiLower(header.policy.domain);
  PartOutcome& part = doc_.part;
  part.org_name = header.org_name;
  part.report_id = header.report_id;
  part.domain = domain;
  part.begin = header.begin;
  part.end = header.end;

  // The same reporter, report id, policy domain and date range is the same
  // report, whatever else differs (DESIGN.md: some reporters reuse an id for
  // the next day, so the id alone is not enough).
  find_report_.Bind(1, std::string_view(reporter_key))
      .Bind(2, std::string_view(header.report_id))
      .Bind(3, std::string_view(domain))
      .Bind(4, header.begin)
      .Bind(5, header.end);
  auto found = find_report_.Step();
  if (!found) {
    return tl::unexpected(found.error());
  }
  if (*found) {
    doc_.duplicate = true;
    part.status = PartStatus::kDuplicate;
    part.report_pk = find_report_.Int(0);
    part.records = find_report_.Uint(1);
    part.messages = find_report_.Uint(2);
    find_report_.Reset();
    return parser::SinkAction::kStop;
  }
  find_report_.Reset();

  const auto& policy = header.policy;
  insert_report_.Bind(1, std::string_view(reporter_key))
      .Bind(2, std::string_view(header.org_name))
      .Bind(3, header.email)
      .Bind(4, header.extra_contact_info)
      .Bind(5, std::string_view(header.report_id))
      .Bind(6, std::string_view(domain))
      .Bind(7, header.begin)
      .Bind(8, header.end)
      .Bind(9, header.version)
      .Bind(10, header.xml_namespace)
      .Bind(11, header.generator)
      .Bind(12, policy.adkim)
      .Bind(13, policy.aspf)
      .Bind(14, policy.p)
      .Bind(15, policy.sp)
      .Bind(16, policy.np)
      .Bind(17, policy.pct ? std::optional<int64_t>(*policy.pct) : std::nullopt)
      .Bind(18, policy.fo)
      .Bind(19, policy.testing)
      .Bind(20, policy.discovery_method)
      .Bind(21, raw_pk_ != 0 ? std::optional<int64_t>(raw_pk_) : std::nullopt)
      .Bind(22, std::string_view(doc_.part.name))
      .Bind(23, received_at_)
      .Bind(24, std::string_view(origin_));
  if (auto inserted = insert_report_.Run(); !inserted) {
    return tl::unexpected(inserted.error());
  }
  part.status = PartStatus::kStored;
  part.report_pk = sqlite3_last_insert_rowid(db_.Handle());
  doc_.reporter_key = reporter_key;
  rollups_.BeginReport(RollupReport{part.report_pk, domain, reporter_key, part.begin, part.end});
  // The writer is alone in its transaction, so the next ids are its own.
  auto last = last_record_pk_.Step();
  if (!last) {
    return tl::unexpected(last.error());
  }
  next_record_pk_ = (*last ? last_record_pk_.Int(0) : 0) + 1;
  last_record_pk_.Reset();

  if (auto notes = InsertNotes(part.report_pk, "error", header.errors); !notes) {
    return tl::unexpected(notes.error());
  }
  return parser::SinkAction::kContinue;
}

Result<parser::SinkAction> EnvelopeStore::OnRecord(const parser::AggregateRecord& record) {
  // Every other figure is a part of the message total, so only it can wrap.
  uint64_t messages = 0;
  if (__builtin_add_overflow(doc_.totals.messages, record.count, &messages)) {
    return MakeError(ErrorCode::kInvalidValue,
                     "the record counts add up to more than 2^64 messages");
  }

  if (auto added = rollups_.AddRecord(record); !added) {
    return tl::unexpected(added.error());
  }

  // Figures are weighted by the record's message count (RFC 7489 Appendix C:
  // a row stands for `count` messages); DMARC passes when either aligned
  // identifier passed as the reporter evaluated it.
  Figures& totals = doc_.totals;
  const uint64_t count = record.count;
  ++doc_.part.records;
  totals.messages = messages;
  totals.dmarc_pass += record.DmarcPass() ? count : 0;
  totals.dkim_aligned_pass += record.policy_dkim == "pass" ? count : 0;
  totals.spf_aligned_pass += record.policy_spf == "pass" ? count : 0;
  totals.disposition_none += record.disposition == "none" ? count : 0;
  totals.disposition_quarantine += record.disposition == "quarantine" ? count : 0;
  totals.disposition_reject += record.disposition == "reject" ? count : 0;

  pending_records_.push_back(record);
  if (pending_records_.size() >= kRecordRows) {
    if (auto written = WriteRecords(); !written) {
      return tl::unexpected(written.error());
    }
  }
  return parser::SinkAction::kContinue;
}

Result<void> EnvelopeStore::OnEnd(const std::vector<std::string>& warnings) {
  if (auto written = WriteRecords(); !written) {
    return written;
  }
  PartOutcome& part = doc_.part;
  part.messages = doc_.totals.messages;
  part.warnings = warnings;

  for (const DayFigures& day : SplitOverDays(part.begin, part.end, doc_.totals)) {
    // A day whose shares are all zero holds no data: Timeseries lists only
    // days that have some.
    const Figures& f = day.figures;
    if (f.messages == 0 && f.dmarc_pass == 0 && f.dkim_aligned_pass == 0 &&
        f.spf_aligned_pass == 0 && f.disposition_none == 0 && f.disposition_quarantine == 0 &&
        f.disposition_reject == 0) {
      continue;
    }
    insert_day_.Bind(1, part.report_pk)
        .Bind(2, day.day)
        .Bind(3, std::string_view(part.domain))
        .Bind(4, f.messages)
        .Bind(5, f.dmarc_pass)
        .Bind(6, f.dkim_aligned_pass)
        .Bind(7, f.spf_aligned_pass)
        .Bind(8, f.disposition_none)
        .Bind(9, f.disposition_quarantine)
        .Bind(10, f.disposition_reject);
    if (auto inserted = insert_day_.Run(); !inserted) {
      return tl::unexpected(inserted.error());
    }
  }

  rollups_.EndReport();

  finish_report_.Bind(1, part.records).Bind(2, part.messages).Bind(3, part.report_pk);
  if (auto updated = finish_report_.Run(); !updated) {
    return tl::unexpected(updated.error());
  }
  if (auto notes = InsertNotes(part.report_pk, "warning", warnings); !notes) {
    return notes;
  }
  doc_.ended = true;
  return {};
}

void EnvelopeStore::OnAggregateEnd(const parser::DocumentInfo& doc, const Result<void>& outcome) {
  std::optional<Error> error;
  if (doc_.failure) {
    error = doc_.failure;
  } else if (!outcome) {
    error = outcome.error();
  } else if (!doc_.ended && !doc_.duplicate) {
    error = Error(ErrorCode::kNotAReport, "the document ended without a complete report");
  }

  if (!error) {
    if (auto released = db_.Exec("RELEASE document"); !released) {
      transient_ = released.error();
      return;
    }
    outcome_.parts.push_back(std::move(doc_.part));
    return;
  }

  // The report is rejected whole: nothing of it may stay (AggregateSink).
  rollups_.RollBackTo(doc_.rollup_mark);
  pending_records_.clear();
  if (doc_.savepoint) {
    auto undone = db_.Exec("ROLLBACK TO document");
    auto released = db_.Exec("RELEASE document");
    if (!undone || !released) {
      transient_ = !undone ? undone.error() : released.error();
      return;
    }
  }
  if (IsTransient(error->code)) {
    transient_ = *error;
    return;
  }
  RecordRejection(doc.name, doc.part_bytes, *error);
}

void EnvelopeStore::OnRejected(std::string_view name, std::string_view bytes, const Error& error) {
  RecordRejection(std::string(name), bytes, error);
}

void EnvelopeStore::OnFailureReport(std::string_view name, std::string_view bytes,
                                    const parser::FailureReport& report) {
  static_cast<void>(bytes);
  // One insert: nothing to undo on failure, and a failing insert is a
  // database fault, which spoils the envelope anyway.
  auto stored =
      failure_store_.Store(report, privacy_.redact_local_parts, raw_pk_, origin_, received_at_);
  if (!stored) {
    transient_ = stored.error();
    return;
  }
  PartOutcome part;
  part.status = stored->duplicate ? PartStatus::kDuplicate : PartStatus::kStored;
  part.failure = true;
  part.name = std::string(name);
  part.report_pk = stored->id;
  part.domain = stored->domain;
  part.begin = stored->arrived_at;
  part.end = stored->arrived_at;
  part.warnings = report.warnings;
  outcome_.parts.push_back(std::move(part));
}

void EnvelopeStore::RecordRejection(std::string name, std::string_view bytes, const Error& error) {
  PartOutcome part;
  part.status = PartStatus::kRejected;
  part.name = std::move(name);
  part.error = error;

  // Parsing a rejected row again must not file its bytes a second time:
  // the row itself takes the new reason (Reparse).
  if (reparsing_) {
    part.rejected_pk = *reparsing_;
    outcome_.parts.push_back(std::move(part));
    return;
  }

  if (source_ != nullptr && bytes.empty() && raw_pk_ != 0) {
    auto rejected = RejectSource(part.name, error);
    if (!rejected) {
      transient_ = rejected.error();
      return;
    }
    part.rejected_pk = *rejected;
    outcome_.parts.push_back(std::move(part));
    return;
  }

  const std::string sha256 = Sha256Hex(bytes);
  find_rejected_.Bind(1, std::string_view(sha256));
  auto found = find_rejected_.Step();
  if (!found) {
    transient_ = found.error();
    return;
  }
  part.rejected_pk = *found ? find_rejected_.Int(0) : 0;
  find_rejected_.Reset();

  if (part.rejected_pk == 0) {
    insert_rejected_.Bind(1, received_at_)
        .Bind(2, std::string_view(origin_))
        .Bind(3, std::string_view(part.name))
        .Bind(4, ErrorCodeName(error.code))
        .Bind(5, std::string_view(error.message))
        .Bind(6, uint64_t{bytes.size()})
        .Bind(7, std::string_view(sha256))
        .BindBlob(8, bytes)
        .Bind(9, raw_pk_ != 0 ? std::optional<int64_t>(raw_pk_) : std::nullopt);
    if (auto inserted = insert_rejected_.Run(); !inserted) {
      transient_ = inserted.error();
      return;
    }
    part.rejected_pk = sqlite3_last_insert_rowid(db_.Handle());
  }
  outcome_.parts.push_back(std::move(part));
}

Result<void> EnvelopeStore::WriteRecords() {
  const size_t count = pending_records_.size();
  if (count == 0) {
    return {};
  }
  sqlite3* db = db_.Handle();
  const int64_t first_pk = next_record_pk_;
  const uint64_t first_seq = doc_.part.records - count;
  const int64_t report_pk = doc_.part.report_pk;

  // Strings are bound without a copy: pending_records_ holds them until
  // each statement has run.
  auto records = insert_records_.Run(db, count, [&](Statement& statement, int p, size_t i) {
    const parser::AggregateRecord& record = pending_records_[i];
    statement.Bind(p, first_pk + static_cast<int64_t>(i))
        .Bind(p + 1, report_pk)
        .Bind(p + 2, first_seq + i)
        .BindStatic(p + 3, std::string_view(record.source_ip))
        .Bind(p + 4, record.count)
        .BindStatic(p + 5, record.disposition)
        .BindStatic(p + 6, record.policy_dkim)
        .BindStatic(p + 7, record.policy_spf)
        .BindStatic(p + 8, record.header_from)
        .BindStatic(p + 9, record.envelope_from)
        .BindStatic(p + 10, record.envelope_to);
  });
  if (!records) {
    return records;
  }

  // (record, result) of every DKIM and every SPF result, in order.
  std::vector<std::pair<size_t, size_t>> dkim;
  std::vector<std::pair<size_t, size_t>> spf;
  dkim.reserve(count);
  spf.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const parser::AggregateRecord& record = pending_records_[i];
    for (size_t k = 0; k < record.dkim.size(); ++k) dkim.emplace_back(i, k);
    for (size_t k = 0; k < record.spf.size(); ++k) spf.emplace_back(i, k);
    for (size_t k = 0; k < record.reasons.size(); ++k) {
      const auto& reason = record.reasons[k];
      insert_reason_.Bind(1, first_pk + static_cast<int64_t>(i))
          .Bind(2, uint64_t{k})
          .Bind(3, reason.type)
          .Bind(4, reason.comment);
      if (auto inserted = insert_reason_.Run(); !inserted) {
        return inserted;
      }
    }
  }
  auto dkim_rows = insert_dkim_.Run(db, dkim.size(), [&](Statement& statement, int p, size_t row) {
    const auto [i, k] = dkim[row];
    const auto& result = pending_records_[i].dkim[k];
    statement.Bind(p, first_pk + static_cast<int64_t>(i))
        .Bind(p + 1, uint64_t{k})
        .BindStatic(p + 2, result.domain)
        .BindStatic(p + 3, result.selector)
        .BindStatic(p + 4, std::string_view(result.result))
        .BindStatic(p + 5, result.human_result);
  });
  if (!dkim_rows) {
    return dkim_rows;
  }
  auto spf_rows = insert_spf_.Run(db, spf.size(), [&](Statement& statement, int p, size_t row) {
    const auto [i, k] = spf[row];
    const auto& result = pending_records_[i].spf[k];
    statement.Bind(p, first_pk + static_cast<int64_t>(i))
        .Bind(p + 1, uint64_t{k})
        .BindStatic(p + 2, result.domain)
        .BindStatic(p + 3, result.scope)
        .BindStatic(p + 4, std::string_view(result.result))
        .BindStatic(p + 5, result.human_result);
  });
  if (!spf_rows) {
    return spf_rows;
  }
  next_record_pk_ += static_cast<int64_t>(count);
  pending_records_.clear();
  return {};
}

Result<void> EnvelopeStore::InsertNotes(int64_t report_pk, std::string_view kind,
                                        const std::vector<std::string>& texts) {
  for (size_t i = 0; i < texts.size(); ++i) {
    insert_note_.Bind(1, report_pk)
        .Bind(2, kind)
        .Bind(3, uint64_t{i})
        .Bind(4, std::string_view(texts[i]));
    if (auto inserted = insert_note_.Run(); !inserted) {
      return inserted;
    }
  }
  return {};
}

}  // namespace dmarcd::storage
