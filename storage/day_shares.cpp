#include "storage/day_shares.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <numeric>

namespace dmarcd::storage {
namespace {

// A count (below 2^64) times a number of seconds (below 2^63) needs 127 bits.
__extension__ typedef unsigned __int128 Wide;

constexpr size_t kFigureCount = 7;

std::array<uint64_t*, kFigureCount> Fields(Figures& figures) {
  return {&figures.messages,          &figures.dmarc_pass,       &figures.dkim_aligned_pass,
          &figures.spf_aligned_pass,  &figures.disposition_none, &figures.disposition_quarantine,
          &figures.disposition_reject};
}

}  // namespace

int64_t UtcDayStart(int64_t unix_seconds) {
  int64_t day = unix_seconds / kSecondsPerDay;
  if (unix_seconds % kSecondsPerDay < 0) {
    --day;
  }
  return day * kSecondsPerDay;
}

std::vector<DayFigures> SplitOverDays(int64_t begin, int64_t end, const Figures& total) {
  assert(end >= begin);
  std::vector<DayFigures> days;
  if (end <= begin) {
    days.push_back(DayFigures{UtcDayStart(begin), total});
    return days;
  }

  std::vector<uint64_t> seconds;
  for (int64_t day = UtcDayStart(begin); day < end; day += kSecondsPerDay) {
    const int64_t from = std::max(begin, day);
    const int64_t to = std::min(end, day + kSecondsPerDay);
    days.push_back(DayFigures{day, Figures{}});
    seconds.push_back(static_cast<uint64_t>(to - from));
  }
  const Wide span = static_cast<Wide>(end - begin);

  // Largest remainder (Hamilton): every day gets the floor of its exact
  // share, then the units left over go one each to the days with the
  // largest fractional parts.
  Figures copy = total;
  const auto totals = Fields(copy);
  std::vector<Wide> remainders(days.size());
  std::vector<size_t> order(days.size());
  for (size_t f = 0; f < kFigureCount; ++f) {
    const uint64_t figure = *totals[f];
    uint64_t given = 0;
    for (size_t i = 0; i < days.size(); ++i) {
      const Wide exact = static_cast<Wide>(figure) * seconds[i];
      const auto share = static_cast<uint64_t>(exact / span);
      *Fields(days[i].figures)[f] = share;
      remainders[i] = exact % span;
      given += share;
    }

    uint64_t left = figure - given;  // fewer than days.size()
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return remainders[a] > remainders[b]; });
    for (size_t i = 0; left > 0; ++i, --left) {
      ++*Fields(days[order[i]].figures)[f];
    }
  }
  return days;
}

}  // namespace dmarcd::storage
