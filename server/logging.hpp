// spdlog loggers, one per component ("server", "http", "imap", "storage",
// "parser"), all writing postfix-style key=value lines to stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "parser/error.hpp"

namespace dmarcd::server {

// Creates (or re-levels) the component loggers. kConfig for an unknown
// level name. Safe to call again; not to be called while other threads log.
Result<void> SetupLogging(const std::string& level);

// The named component logger; creates it on first use if SetupLogging has
// not run (tests). Thread-safe.
std::shared_ptr<spdlog::logger> Log(const std::string& component);

}  // namespace dmarcd::server
