#include "server/ingest_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace dmarcd::server {
namespace {

namespace fs = std::filesystem;

std::string ReadData(const std::string& name) {
  std::ifstream file(std::string(DMARCD_TEST_DATA_DIR) + "/server/" + name, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

class IngestQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("dmarcd-queue-test-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
    auto db = storage::Database::Open((dir_ / "dmarcd.db").string());
    ASSERT_TRUE(db) << db.error().ToString();
    queue_ = std::make_unique<IngestQueue>(std::move(*db), parser::Limits{});
  }
  void TearDown() override {
    queue_.reset();
    fs::remove_all(dir_);
  }

  fs::path dir_;
  std::unique_ptr<IngestQueue> queue_;
};

TEST_F(IngestQueueTest, StopStoresEverythingQueuedFromManyThreads) {
  const std::vector<std::string> files = {
      "case01_uncompressed-xml-attachment.eml", "case02_octet-stream-gzip.eml",
      "fastmail_four-records-multi-dkim_stalwart.xml", "google_20-records_parsedmarc.xml.gz",
      "case07_gzip-payload-not-xml.xml.gz"};
  std::mutex mutex;
  std::vector<storage::PartStatus> outcomes;
  std::vector<std::thread> submitters;
  submitters.reserve(files.size());
  for (const std::string& file : files) {
    submitters.emplace_back([&, file] {
      queue_->Submit({ReadData(file), "file:" + file},
                     [&](Result<storage::EnvelopeOutcome> outcome) {
                       ASSERT_TRUE(outcome) << outcome.error().ToString();
                       std::lock_guard lock(mutex);
                       outcomes.push_back(outcome->Overall());
                     });
    });
  }
  for (auto& t : submitters) t.join();
  queue_->Stop();

  ASSERT_EQ(outcomes.size(), files.size());
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), storage::PartStatus::kStored), 4);
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), storage::PartStatus::kRejected), 1);
}

TEST_F(IngestQueueTest, SubmitAfterStopAnswersAtOnce) {
  queue_->Stop();
  bool called = false;
  queue_->Submit({"<feedback/>", "test"}, [&](Result<storage::EnvelopeOutcome> outcome) {
    called = true;
    ASSERT_FALSE(outcome);
    EXPECT_EQ(outcome.error().code, ErrorCode::kInternal);
  });
  EXPECT_TRUE(called);
}

}  // namespace
}  // namespace dmarcd::server
