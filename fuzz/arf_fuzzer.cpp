// Fuzz target: the failure-report reader (ARF, RFC 5965 / RFC 6591, and the
// non-ARF reports) on arbitrary bytes. A report that was read is written
// back with WriteFailureReport, and what was written must read again.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_support.hpp"
#include "parser/arf_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dmarcd;

  std::string_view email(reinterpret_cast<const char*>(data), size);
  static_cast<void>(parser::LooksLikeNonStandardFailureReport(email));
  auto report = parser::ParseFailureReport(email);
  if (!report) {
    fuzz::Check(!report.error().message.empty(), "an error says why");
    return 0;
  }

  std::string written = parser::WriteFailureReport(*report, report->envelope_headers);
  auto again = parser::ParseFailureReport(written);
  fuzz::Check(again.has_value(), "a written failure report reads again");
  fuzz::Check(again->format == report->format, "the format survives writing");
  return 0;
}
