#include "server/config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

namespace dmarcd::server {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dmarcd-config-test-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteFile(const std::string& text) {
    std::string path = (dir_ / "dmarcd.toml").string();
    std::ofstream(path) << text;
    return path;
  }

  EnvLookup Env() {
    return [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
  }

  std::filesystem::path dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(ConfigTest, DefaultsWithoutFileEnvOrFlags) {
  auto config = LoadConfig({}, Env());
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->database.path, "./dmarcd.db");
  EXPECT_EQ(config->http.listen, "127.0.0.1:8080");
  EXPECT_EQ(config->http.max_upload_bytes, uint64_t{64} << 20);
  EXPECT_EQ(config->http.threads, 2);
  EXPECT_EQ(config->log.level, "info");
  EXPECT_EQ(config->limits.max_zip_entries, parser::Limits{}.max_zip_entries);
}

TEST_F(ConfigTest, FileThenEnvThenFlagsWin) {
  ConfigFlags flags;
  flags.config_file = WriteFile(R"(
[database]
path = "from-file.db"
busy_timeout = 1234
[http]
listen = "127.0.0.1:9001"
threads = 3
[limits]
max_inflated_bytes = 1000
max_zip_entries = 7
max_compression_ratio = 99.5
[log]
level = "warn"
)");
  auto file_only = LoadConfig(flags, Env());
  ASSERT_TRUE(file_only) << file_only.error().ToString();
  EXPECT_EQ(file_only->database.path, "from-file.db");
  EXPECT_EQ(file_only->database.busy_timeout, 1234);
  EXPECT_EQ(file_only->http.listen, "127.0.0.1:9001");
  EXPECT_EQ(file_only->http.threads, 3);
  EXPECT_EQ(file_only->limits.max_inflated_bytes, 1000u);
  EXPECT_EQ(file_only->limits.max_zip_entries, 7);
  EXPECT_DOUBLE_EQ(file_only->limits.max_compression_ratio, 99.5);
  EXPECT_EQ(file_only->log.level, "warn");

  env_["DMARCD_DATABASE_PATH"] = "from-env.db";
  env_["DMARCD_HTTP_LISTEN"] = "127.0.0.1:9002";
  env_["DMARCD_LIMITS_MAX_INFLATED_BYTES"] = "2000";
  env_["DMARCD_LOG_LEVEL"] = "debug";
  auto with_env = LoadConfig(flags, Env());
  ASSERT_TRUE(with_env) << with_env.error().ToString();
  EXPECT_EQ(with_env->database.path, "from-env.db");
  EXPECT_EQ(with_env->http.listen, "127.0.0.1:9002");
  EXPECT_EQ(with_env->limits.max_inflated_bytes, 2000u);
  EXPECT_EQ(with_env->limits.max_zip_entries, 7);  // only in the file
  EXPECT_EQ(with_env->log.level, "debug");

  flags.database_path = "from-flag.db";
  flags.listen = "127.0.0.1:0";
  flags.log_level = "error";
  auto with_flags = LoadConfig(flags, Env());
  ASSERT_TRUE(with_flags) << with_flags.error().ToString();
  EXPECT_EQ(with_flags->database.path, "from-flag.db");
  EXPECT_EQ(with_flags->http.listen, "127.0.0.1:0");
  EXPECT_EQ(with_flags->log.level, "error");
  EXPECT_EQ(with_flags->limits.max_inflated_bytes, 2000u);  // no flag: env stays
}

TEST_F(ConfigTest, UnknownKeyIsAnErrorNamingIt) {
  ConfigFlags flags;
  flags.config_file = WriteFile("[http]\nlisten = \"127.0.0.1:1\"\nmax_uplaod_bytes = 5\n");
  auto config = LoadConfig(flags, Env());
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code, ErrorCode::kConfig);
  EXPECT_NE(config.error().message.find("http.max_uplaod_bytes"), std::string::npos)
      << config.error().message;
}

TEST_F(ConfigTest, UnknownSectionIsAnError) {
  ConfigFlags flags;
  flags.config_file = WriteFile("[imapp]\nhost = \"x\"\n");
  auto config = LoadConfig(flags, Env());
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().message.find("imapp"), std::string::npos) << config.error().message;
}

TEST_F(ConfigTest, WrongTypeInFileIsAnError) {
  ConfigFlags flags;
  flags.config_file = WriteFile("[http]\nthreads = \"two\"\n");
  auto config = LoadConfig(flags, Env());
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().message.find("http.threads"), std::string::npos);
}

TEST_F(ConfigTest, BadEnvValueIsAnErrorNamingTheVariable) {
  env_["DMARCD_HTTP_MAX_UPLOAD_BYTES"] = "12MB";
  auto config = LoadConfig({}, Env());
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().message.find("DMARCD_HTTP_MAX_UPLOAD_BYTES"), std::string::npos);
}

TEST_F(ConfigTest, BadLogLevelAndListenAreErrors) {
  ConfigFlags flags;
  flags.log_level = "loud";
  EXPECT_FALSE(LoadConfig(flags, Env()));
  flags.log_level.reset();
  flags.listen = "localhost";
  EXPECT_FALSE(LoadConfig(flags, Env()));
}

TEST_F(ConfigTest, NotTomlIsAnError) {
  ConfigFlags flags;
  flags.config_file = WriteFile("[http\nlisten = ");
  auto config = LoadConfig(flags, Env());
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code, ErrorCode::kConfig);
}

TEST_F(ConfigTest, ExampleConfigLoadsAndMatchesTheDefaults) {
  ConfigFlags flags;
  flags.config_file = DMARCD_EXAMPLE_CONFIG;
  auto config = LoadConfig(flags, Env());
  ASSERT_TRUE(config) << config.error().ToString();
  const Config defaults;
  const parser::Limits limits;
  EXPECT_EQ(config->database.path, defaults.database.path);
  EXPECT_EQ(config->http.max_upload_bytes, defaults.http.max_upload_bytes);
  EXPECT_EQ(config->limits.max_envelope_bytes, limits.max_envelope_bytes);
  EXPECT_EQ(config->limits.max_inflated_bytes, limits.max_inflated_bytes);
  EXPECT_DOUBLE_EQ(config->limits.max_compression_ratio, limits.max_compression_ratio);
  EXPECT_EQ(config->limits.ratio_grace_bytes, limits.ratio_grace_bytes);
  EXPECT_EQ(config->limits.max_mime_parts, limits.max_mime_parts);
  EXPECT_EQ(config->limits.max_text_bytes, limits.max_text_bytes);
  EXPECT_EQ(config->limits.max_records, limits.max_records);
  EXPECT_EQ(config->limits.max_mime_depth, limits.max_mime_depth);
  EXPECT_EQ(config->limits.max_envelope_inflated_bytes, limits.max_envelope_inflated_bytes);
  EXPECT_EQ(config->limits.max_header_bytes, limits.max_header_bytes);
  EXPECT_EQ(config->limits.max_xml_attributes, limits.max_xml_attributes);
  EXPECT_EQ(config->limits.max_zip_entries, limits.max_zip_entries);
  EXPECT_EQ(config->limits.max_nesting_depth, limits.max_nesting_depth);
  EXPECT_EQ(config->limits.max_xml_depth, limits.max_xml_depth);
  EXPECT_EQ(config->http.max_header_bytes, defaults.http.max_header_bytes);
}

TEST_F(ConfigTest, EveryLimitIsSetFromTheEnvironment) {
  env_["DMARCD_LIMITS_MAX_MIME_DEPTH"] = "5";
  env_["DMARCD_LIMITS_MAX_HEADER_BYTES"] = "65536";
  env_["DMARCD_LIMITS_MAX_XML_ATTRIBUTES"] = "8";
  env_["DMARCD_HTTP_MAX_HEADER_BYTES"] = "8192";
  auto config = LoadConfig({}, Env());
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->limits.max_mime_depth, 5);
  EXPECT_EQ(config->limits.max_header_bytes, 65536u);
  EXPECT_EQ(config->limits.max_xml_attributes, 8);
  EXPECT_EQ(config->http.max_header_bytes, 8192u);
}

TEST_F(ConfigTest, LimitsThatWouldRefuseEveryReportAreErrors) {
  for (const auto& [variable, message] :
       {std::pair{"DMARCD_LIMITS_MAX_ZIP_ENTRIES", "limits.max_zip_entries must be above 0"},
        std::pair{"DMARCD_LIMITS_MAX_MIME_DEPTH", "limits.max_mime_depth must be above 0"},
        std::pair{"DMARCD_LIMITS_MAX_INFLATED_BYTES", "limits.max_inflated_bytes must be above 0"},
        std::pair{"DMARCD_LIMITS_MAX_COMPRESSION_RATIO",
                  "limits.max_compression_ratio must be above 1"},
        std::pair{"DMARCD_HTTP_MAX_HEADER_BYTES",
                  "http.max_header_bytes must be between 1024 and 1048576"}}) {
    env_.clear();
    env_[variable] = "0";
    auto config = LoadConfig({}, Env());
    ASSERT_FALSE(config) << variable;
    EXPECT_EQ(config.error().message, message) << variable;
  }
}

TEST(SplitListenTest, SplitsAddressAndPort) {
  auto v4 = SplitListen("127.0.0.1:8080");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->first, "127.0.0.1");
  EXPECT_EQ(v4->second, 8080);
  auto v6 = SplitListen("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->first, "::1");
  EXPECT_EQ(v6->second, 0);
  EXPECT_FALSE(SplitListen("127.0.0.1:70000"));
  EXPECT_FALSE(SplitListen("127.0.0.1:"));
}

}  // namespace
}  // namespace dmarcd::server
