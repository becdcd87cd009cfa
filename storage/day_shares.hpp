// Splitting a report's figures over the UTC days its date range covers.
//
// DMARC reports usually cover one UTC day (RFC 7489 section 7.2 asks for
// daily reports), but reporters also send ranges that straddle midnight or
// span several days. Every query in reader.hpp reads the shares computed
// here, so a summary is always the sum of its daily series.
#pragma once

#include <cstdint>
#include <vector>

#include "storage/reader.hpp"

namespace dmarcd::storage {

inline constexpr int64_t kSecondsPerDay = 86400;

// 00:00 UTC of the day that holds `unix_seconds` (also for times before 1970).
int64_t UtcDayStart(int64_t unix_seconds);

// Splits `total` over the UTC days that [begin, end) overlaps, in proportion
// to the seconds in each; end == begin puts everything on the day of begin.
// Each figure is split on its own with the largest-remainder method (ties go
// to the earlier day), so every figure's shares are whole numbers that add up
// exactly to the total. Days are returned oldest first, each once; a day
// whose shares are all zero is still returned. Requires end >= begin.
std::vector<DayFigures> SplitOverDays(int64_t begin, int64_t end, const Figures& total);

}  // namespace dmarcd::storage
