#include "storage/tokens.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

#include "temp_database.hpp"

namespace dmarcd::storage {
namespace {

using testing::QueryInt;
using testing::QueryText;
using testing::TempFolder;

class TokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Database::Open(folder_.File("dmarcd.db"));
    ASSERT_TRUE(opened) << opened.error().ToString();
    db_ = std::move(*opened);
  }

  TempFolder folder_;
  std::unique_ptr<Database> db_;
};

TEST(Sha256HexTest, MatchesKnownDigests) {
  // FIPS 180-2 appendix B.1 and the digest of nothing.
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(TokenScopeTest, NamesAndPermissions) {
  EXPECT_EQ(TokenScopeName(TokenScope::kIngest), "ingest");
  EXPECT_EQ(ParseTokenScope("admin"), TokenScope::kAdmin);
  EXPECT_EQ(ParseTokenScope("root"), std::nullopt);
  EXPECT_TRUE(ScopeAllows(TokenScope::kAdmin, TokenScope::kIngest));
  EXPECT_TRUE(ScopeAllows(TokenScope::kIngest, TokenScope::kRead));
  EXPECT_FALSE(ScopeAllows(TokenScope::kIngest, TokenScope::kAdmin));
  EXPECT_FALSE(ScopeAllows(TokenScope::kRead, TokenScope::kIngest));
}

TEST_F(TokensTest, AddListRevokeVerify) {
  auto secret = AddToken(*db_, "uploader", TokenScope::kIngest);
  ASSERT_TRUE(secret) << secret.error().ToString();
  ASSERT_EQ(secret->size(), 7u + 43u);
  EXPECT_EQ(secret->substr(0, 7), "dmarcd_");
  EXPECT_EQ(secret->find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 7),
            std::string::npos);

  auto verified = VerifyToken(*db_, *secret);
  ASSERT_TRUE(verified);
  ASSERT_TRUE(verified->has_value());
  EXPECT_EQ((*verified)->name, "uploader");
  EXPECT_EQ((*verified)->scope, TokenScope::kIngest);
  EXPECT_TRUE((*verified)->last_used_at.has_value());

  auto listed = ListTokens(*db_);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].name, "uploader");
  EXPECT_FALSE((*listed)[0].revoked_at.has_value());
  EXPECT_TRUE((*listed)[0].last_used_at.has_value());

  ASSERT_TRUE(RevokeToken(*db_, "uploader"));
  auto after = VerifyToken(*db_, *secret);
  ASSERT_TRUE(after);
  EXPECT_FALSE(after->has_value());
  auto relisted = ListTokens(*db_);
  ASSERT_TRUE(relisted);
  ASSERT_EQ(relisted->size(), 1u);
  EXPECT_TRUE((*relisted)[0].revoked_at.has_value());

  auto again = RevokeToken(*db_, "uploader");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
}

TEST_F(TokensTest, WrongSecretVerifiesToNothing) {
  auto secret = AddToken(*db_, "reader", TokenScope::kRead);
  ASSERT_TRUE(secret);
  std::string wrong = *secret;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  for (const std::string& candidate : {wrong, std::string("dmarcd_"), std::string("")}) {
    auto verified = VerifyToken(*db_, candidate);
    ASSERT_TRUE(verified);
    EXPECT_FALSE(verified->has_value()) << candidate;
  }
}

TEST_F(TokensTest, SecretIsNeverStoredInClear) {
  auto secret = AddToken(*db_, "admin", TokenScope::kAdmin);
  ASSERT_TRUE(secret);
  const std::string random_part = secret->substr(7);
  EXPECT_EQ(QueryInt(*db_,
                     "SELECT COUNT(*) FROM api_tokens WHERE instr(name || scope || "
                     "secret_sha256, '" +
                         random_part + "') > 0"),
            0);
  EXPECT_EQ(QueryText(*db_, "SELECT secret_sha256 FROM api_tokens"), Sha256Hex(*secret));
  // And nowhere else in the file's tables.
  EXPECT_EQ(
      QueryInt(*db_, "SELECT COUNT(*) FROM api_tokens WHERE secret_sha256 = '" + *secret + "'"), 0);
}

TEST_F(TokensTest, NamesAreUniqueAmongActiveTokens) {
  ASSERT_TRUE(AddToken(*db_, "ci", TokenScope::kRead));
  auto clash = AddToken(*db_, "ci", TokenScope::kAdmin);
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code, ErrorCode::kInvalidArgument);

  ASSERT_TRUE(RevokeToken(*db_, "ci"));
  auto reused = AddToken(*db_, "ci", TokenScope::kAdmin);
  ASSERT_TRUE(reused) << reused.error().ToString();
  EXPECT_EQ(QueryInt(*db_, "SELECT COUNT(*) FROM api_tokens WHERE name = 'ci'"), 2);
}

TEST_F(TokensTest, SecretsDiffer) {
  auto first = AddToken(*db_, "one", TokenScope::kRead);
  auto second = AddToken(*db_, "two", TokenScope::kRead);
  ASSERT_TRUE(first && second);
  EXPECT_NE(*first, *second);
}

TEST_F(TokensTest, VerifyOnReadOnlyConnectionWorks) {
  auto secret = AddToken(*db_, "dashboard", TokenScope::kRead);
  ASSERT_TRUE(secret);
  auto reader = Database::Open(folder_.File("dmarcd.db"), OpenOptions{.read_only = true});
  ASSERT_TRUE(reader);
  auto verified = VerifyToken(**reader, *secret);
  ASSERT_TRUE(verified) << verified.error().ToString();
  ASSERT_TRUE(verified->has_value());
  EXPECT_EQ((*verified)->scope, TokenScope::kRead);
}

}  // namespace
}  // namespace dmarcd::storage
