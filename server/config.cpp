#include "server/config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <initializer_list>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "server/access.hpp"

namespace dmarcd::server {
namespace {

// One setting: where it lives in the file and how a value is stored. The
// table below is the single list of keys, so file, environment and the
// unknown-key check can never disagree.
// A list is an array of strings in the file and comma-separated text in the
// environment.
using Target =
    std::variant<std::string*, int*, uint64_t*, double*, bool*, std::vector<std::string>*>;

struct Setting {
  const char* section;
  const char* key;
  Target target;
};

std::vector<Setting> Settings(Config& c) {
  parser::Limits& l = c.limits;
  return {
      {"database", "path", &c.database.path},
      {"database", "busy_timeout", &c.database.busy_timeout},
      {"database", "max_size", &c.database.max_size},
      {"http", "listen", &c.http.listen},
      {"http", "max_upload_bytes", &c.http.max_upload_bytes},
      {"http", "max_header_bytes", &c.http.max_header_bytes},
      {"http", "threads", &c.http.threads},
      {"http", "tls_cert", &c.http.tls_cert},
      {"http", "tls_key", &c.http.tls_key},
      {"http", "header_timeout", &c.http.header_timeout},
      {"http", "request_timeout", &c.http.request_timeout},
      {"http", "idle_timeout", &c.http.idle_timeout},
      {"http", "max_connections", &c.http.max_connections},
      {"http", "max_connections_per_client", &c.http.max_connections_per_client},
      {"http", "users", &c.http.users},
      {"http", "require_read_token", &c.http.require_read_token},
      {"http", "trusted_proxy_auth", &c.http.trusted_proxy_auth},
      {"http", "allowed_origins", &c.http.allowed_origins},
      {"limits", "max_envelope_bytes", &l.max_envelope_bytes},
      {"limits", "max_inflated_bytes", &l.max_inflated_bytes},
      {"limits", "max_envelope_inflated_bytes", &l.max_envelope_inflated_bytes},
      {"limits", "max_compression_ratio", &l.max_compression_ratio},
      {"limits", "ratio_grace_bytes", &l.ratio_grace_bytes},
      {"limits", "max_zip_entries", &l.max_zip_entries},
      {"limits", "max_nesting_depth", &l.max_nesting_depth},
      {"limits", "max_mime_parts", &l.max_mime_parts},
      {"limits", "max_mime_depth", &l.max_mime_depth},
      {"limits", "max_header_bytes", &l.max_header_bytes},
      {"limits", "max_xml_depth", &l.max_xml_depth},
      {"limits", "max_xml_attributes", &l.max_xml_attributes},
      {"limits", "max_text_bytes", &l.max_text_bytes},
      {"limits", "max_records", &l.max_records},
      {"log", "level", &c.log.level},
      {"privacy", "store_samples", &c.privacy.store_samples},
      {"privacy", "redact_local_parts", &c.privacy.redact_local_parts},
      {"retention", "failure_retention", &c.retention.failure_retention},
  };
}

std::string Name(const Setting& s) { return std::string(s.section) + "." + s.key; }

std::string EnvName(const Setting& s) {
  std::string name = std::string("DMARCD_") + s.section + "_" + s.key;
  for (char& ch : name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return name;
}

template <typename T>
bool ParseNumber(const std::string& text, T& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

// Stores a textual value (an environment variable) into the setting.
Result<void> SetFromText(const Setting& s, const std::string& text, const std::string& source) {
  const bool ok = std::visit(
      [&](auto* target) {
        using T = std::remove_pointer_t<decltype(target)>;
        if constexpr (std::is_same_v<T, std::string>) {
          *target = text;
          return true;
        } else if constexpr (std::is_same_v<T, bool>) {
          if (text != "true" && text != "false") return false;
          *target = text == "true";
          return true;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          target->clear();
          size_t start = 0;
          while (start <= text.size() && !text.empty()) {
            const size_t comma = std::min(text.find(',', start), text.size());
            if (comma > start) target->push_back(text.substr(start, comma - start));
            start = comma + 1;
          }
          return true;
        } else {
          T value{};
          if (!ParseNumber(text, value)) return false;
          *target = value;
          return true;
        }
      },
      s.target);
  if (!ok) {
    return MakeError(ErrorCode::kConfig,
                     source + ": '" + text + "' is not a valid value for " + Name(s));
  }
  return {};
}

// Stores a TOML value into the setting, checking its type and sign.
Result<void> SetFromToml(const Setting& s, const toml::node& node, const std::string& source) {
  const bool ok = std::visit(
      [&](auto* target) {
        using T = std::remove_pointer_t<decltype(target)>;
        if constexpr (std::is_same_v<T, std::string>) {
          auto v = node.value_exact<std::string>();
          if (v) *target = *v;
          return v.has_value();
        } else if constexpr (std::is_same_v<T, bool>) {
          auto v = node.value_exact<bool>();
          if (v) *target = *v;
          return v.has_value();
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          const toml::array* array = node.as_array();
          if (array == nullptr) return false;
          std::vector<std::string> values;
          for (const toml::node& item : *array) {
            auto v = item.value_exact<std::string>();
            if (!v) return false;
            values.push_back(*v);
          }
          *target = std::move(values);
          return true;
        } else if constexpr (std::is_same_v<T, double>) {
          auto v = node.value<double>();
          if (v) *target = *v;
          return v.has_value();
        } else {
          auto v = node.value_exact<int64_t>();
          if (!v || *v < 0) return false;
          if constexpr (std::is_same_v<T, int>) {
            if (*v > std::numeric_limits<int>::max()) return false;
          }
          *target = static_cast<T>(*v);
          return true;
        }
      },
      s.target);
  if (!ok) {
    return MakeError(ErrorCode::kConfig,
                     source + ": " + Name(s) + " has a value of the wrong type or range");
  }
  return {};
}

std::string UnknownKey(const std::string& path, const std::string& key) {
  std::string message = "config ";
  message += path;
  message += ": unknown key '";
  message += key;
  message += "'";
  return message;
}

// The [[imap]] array of tables, one account each, names unique.
Result<void> ApplyImap(Config& config, const toml::node& node, const std::string& path,
                       const EnvLookup& env) {
  const toml::array* tables = node.as_array();
  if (tables == nullptr || !tables->is_array_of_tables()) {
    return MakeError(ErrorCode::kConfig,
                     "config " + path + ": imap must be written as [[imap]] tables");
  }
  for (size_t i = 0; i < tables->size(); ++i) {
    const std::string where = "config " + path + ": imap[" + std::to_string(i + 1) + "]";
    auto account = ParseImapAccount(*tables->get(i)->as_table(), where, env);
    if (!account) return tl::unexpected(account.error());
    for (const ImapAccount& other : config.imap) {
      if (other.name == account->name) {
        return MakeError(ErrorCode::kConfig, where + ": a second account named " + other.name);
      }
    }
    config.imap.push_back(std::move(*account));
  }
  return {};
}

Result<void> ApplyFile(Config& config, const std::string& path, const EnvLookup& env) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return MakeError(ErrorCode::kConfig, "config " + path + ": " + std::string(e.description()));
  }

  std::vector<Setting> settings = Settings(config);
  for (const auto& [section_key, section_node] : table) {
    const std::string section(section_key.str());
    if (section == "imap") {
      if (auto r = ApplyImap(config, section_node, path, env); !r) return r;
      continue;
    }
    const toml::table* section_table = section_node.as_table();
    if (section_table == nullptr) {
      return MakeError(ErrorCode::kConfig, UnknownKey(path, section));
    }
    for (const auto& [key, node] : *section_table) {
      const Setting* found = nullptr;
      for (const Setting& s : settings) {
        if (section == s.section && key.str() == s.key) found = &s;
      }
      if (found == nullptr) {
        return MakeError(ErrorCode::kConfig,
                         UnknownKey(path, section + "." + std::string(key.str())));
      }
      if (auto r = SetFromToml(*found, node, "config " + path); !r) return r;
    }
  }
  return {};
}

// The first of `settings` (name, value) that is not above 0, as an error
// naming "section.name".
template <typename T>
Result<void> AllAboveZero(std::string_view section,
                          std::initializer_list<std::pair<const char*, T>> settings) {
  for (const auto& [name, value] : settings) {
    if (value < T{1}) {
      return MakeError(ErrorCode::kConfig, std::string(section) + "." + name + " must be above 0");
    }
  }
  return {};
}

// A cap of 0 would refuse every report; a ratio of 1 or less every
// compressed one.
Result<void> ValidateLimits(const parser::Limits& l) {
  if (auto bytes = AllAboveZero<uint64_t>(
          "limits", {{"max_envelope_bytes", l.max_envelope_bytes},
                     {"max_inflated_bytes", l.max_inflated_bytes},
                     {"max_envelope_inflated_bytes", l.max_envelope_inflated_bytes},
                     {"max_header_bytes", l.max_header_bytes},
                     {"max_text_bytes", l.max_text_bytes},
                     {"max_records", l.max_records}});
      !bytes) {
    return bytes;
  }
  if (auto counts = AllAboveZero<int>("limits", {{"max_zip_entries", l.max_zip_entries},
                                                 {"max_nesting_depth", l.max_nesting_depth},
                                                 {"max_mime_parts", l.max_mime_parts},
                                                 {"max_mime_depth", l.max_mime_depth},
                                                 {"max_xml_depth", l.max_xml_depth},
                                                 {"max_xml_attributes", l.max_xml_attributes}});
      !counts) {
    return counts;
  }
  if (!(l.max_compression_ratio > 1.0)) {
    return MakeError(ErrorCode::kConfig, "limits.max_compression_ratio must be above 1");
  }
  return {};
}

Result<void> Validate(const Config& config) {
  constexpr std::array<std::string_view, 7> kLevels = {"trace", "debug",    "info", "warn",
                                                       "error", "critical", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), config.log.level) == kLevels.end()) {
    return MakeError(ErrorCode::kConfig, "log.level '" + config.log.level +
                                             "' is not one of trace, debug, info, warn, error, "
                                             "critical, off");
  }
  if (config.http.threads < 1 || config.http.threads > 64) {
    return MakeError(ErrorCode::kConfig, "http.threads must be between 1 and 64");
  }
  if (config.http.max_upload_bytes == 0) {
    return MakeError(ErrorCode::kConfig, "http.max_upload_bytes must be above 0");
  }
  // A header block must hold a bearer token and a browser's usual headers;
  // Beast keeps it whole in memory, so it stays well below the body cap.
  if (config.http.max_header_bytes < 1024 || config.http.max_header_bytes > (uint64_t{1} << 20)) {
    return MakeError(ErrorCode::kConfig, "http.max_header_bytes must be between 1024 and 1048576");
  }
  if (auto limits = ValidateLimits(config.limits); !limits) return limits;
  if (config.http.tls_cert.empty() != config.http.tls_key.empty()) {
    return MakeError(ErrorCode::kConfig, "http.tls_cert and http.tls_key go together: set both");
  }
  if (auto http = AllAboveZero<int>(
          "http", {{"header_timeout", config.http.header_timeout},
                   {"request_timeout", config.http.request_timeout},
                   {"idle_timeout", config.http.idle_timeout},
                   {"max_connections", config.http.max_connections},
                   {"max_connections_per_client", config.http.max_connections_per_client}});
      !http) {
    return http;
  }
  for (const std::string& user : config.http.users) {
    if (auto parsed = ParseBasicUser(user); !parsed) return tl::unexpected(parsed.error());
  }
  if (config.http.request_timeout < config.http.header_timeout) {
    return MakeError(ErrorCode::kConfig,
                     "http.request_timeout must not be below http.header_timeout");
  }
  if (config.database.path.empty()) {
    return MakeError(ErrorCode::kConfig, "database.path must not be empty");
  }
  if (auto listen = SplitListen(config.http.listen); !listen) return tl::unexpected(listen.error());
  if (auto samples = storage::ParseSampleMode(config.privacy.store_samples); !samples) {
    return MakeError(ErrorCode::kConfig, "privacy." + samples.error().message);
  }
  if (auto retention = storage::ParseRetention(config.retention.failure_retention); !retention) {
    return MakeError(ErrorCode::kConfig, "retention." + retention.error().message);
  }
  return {};
}

}  // namespace

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

Result<Config> LoadConfig(const ConfigFlags& flags, const EnvLookup& env) {
  Config config;
  if (flags.default_log_level) config.log.level = *flags.default_log_level;
  if (flags.config_file) {
    if (auto r = ApplyFile(config, *flags.config_file, env); !r) return tl::unexpected(r.error());
  }

  for (const Setting& s : Settings(config)) {
    const std::string name = EnvName(s);
    if (auto value = env(name)) {
      if (auto r = SetFromText(s, *value, name); !r) return tl::unexpected(r.error());
    }
  }

  if (flags.database_path) config.database.path = *flags.database_path;
  if (flags.log_level) config.log.level = *flags.log_level;
  if (flags.listen) config.http.listen = *flags.listen;

  if (auto r = Validate(config); !r) return tl::unexpected(r.error());
  return config;
}

storage::FailurePrivacy FailurePrivacyOf(const Config& config) {
  storage::FailurePrivacy privacy;
  privacy.store_samples = storage::ParseSampleMode(config.privacy.store_samples)
                              .value_or(storage::SampleMode::kHeaders);
  privacy.redact_local_parts = config.privacy.redact_local_parts;
  return privacy;
}

Result<std::pair<std::string, uint16_t>> SplitListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    return MakeError(ErrorCode::kConfig,
                     "listen address '" + listen + "' is not ADDRESS:PORT (e.g. 127.0.0.1:8080)");
  }
  std::string address = listen.substr(0, colon);
  if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  unsigned port = 0;
  if (!ParseNumber(listen.substr(colon + 1), port) || port > 65535) {
    return MakeError(ErrorCode::kConfig, "listen address '" + listen + "' has a bad port");
  }
  return std::make_pair(address, static_cast<uint16_t>(port));
}

}  // namespace dmarcd::server
