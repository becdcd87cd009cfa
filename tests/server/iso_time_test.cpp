#include "server/iso_time.hpp"

#include <gtest/gtest.h>

namespace dmarcd::server {
namespace {

TEST(IsoTimeTest, ParsesDatesAsMidnightUtc) {
  EXPECT_EQ(ParseIsoTime("2025-01-01"), 1735689600);
  EXPECT_EQ(ParseIsoTime("1970-01-01"), 0);
  EXPECT_EQ(ParseIsoTime("2024-02-29"), 1709164800);
}

TEST(IsoTimeTest, ParsesUtcDateTimes) {
  EXPECT_EQ(ParseIsoTime("2025-01-01T06:00:00Z"), 1735689600 + 6 * 3600);
  EXPECT_EQ(ParseIsoTime("2025-01-01T23:59:59Z"), 1735775999);
}

TEST(IsoTimeTest, RefusesEverythingElse) {
  for (const char* bad :
       {"", "2025-1-01", "2025-13-01", "2025-02-30", "2023-02-29", "2025-01-01T24:00:00Z",
        "2025-01-01T06:00:00", "2025-01-01T06:00:00+01:00", "2025-01-01 06:00:00Z",
        "2025-01-01T06:60:00Z", "yesterday", "1735689600", "2025-01-01T06:00:00.5Z"}) {
    EXPECT_FALSE(ParseIsoTime(bad)) << bad;
  }
}

TEST(IsoTimeTest, FormatsTimesAndDays) {
  EXPECT_EQ(FormatIsoTime(1735689600), "2025-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoTime(1735775999), "2025-01-01T23:59:59Z");
  EXPECT_EQ(FormatIsoTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatIsoDay(1735775999), "2025-01-01");
  EXPECT_EQ(FormatIsoDay(-1), "1969-12-31");
}

TEST(IsoTimeTest, RoundTrips) {
  for (int64_t t : {int64_t{0}, int64_t{951782400}, int64_t{1718323199}, int64_t{4102444799}}) {
    EXPECT_EQ(ParseIsoTime(FormatIsoTime(t)), t);
  }
}

}  // namespace
}  // namespace dmarcd::server
