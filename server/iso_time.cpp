#include "server/iso_time.hpp"

#include <chrono>
#include <cstdio>

namespace dmarcd::server {
namespace {

// Reads exactly `width` decimal digits at `pos`.
std::optional<int> Digits(std::string_view text, size_t pos, size_t width) {
  if (pos + width > text.size()) return std::nullopt;
  int value = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

struct Civil {
  int year;
  unsigned month;
  unsigned day;
  int64_t seconds_of_day;
};

Civil ToCivil(int64_t unix_seconds) {
  // Floor division so that instants before 1970 land on the right day.
  int64_t days = unix_seconds / 86400;
  int64_t rest = unix_seconds % 86400;
  if (rest < 0) {
    rest += 86400;
    days -= 1;
  }
  const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{days}}};
  return Civil{static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
               static_cast<unsigned>(ymd.day()), rest};
}

}  // namespace

std::optional<int64_t> ParseIsoTime(std::string_view text) {
  if (text.size() != 10 && text.size() != 20) return std::nullopt;
  auto year = Digits(text, 0, 4);
  auto month = Digits(text, 5, 2);
  auto day = Digits(text, 8, 2);
  if (!year || !month || !day || text[4] != '-' || text[7] != '-') return std::nullopt;

  const std::chrono::year_month_day ymd{std::chrono::year{*year},
                                        std::chrono::month{static_cast<unsigned>(*month)},
                                        std::chrono::day{static_cast<unsigned>(*day)}};
  if (!ymd.ok()) return std::nullopt;
  const int64_t midnight =
      int64_t{std::chrono::sys_days{ymd}.time_since_epoch().count()} * int64_t{86400};
  if (text.size() == 10) return midnight;

  // RFC 3339 section 5.6 date-time, restricted to UTC ("Z") and whole
  // seconds: what the API documents and the dashboard sends.
  auto hour = Digits(text, 11, 2);
  auto minute = Digits(text, 14, 2);
  auto second = Digits(text, 17, 2);
  if (text[10] != 'T' || text[13] != ':' || text[16] != ':' || text[19] != 'Z') {
    return std::nullopt;
  }
  if (!hour || !minute || !second || *hour > 23 || *minute > 59 || *second > 59) {
    return std::nullopt;
  }
  return midnight + int64_t{*hour} * 3600 + int64_t{*minute} * 60 + *second;
}

std::string FormatIsoTime(int64_t unix_seconds) {
  const Civil c = ToCivil(unix_seconds);
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02dZ", c.year, c.month, c.day,
                static_cast<int>(c.seconds_of_day / 3600),
                static_cast<int>(c.seconds_of_day / 60 % 60),
                static_cast<int>(c.seconds_of_day % 60));
  return buffer;
}

std::string FormatIsoDay(int64_t unix_seconds) {
  const Civil c = ToCivil(unix_seconds);
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02u", c.year, c.month, c.day);
  return buffer;
}

}  // namespace dmarcd::server
