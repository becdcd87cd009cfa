#include "server/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace dmarcd::server {
namespace {

constexpr const char* kComponents[] = {"server", "http", "imap", "storage", "parser"};

std::shared_ptr<spdlog::logger> MakeLogger(const std::string& name) {
  // stderr only: stdout belongs to command output (summaries, token secrets).
  auto logger = spdlog::stderr_logger_mt(name);
  // UTC timestamps, like everything else dmarcd stores and shows.
  logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "%Y-%m-%dT%H:%M:%S.%eZ %n %l: %v", spdlog::pattern_time_type::utc));
  return logger;
}

}  // namespace

Result<void> SetupLogging(const std::string& level) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return MakeError(ErrorCode::kConfig, "unknown log level '" + level + "'");
  }
  for (const char* name : kComponents) Log(name)->set_level(parsed);
  return {};
}

std::shared_ptr<spdlog::logger> Log(const std::string& component) {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (auto existing = spdlog::get(component)) return existing;
  return MakeLogger(component);
}

}  // namespace dmarcd::server
