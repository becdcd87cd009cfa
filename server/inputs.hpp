// What `dmarcd ingest` reads: the files behind the paths it is given, and
// the messages inside an mbox file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "parser/error.hpp"

namespace dmarcd::server {

// Expands the command-line paths into the files to read, in order: a file
// as is; a folder recursively, sorted by name, skipping hidden entries
// (".name") and a Maildir's tmp/ (files still being delivered); "-" stays
// "-" (stdin). A Maildir's cur/ and new/ hold one message per file and need
// nothing special. kInvalidArgument when a path does not exist.
Result<std::vector<std::string>> CollectInputs(const std::vector<std::string>& paths);

// True for the mbox format: the first line is a "From " separator.
bool IsMbox(std::string_view bytes);

// Splits an mbox (mboxo or mboxrd, RFC 4155) into its messages: every line
// that begins with "From " starts a new message and is not part of it; one
// ">" is removed from lines of the form ">From ", ">>From " (mboxrd quoting);
// the blank line that separates messages is dropped.
std::vector<std::string> SplitMbox(std::string_view bytes);

}  // namespace dmarcd::server
