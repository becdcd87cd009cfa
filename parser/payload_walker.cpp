#include "parser/payload_walker.hpp"

#include <algorithm>

#include "parser/document_stream.hpp"
#include "parser/zip_archive.hpp"

namespace dmarcd::parser {

PayloadWalker::PayloadWalker(EnvelopeHandler& handler, const Limits& limits)
    : handler_(handler), limits_(limits) {}

void PayloadWalker::Report(DocumentReport& report, const Result<void>& outcome) {
  if (!outcome && IsTransient(outcome.error().code)) fatal_ = outcome.error();

  if (report.begun) {
    handler_.OnAggregateEnd(report.info, outcome);
    return;
  }
  if (!outcome && !fatal_)
    handler_.OnRejected(report.info.name, report.info.part_bytes, outcome.error());
}

Result<void> PayloadWalker::CountInflated(uint64_t bytes) {
  inflated_ += bytes;
  if (inflated_ <= limits_.max_envelope_inflated_bytes) return {};
  return MakeError(ErrorCode::kTooLarge, "decompressed payloads of one envelope exceed " +
                                             std::to_string(limits_.max_envelope_inflated_bytes) +
                                             " bytes in total");
}

void PayloadWalker::WalkPayload(std::string name, std::string_view bytes, int depth) {
  DocumentReport report{DocumentInfo{std::move(name), bytes, 0}};
  DocumentStream stream(*this, report, depth);

  // Fed in slices even though the bytes are in memory: the XML parser and
  // the inflater see the same rhythm as for a zip member, and a stop or an
  // error ends the work early.
  Result<void> outcome;
  for (size_t at = 0; at < bytes.size() && !stream.Stopped(); at += kChunkBytes) {
    outcome = stream.Write(bytes.substr(at, kChunkBytes));
    if (!outcome) break;
  }
  if (outcome) outcome = stream.Finish();
  Report(report, outcome);
}

void PayloadWalker::WalkSource(std::string name, EnvelopeSource& source, std::string_view head,
                               int depth) {
  DocumentReport report{DocumentInfo{std::move(name), std::string_view(), 0}};
  DocumentStream stream(*this, report, depth);

  Result<void> outcome = stream.Write(head);
  std::string buffer(kChunkBytes, '\0');
  while (outcome && !stream.Stopped()) {
    auto read = source.Read(buffer);
    if (!read) {
      // The source failed, not the document: the caller tries again later.
      fatal_ = read.error();
      outcome = tl::unexpected(read.error());
    } else if (*read == 0) {
      break;
    } else {
      outcome = stream.Write(std::string_view(buffer.data(), *read));
    }
  }
  if (outcome) outcome = stream.Finish();
  Report(report, outcome);
}

Result<void> PayloadWalker::WalkZip(const std::string& name, std::string_view part_bytes,
                                    std::string_view zip_bytes, int depth) {
  auto archive = ZipArchive::Open(zip_bytes, limits_);
  if (!archive) return tl::unexpected(archive.error());

  int files = 0;
  for (uint64_t index = 0; index < archive->EntryCount() && !fatal_; ++index) {
    auto entry = archive->Entry(index);
    if (!entry) {
      handler_.OnRejected(name, part_bytes, entry.error());
      continue;
    }
    // Directory entries ("reports/") hold nothing; the member name is only
    // ever text in the document's name, never a path dmarcd opens.
    if (entry->directory) continue;
    ++files;

    DocumentReport report{DocumentInfo{name + "/" + entry->name, part_bytes, 0}};
    DocumentStream stream(*this, report, depth);
    auto outcome = archive->Read(index, stream);
    if (outcome) outcome = stream.Finish();
    Report(report, outcome);
  }

  if (files == 0) return MakeError(ErrorCode::kNoReport, "zip archive " + name + " holds no file");
  return {};
}

}  // namespace dmarcd::parser
