// `dmarcd serve`: the HTTP server with the REST API and the dashboard.
#pragma once

#include <optional>
#include <string>

#include "server/config.hpp"

namespace dmarcd::server {

struct ServeOptions {
  // After binding, the bound port is written to this file (written whole,
  // then renamed into place, so a reader never sees half of it).
  std::optional<std::string> port_file;
};

// Opens and migrates the database, starts the writer thread (IngestQueue),
// the read-only connection pool and the HTTP server, and runs until SIGINT
// or SIGTERM; then stops accepting, stores what is queued and closes the
// database. Returns the exit status: 0 after a clean stop, 2 for a bad
// configuration, 3 when the database or the port cannot be opened.
int RunServe(const Config& config, const ServeOptions& options);

}  // namespace dmarcd::server
