// [[imap]] tables: defaults, password sources, the plaintext rule, and
// errors that name the account and the key.
#include "server/imap_account.hpp"

#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <filesystem>
#include <fstream>

#include "server/config.hpp"

namespace dmarcd::server {
namespace {

std::optional<std::string> NoEnv(const std::string& /*name*/) { return std::nullopt; }

Result<ImapAccount> Parse(
    std::string_view toml_text,
    const std::function<std::optional<std::string>(const std::string&)>& env = NoEnv) {
  const toml::table table = toml::parse(toml_text);
  return ParseImapAccount(table, "imap[1]", env);
}

TEST(ImapAccountTest, FillsDefaults) {
  auto account = Parse(R"(name = "reports"
host = "imap.example.com"
user = "dmarc@example.com"
password = "s3cret")");
  ASSERT_TRUE(account) << account.error().ToString();
  EXPECT_EQ(account->port, 993);
  EXPECT_EQ(account->tls, ImapTls::kImplicit);
  EXPECT_EQ(account->mailbox, "INBOX");
  EXPECT_EQ(account->archive, "Archive");
  EXPECT_EQ(account->after, AfterFetch::kMove);
  EXPECT_EQ(account->interval, std::chrono::seconds(300));
  EXPECT_EQ(account->password, "s3cret");
  EXPECT_EQ(account->batch, 100);
  EXPECT_EQ(account->max_message_bytes, uint64_t{256} << 20);
}

TEST(ImapAccountTest, ReadsEveryKey) {
  auto account = Parse(R"(name = "ruf"
host = "imap.example.com"
port = 1143
tls = "starttls"
user = "ruf"
password_env = "RUF_SECRET"
mailbox = "Reports/Failure"
archive = "Done"
after = "keep"
interval = "90s"
timeout = 20
ca_file = "private-ca.pem"
batch = 10
max_message_bytes = 1048576)",
                       [](const std::string& name) -> std::optional<std::string> {
                         if (name == "RUF_SECRET") return "from-env";
                         return std::nullopt;
                       });
  ASSERT_TRUE(account) << account.error().ToString();
  EXPECT_EQ(account->port, 1143);
  EXPECT_EQ(account->tls, ImapTls::kStartTls);
  EXPECT_EQ(account->password, "from-env");
  EXPECT_EQ(account->mailbox, "Reports/Failure");
  EXPECT_EQ(account->archive, "Done");
  EXPECT_EQ(account->after, AfterFetch::kKeep);
  EXPECT_EQ(account->interval, std::chrono::seconds(90));
  EXPECT_EQ(account->timeout, std::chrono::seconds(20));
  EXPECT_EQ(account->ca_file, "private-ca.pem");
  EXPECT_EQ(account->batch, 10);
  EXPECT_EQ(account->max_message_bytes, 1048576u);
}

TEST(ImapAccountTest, ReadsThePasswordFileWithoutItsNewline) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / "dmarcd-imap-account-test.secret";
  std::ofstream(path) << "from-file\n";
  auto account =
      Parse("name = \"a\"\nhost = \"h\"\nuser = \"u\"\npassword_file = \"" + path.string() + "\"");
  std::filesystem::remove(path);
  ASSERT_TRUE(account) << account.error().ToString();
  EXPECT_EQ(account->password, "from-file");
}

TEST(ImapAccountTest, PlaintextOnlyToLoopbackUnlessAllowed) {
  auto remote = Parse(R"(name = "a"
host = "imap.example.com"
tls = "none"
user = "u"
password = "p")");
  ASSERT_FALSE(remote);
  EXPECT_EQ(remote.error().code, ErrorCode::kConfig);
  EXPECT_NE(remote.error().message.find("allow_plaintext"), std::string::npos);

  auto loopback = Parse(R"(name = "a"
host = "127.0.0.1"
tls = "none"
user = "u"
password = "p")");
  ASSERT_TRUE(loopback) << loopback.error().ToString();
  EXPECT_EQ(loopback->port, 143);

  auto allowed = Parse(R"(name = "a"
host = "imap.example.com"
tls = "none"
allow_plaintext = true
user = "u"
password = "p")");
  EXPECT_TRUE(allowed);
}

TEST(ImapAccountTest, ErrorsNameTheAccountAndKey) {
  auto unknown = Parse("name = \"a\"\nhost = \"h\"\nuser = \"u\"\npassword = \"p\"\nfolder = 1");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("unknown key 'folder'"), std::string::npos);

  auto bad_tls = Parse("name = \"a\"\nhost = \"h\"\nuser = \"u\"\npassword = \"p\"\ntls = \"ssl\"");
  ASSERT_FALSE(bad_tls);
  EXPECT_NE(bad_tls.error().message.find("imap[1] (a): tls 'ssl'"), std::string::npos)
      << bad_tls.error().message;

  auto two_passwords =
      Parse("name = \"a\"\nhost = \"h\"\nuser = \"u\"\npassword = \"p\"\npassword_env = \"X\"");
  ASSERT_FALSE(two_passwords);
  EXPECT_NE(two_passwords.error().message.find("exactly one of"), std::string::npos);

  auto missing_env = Parse("name = \"a\"\nhost = \"h\"\nuser = \"u\"\npassword_env = \"X\"");
  ASSERT_FALSE(missing_env);
  EXPECT_NE(missing_env.error().message.find("X is not set"), std::string::npos);

  auto no_host = Parse("name = \"a\"\nuser = \"u\"\npassword = \"p\"");
  ASSERT_FALSE(no_host);
  EXPECT_NE(no_host.error().message.find("host is required"), std::string::npos);
}

TEST(ImapAccountTest, ParsesIntervals) {
  EXPECT_EQ(ParseInterval("45").value(), std::chrono::seconds(45));
  EXPECT_EQ(ParseInterval("5m").value(), std::chrono::seconds(300));
  EXPECT_EQ(ParseInterval("2h").value(), std::chrono::seconds(7200));
  EXPECT_EQ(ParseInterval("1d").value(), std::chrono::seconds(86400));
  EXPECT_FALSE(ParseInterval("0s"));
  EXPECT_FALSE(ParseInterval("5 minutes"));
  EXPECT_FALSE(ParseInterval("m"));
  EXPECT_FALSE(ParseInterval("400d"));
}

TEST(ImapAccountTest, KnowsLoopbackHosts) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.1.2.3"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("imap.example.com"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
}

Result<Config> LoadFile(const std::string& text) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / "dmarcd-imap-config-test.toml";
  std::ofstream(path) << text;
  ConfigFlags flags;
  flags.config_file = path.string();
  auto config = LoadConfig(flags, NoEnv);
  std::filesystem::remove(path);
  return config;
}

TEST(ImapConfigTest, LoadsEveryImapTable) {
  auto config = LoadFile(R"([database]
path = "reports.db"

[[imap]]
name = "rua"
host = "imap.example.com"
user = "rua@example.com"
password = "a"

[[imap]]
name = "ruf"
host = "127.0.0.1"
tls = "none"
user = "ruf@example.com"
password = "b"
after = "keep"
)");
  ASSERT_TRUE(config) << config.error().ToString();
  ASSERT_EQ(config->imap.size(), 2u);
  EXPECT_EQ(config->imap[0].name, "rua");
  EXPECT_EQ(config->imap[0].port, 993);
  EXPECT_EQ(config->imap[1].name, "ruf");
  EXPECT_EQ(config->imap[1].port, 143);
  EXPECT_EQ(config->imap[1].after, AfterFetch::kKeep);
}

TEST(ImapConfigTest, RefusesTwoAccountsOfOneNameAndAPlainTable) {
  auto twice = LoadFile(R"([[imap]]
name = "rua"
host = "h"
user = "u"
password = "a"

[[imap]]
name = "rua"
host = "h2"
user = "u"
password = "a"
)");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("imap[2]: a second account named rua"), std::string::npos)
      << twice.error().message;

  auto table = LoadFile("[imap]\nname = \"rua\"\n");
  ASSERT_FALSE(table);
  EXPECT_NE(table.error().message.find("[[imap]] tables"), std::string::npos)
      << table.error().message;
}

}  // namespace
}  // namespace dmarcd::server
