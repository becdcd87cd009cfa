#include "server/inputs.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace dmarcd::server {
namespace {

TEST(SplitMboxTest, SplitsOnFromLinesAndUnquotes) {
  const std::string mbox =
      "From a@example.com Thu Jan  2 06:10:00 2025\n"
      "Subject: one\n"
      "\n"
      "body one\n"
      ">From the start\n"
      ">>From quoted twice\n"
      "\n"
      "From b@example.com Thu Jan  2 06:11:00 2025\n"
      "Subject: two\n"
      "\n"
      "body two\n";
  auto messages = SplitMbox(mbox);
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0], "Subject: one\n\nbody one\nFrom the start\n>From quoted twice\n");
  EXPECT_EQ(messages[1], "Subject: two\n\nbody two\n");
}

TEST(SplitMboxTest, RecognisesMbox) {
  EXPECT_TRUE(IsMbox("From x Thu Jan  2 06:10:00 2025\n"));
  EXPECT_FALSE(IsMbox("Return-Path: <x@example.com>\n"));
  EXPECT_FALSE(IsMbox("<?xml version=\"1.0\"?>"));
}

TEST(CollectInputsTest, WalksFoldersSortedSkippingHiddenAndMaildirTmp) {
  namespace fs = std::filesystem;
  const fs::path root =
      fs::temp_directory_path() / ("dmarcd-inputs-test-" + std::to_string(std::random_device{}()));
  for (const char* dir : {"maildir/cur", "maildir/new", "maildir/tmp", "plain/tmp", ".hidden"}) {
    fs::create_directories(root / dir);
  }
  for (const char* file : {"b.xml", "a.xml", ".dot.xml", "maildir/cur/1", "maildir/new/2",
                           "maildir/tmp/3", "plain/tmp/4", ".hidden/5"}) {
    std::ofstream(root / file) << "x";
  }

  auto inputs = CollectInputs({root.string(), "-"});
  ASSERT_TRUE(inputs) << inputs.error().ToString();
  const std::vector<std::string> expected = {
      (root / "a.xml").string(),         (root / "b.xml").string(),
      (root / "maildir/cur/1").string(), (root / "maildir/new/2").string(),
      (root / "plain/tmp/4").string(),   "-"};
  EXPECT_EQ(*inputs, expected);

  auto missing = CollectInputs({(root / "nope").string()});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidArgument);
  fs::remove_all(root);
}

TEST(CollectInputsTest, ReadsEachFolderOnceThroughLinksAndLoops) {
  namespace fs = std::filesystem;
  const fs::path root =
      fs::temp_directory_path() / ("dmarcd-inputs-loop-" + std::to_string(std::random_device{}()));
  fs::create_directories(root / "reports");
  for (const char* file : {"reports/a.xml", "reports/b.xml", "c.xml"}) {
    std::ofstream(root / file) << "x";
  }
  fs::create_directory_symlink("..", root / "reports/up");         // a loop
  fs::create_directory_symlink("reports", root / "same-reports");  // a second way in

  auto inputs = CollectInputs({root.string()});
  ASSERT_TRUE(inputs) << inputs.error().ToString();
  const std::vector<std::string> expected = {(root / "c.xml").string(),
                                             (root / "reports/a.xml").string(),
                                             (root / "reports/b.xml").string()};
  EXPECT_EQ(*inputs, expected);
  fs::remove_all(root);
}

TEST(FileSourceTest, ReadsTheFileAgainAfterEachRewind) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("dmarcd-file-source-test-" + std::to_string(std::random_device{}()));
  const std::string bytes = "<feedback>" + std::string(100000, 'x') + "</feedback>";
  std::ofstream(path, std::ios::binary) << bytes;

  auto source = FileSource::Open(path.string(), "file:report.xml");
  ASSERT_TRUE(source) << source.error().ToString();
  EXPECT_EQ((*source)->Origin(), "file:report.xml");
  EXPECT_EQ((*source)->Size(), bytes.size());
  for (int pass = 0; pass < 2; ++pass) {
    ASSERT_TRUE((*source)->Rewind());
    std::string read;
    std::string buffer(4096, '\0');
    for (;;) {
      auto n = (*source)->Read(buffer);
      ASSERT_TRUE(n);
      if (*n == 0) break;
      read.append(buffer.data(), *n);
    }
    EXPECT_EQ(read, bytes) << "pass " << pass;
  }
  std::filesystem::remove(path);
}

TEST(FileSourceTest, MissingFileIsAnIoError) {
  auto source = FileSource::Open("/nonexistent/dmarcd/report.xml", "file:x");
  ASSERT_FALSE(source);
  EXPECT_EQ(source.error().code, ErrorCode::kIo);
}

}  // namespace
}  // namespace dmarcd::server
