#include "storage/day_shares.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace dmarcd::storage {
namespace {

constexpr int64_t kMarch1 = 1709251200;  // 2024-03-01T00:00:00Z
constexpr int64_t kHour = 3600;
constexpr int64_t kDay = 86400;

Figures Sum(const std::vector<DayFigures>& days) {
  Figures sum;
  for (const DayFigures& day : days) {
    sum.messages += day.figures.messages;
    sum.dmarc_pass += day.figures.dmarc_pass;
    sum.dkim_aligned_pass += day.figures.dkim_aligned_pass;
    sum.spf_aligned_pass += day.figures.spf_aligned_pass;
    sum.disposition_none += day.figures.disposition_none;
    sum.disposition_quarantine += day.figures.disposition_quarantine;
    sum.disposition_reject += day.figures.disposition_reject;
  }
  return sum;
}

void ExpectSameFigures(const Figures& a, const Figures& b) {
  EXPECT_EQ(a.messages, b.messages);
  EXPECT_EQ(a.dmarc_pass, b.dmarc_pass);
  EXPECT_EQ(a.dkim_aligned_pass, b.dkim_aligned_pass);
  EXPECT_EQ(a.spf_aligned_pass, b.spf_aligned_pass);
  EXPECT_EQ(a.disposition_none, b.disposition_none);
  EXPECT_EQ(a.disposition_quarantine, b.disposition_quarantine);
  EXPECT_EQ(a.disposition_reject, b.disposition_reject);
}

TEST(DaySharesTest, UtcDayStartRoundsDown) {
  EXPECT_EQ(UtcDayStart(kMarch1), kMarch1);
  EXPECT_EQ(UtcDayStart(kMarch1 + 86399), kMarch1);
  EXPECT_EQ(UtcDayStart(kMarch1 + 86400), kMarch1 + 86400);
  EXPECT_EQ(UtcDayStart(-1), -86400);
  EXPECT_EQ(UtcDayStart(-86400), -86400);
}

TEST(DaySharesTest, OneDayReportStaysWhole) {
  const Figures total{1000, 900, 800, 700, 990, 7, 3};
  const auto days = SplitOverDays(kMarch1, kMarch1 + 86400, total);
  ASSERT_EQ(days.size(), 1u);
  EXPECT_EQ(days[0].day, kMarch1);
  ExpectSameFigures(days[0].figures, total);
}

TEST(DaySharesTest, EmptyRangeBelongsToTheDayOfBegin) {
  const Figures total{5, 5, 0, 5, 5, 0, 0};
  const auto days = SplitOverDays(kMarch1 + 10 * kHour, kMarch1 + 10 * kHour, total);
  ASSERT_EQ(days.size(), 1u);
  EXPECT_EQ(days[0].day, kMarch1);
  ExpectSameFigures(days[0].figures, total);
}

TEST(DaySharesTest, ThirtySixHoursWithAwkwardCountsSumExactly) {
  // 12 hours on March 1, 24 on March 2: shares one third and two thirds.
  const int64_t begin = kMarch1 + 12 * kHour;
  const Figures total{1001, 1000, 7, 5, 998, 2, 1};
  const auto days = SplitOverDays(begin, begin + 36 * kHour, total);
  ASSERT_EQ(days.size(), 2u);
  EXPECT_EQ(days[0].day, kMarch1);
  EXPECT_EQ(days[1].day, kMarch1 + 86400);
  // 1001/3 = 333.67 and 667.33: the remainder goes to the larger fraction.
  EXPECT_EQ(days[0].figures.messages, 334u);
  EXPECT_EQ(days[1].figures.messages, 667u);
  // 1000/3 = 333.33 and 666.67.
  EXPECT_EQ(days[0].figures.dmarc_pass, 333u);
  EXPECT_EQ(days[1].figures.dmarc_pass, 667u);
  // 7/3 = 2.33 and 4.67.
  EXPECT_EQ(days[0].figures.dkim_aligned_pass, 2u);
  EXPECT_EQ(days[1].figures.dkim_aligned_pass, 5u);
  // 1/3 and 2/3.
  EXPECT_EQ(days[0].figures.disposition_reject, 0u);
  EXPECT_EQ(days[1].figures.disposition_reject, 1u);
  ExpectSameFigures(Sum(days), total);
}

TEST(DaySharesTest, EqualHalvesGiveTheOddUnitToTheEarlierDay) {
  const Figures total{7, 0, 0, 0, 0, 0, 0};
  const auto days = SplitOverDays(kMarch1 + 18 * kHour, kMarch1 + 30 * kHour, total);
  ASSERT_EQ(days.size(), 2u);
  EXPECT_EQ(days[0].figures.messages, 4u);
  EXPECT_EQ(days[1].figures.messages, 3u);
}

TEST(DaySharesTest, SeveralDaysAndPrimeCountsSumExactly) {
  const Figures total{100003, 99991, 65537, 8191, 7919, 31, 0};
  const int64_t begin = kMarch1 + 5 * kHour + 17;
  const auto days = SplitOverDays(begin, begin + 6 * kDay + 3 * kHour, total);
  ASSERT_EQ(days.size(), 7u);
  for (size_t i = 1; i < days.size(); ++i) {
    EXPECT_EQ(days[i].day, days[i - 1].day + 86400);
  }
  ExpectSameFigures(Sum(days), total);
}

TEST(DaySharesTest, HugeCountsDoNotOverflow) {
  const uint64_t big = std::numeric_limits<uint64_t>::max() - 1;
  const Figures total{big, big, big, 0, big, 0, 0};
  const auto days = SplitOverDays(kMarch1 + kHour, kMarch1 + 3 * kDay, total);
  ASSERT_EQ(days.size(), 3u);
  ExpectSameFigures(Sum(days), total);
  EXPECT_GT(days[1].figures.messages, days[0].figures.messages);
}

}  // namespace
}  // namespace dmarcd::storage
