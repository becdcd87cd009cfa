#include "server/ingest_command.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "server/ingest_queue.hpp"
#include "server/inputs.hpp"
#include "server/logging.hpp"

namespace dmarcd::server {
namespace {

constexpr size_t kProgressThreshold = 20;

struct Totals {
  uint64_t files = 0;
  uint64_t envelopes = 0;
  uint64_t stored = 0;
  uint64_t duplicate = 0;
  uint64_t rejected = 0;
  uint64_t records = 0;
  uint64_t unstored = 0;
};

Result<std::string> ReadInput(const std::string& path) {
  if (path == "-") {
    std::ostringstream buffer;
    buffer << std::cin.rdbuf();
    if (std::cin.bad()) return MakeError(ErrorCode::kIo, "cannot read stdin");
    return buffer.str();
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return MakeError(ErrorCode::kIo, "cannot open " + path);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) return MakeError(ErrorCode::kIo, "cannot read " + path);
  return bytes;
}

void Count(const storage::EnvelopeOutcome& outcome, Totals& totals) {
  totals.stored += outcome.Count(storage::PartStatus::kStored);
  totals.duplicate += outcome.Count(storage::PartStatus::kDuplicate);
  totals.rejected += outcome.Count(storage::PartStatus::kRejected);
  totals.records += outcome.Records();
}

void PrintParts(const parser::Envelope& envelope, const storage::EnvelopeOutcome& outcome,
                std::ostream& out) {
  for (const storage::PartOutcome& part : outcome.parts) {
    out << "origin=" << envelope.origin << " part=\"" << part.name
        << "\" outcome=" << storage::PartStatusName(part.status);
    if (part.error) {
      out << " reason=\"" << part.error->ToString() << "\"";
    } else if (part.failure) {
      out << " failure_report=" << part.report_pk << " domain=" << part.domain;
    } else {
      out << " report_id=\"" << part.report_id << "\" domain=" << part.domain
          << " records=" << part.records << " messages=" << part.messages;
    }
    out << "\n";
  }
}

}  // namespace

IngestExit RunIngest(const Config& config, const IngestOptions& options, std::ostream& out,
                     std::ostream& err) {
  const auto start = std::chrono::steady_clock::now();
  auto inputs = CollectInputs(options.paths);
  if (!inputs) {
    err << "dmarcd ingest: " << inputs.error().message << "\n";
    return IngestExit::kUsage;
  }

  storage::OpenOptions open_options;
  open_options.busy_timeout_ms = config.database.busy_timeout;
  auto db = storage::Database::Open(config.database.path, open_options);
  if (!db) {
    err << "dmarcd ingest: " << config.database.path << ": " << db.error().ToString() << "\n";
    return IsTransient(db.error().code) ? IngestExit::kUnstored : IngestExit::kUsage;
  }
  storage::Writer writer(**db, config.limits);
  writer.SetFailurePrivacy(FailurePrivacyOf(config));

  Totals totals;
  const bool progress = isatty(STDERR_FILENO) == 1 && inputs->size() > kProgressThreshold;
  for (const std::string& path : *inputs) {
    ++totals.files;
    if (progress) {
      std::fprintf(stderr, "\ringest: %llu/%zu", static_cast<unsigned long long>(totals.files),
                   inputs->size());
    }

    auto bytes = ReadInput(path);
    if (!bytes) {
      err << "dmarcd ingest: " << bytes.error().ToString() << "\n";
      ++totals.unstored;
      continue;
    }

    const std::string origin = path == "-" ? "stdin" : "file:" + path;
    std::vector<parser::Envelope> envelopes;
    if (IsMbox(*bytes)) {
      std::vector<std::string> messages = SplitMbox(*bytes);
      for (size_t i = 0; i < messages.size(); ++i) {
        envelopes.push_back({std::move(messages[i]), origin + "#" + std::to_string(i + 1)});
      }
    } else {
      envelopes.push_back({std::move(*bytes), origin});
    }

    for (const parser::Envelope& envelope : envelopes) {
      ++totals.envelopes;
      auto outcome = IngestWithRetry(writer, envelope);
      if (!outcome) {
        err << "dmarcd ingest: " << envelope.origin
            << ": not stored: " << outcome.error().ToString() << "\n";
        ++totals.unstored;
        continue;
      }
      Count(*outcome, totals);
      if (options.verbose) PrintParts(envelope, *outcome, out);
    }
  }
  if (progress) std::fprintf(stderr, "\n");

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char line[256];
  std::snprintf(line, sizeof line,
                "ingest: files=%llu envelopes=%llu stored=%llu duplicate=%llu rejected=%llu "
                "records=%llu seconds=%.2f\n",
                static_cast<unsigned long long>(totals.files),
                static_cast<unsigned long long>(totals.envelopes),
                static_cast<unsigned long long>(totals.stored),
                static_cast<unsigned long long>(totals.duplicate),
                static_cast<unsigned long long>(totals.rejected),
                static_cast<unsigned long long>(totals.records), seconds);
  out << line << std::flush;

  if (totals.unstored > 0) {
    err << "dmarcd ingest: " << totals.unstored << " input(s) not stored; run again later\n";
    return IngestExit::kUnstored;
  }
  return totals.rejected > 0 ? IngestExit::kRejected : IngestExit::kOk;
}

}  // namespace dmarcd::server
