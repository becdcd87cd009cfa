// `dmarcd ingest PATH...`: reads files, folders, mbox files and stdin and
// stores each envelope through storage::Writer::Ingest, directly (no
// server needs to run; SQLite serialises this writer with a running one).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "server/config.hpp"

namespace dmarcd::server {

// Exit statuses of `dmarcd ingest`, documented in its --help.
enum class IngestExit {
  kOk = 0,        // nothing rejected
  kRejected = 1,  // some input was rejected (kept in the rejected table)
  kUsage = 2,     // bad usage or configuration
  kUnstored = 3,  // a transient or database failure left input unstored
};

struct IngestOptions {
  std::vector<std::string> paths;  // files, folders, or "-" for stdin
  bool verbose = false;            // one line per envelope part on `out`
};

// Prints the summary line
//   ingest: files=N envelopes=N stored=N duplicate=N rejected=N records=N seconds=X.XX
// on `out` (stored/duplicate/rejected count report parts), errors on `err`,
// and a progress indicator on stderr when it is a terminal and there are
// more than 20 inputs.
IngestExit RunIngest(const Config& config, const IngestOptions& options, std::ostream& out,
                     std::ostream& err);

}  // namespace dmarcd::server
