// ISO 8601 UTC dates and times as the REST API reads and writes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dmarcd::server {

// Parses "2025-01-01" (00:00 UTC that day) or "2025-01-01T06:00:00Z" into
// Unix seconds. Only these two forms, with a valid calendar date and time;
// nullopt for anything else (offsets other than Z, fractions, spaces).
std::optional<int64_t> ParseIsoTime(std::string_view text);

// "2025-01-01T00:00:00Z".
std::string FormatIsoTime(int64_t unix_seconds);

// "2025-01-01": the UTC day holding the instant.
std::string FormatIsoDay(int64_t unix_seconds);

}  // namespace dmarcd::server
