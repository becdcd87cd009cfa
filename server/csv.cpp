#include "server/csv.hpp"

namespace dmarcd::server {

std::string CsvCell(std::string_view value) {
  // OWASP "CSV Injection": Excel, LibreOffice and Google Sheets start a
  // formula at any of these; a leading quote makes the cell literal text.
  const bool formula =
      !value.empty() && std::string_view("=+-@\t\r").find(value.front()) != std::string_view::npos;
  // Built by appending: g++ 12 at -O2 warns (-Wrestrict, a false
  // positive) about "'" + std::string.
  std::string text;
  text.reserve(value.size() + 1);
  if (formula) text.push_back('\'');
  text.append(value);
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;

  std::string out = "\"";
  for (char c : text) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

std::string CsvRow(std::span<const std::string> cells) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i != 0) line += ',';
    line += CsvCell(cells[i]);
  }
  return line + "\r\n";
}

}  // namespace dmarcd::server
