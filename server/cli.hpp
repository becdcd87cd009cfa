// The `dmarcd` command line (CLI11): subcommands serve, ingest, reparse,
// token add|list|revoke, migrate and version, each with the global options
// --config FILE, --db FILE and --log-level LEVEL.
#pragma once

namespace dmarcd::server {

// Parses the arguments, loads the configuration and runs the command.
// Returns the process exit status: 2 for bad usage or configuration (and
// for no command at all, after printing the help). May throw only for
// bugs; main catches.
int RunCli(int argc, char** argv);

}  // namespace dmarcd::server
