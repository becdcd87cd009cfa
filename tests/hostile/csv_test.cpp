// The CSV writer every text/csv route uses: RFC 4180 quoting and the guard
// against spreadsheet formulas in report fields (issue #6).
#include "server/csv.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dmarcd::server {
namespace {

TEST(CsvTest, PlainCellIsWrittenAsIs) {
  EXPECT_EQ(CsvCell("example.com"), "example.com");
  EXPECT_EQ(CsvCell(""), "");
  EXPECT_EQ(CsvCell("192.0.2.1"), "192.0.2.1");
}

TEST(CsvTest, QuotesCellWithCommaQuoteOrLineBreak) {
  EXPECT_EQ(CsvCell("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvCell("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvCell("one\ntwo"), "\"one\ntwo\"");
  EXPECT_EQ(CsvCell("one\r\ntwo"), "\"one\r\ntwo\"");
}

TEST(CsvTest, PrefixesEveryFormulaStarter) {
  EXPECT_EQ(CsvCell("=1+2"), "'=1+2");
  EXPECT_EQ(CsvCell("+1"), "'+1");
  EXPECT_EQ(CsvCell("-1"), "'-1");
  EXPECT_EQ(CsvCell("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(CsvCell("\tx"), "'\tx");
  // A leading CR also needs quoting, after the prefix.
  EXPECT_EQ(CsvCell("\rx"), "\"'\rx\"");
}

TEST(CsvTest, PrefixesFormulaBeforeQuoting) {
  EXPECT_EQ(CsvCell("=HYPERLINK(\"http://192.0.2.1\",\"x\")"),
            "\"'=HYPERLINK(\"\"http://192.0.2.1\"\",\"\"x\"\")\"");
  EXPECT_EQ(CsvCell("=cmd|' /C calc'!A0,"), "\"'=cmd|' /C calc'!A0,\"");
}

TEST(CsvTest, LeavesFormulaCharacterInsideCellAlone) {
  EXPECT_EQ(CsvCell("a=b"), "a=b");
  EXPECT_EQ(CsvCell("user@example.com"), "user@example.com");
  EXPECT_EQ(CsvCell(" =1"), " =1");
}

TEST(CsvTest, RowJoinsCellsAndEndsInCrlf) {
  const std::vector<std::string> cells = {"id", "=1+2", "a,b", ""};
  EXPECT_EQ(CsvRow(cells), "id,'=1+2,\"a,b\",\r\n");
  EXPECT_EQ(CsvRow(std::vector<std::string>{}), "\r\n");
}

}  // namespace
}  // namespace dmarcd::server
