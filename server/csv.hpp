// CSV cells and rows for every REST route that answers text/csv, so the
// quoting and the formula-injection guard are the same everywhere.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace dmarcd::server {

// One cell as RFC 4180 section 2 writes it: quoted when it holds a comma, a
// quote, CR or LF, with every quote doubled. A cell that a spreadsheet would
// read as a formula (first character '=', '+', '-', '@', tab or CR, OWASP's
// CSV injection rule) is prefixed with a single quote first, so the value
// shows as text. Report fields come from anyone on the internet, so every
// cell goes through here. Bytes are copied as they are; the caller passes
// UTF-8.
std::string CsvCell(std::string_view value);

// The cells joined by commas, each through CsvCell, ending in CRLF
// (RFC 4180 section 2, rule 1).
std::string CsvRow(std::span<const std::string> cells);

}  // namespace dmarcd::server
