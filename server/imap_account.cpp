#include "server/imap_account.hpp"

#include <charconv>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>

namespace dmarcd::server {
namespace {

// Built step by step: g++ 12 at -O2 warns (-Wrestrict, a false positive)
// about "'" + std::string(...).
tl::unexpected<Error> NotADuration(std::string_view text) {
  std::string message = "'";
  message += text;
  message += "' is not a duration";
  return MakeError(ErrorCode::kConfig, std::move(message));
}

Result<std::string> ReadSecretFile(const std::string& path, const std::string& where) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return MakeError(ErrorCode::kConfig, where + ": cannot read password_file " + path);
  std::string secret((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  // A secret file written by `echo` ends with a newline that is no part of it.
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) return MakeError(ErrorCode::kConfig, where + ": password_file is empty");
  return secret;
}

Result<std::string> GetString(const toml::table& table, std::string_view key,
                              const std::string& where, std::optional<std::string> fallback) {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    if (fallback) return *fallback;
    return MakeError(ErrorCode::kConfig, where + ": " + std::string(key) + " is required");
  }
  auto value = node->value_exact<std::string>();
  if (!value) {
    return MakeError(ErrorCode::kConfig, where + ": " + std::string(key) + " must be a string");
  }
  return *value;
}

Result<void> SetTls(ImapAccount& account, const std::string& value, const std::string& where) {
  if (value == "implicit") {
    account.tls = ImapTls::kImplicit;
  } else if (value == "starttls") {
    account.tls = ImapTls::kStartTls;
  } else if (value == "none") {
    account.tls = ImapTls::kNone;
  } else {
    return MakeError(ErrorCode::kConfig,
                     where + ": tls '" + value + "' is not implicit, starttls or none");
  }
  return {};
}

Result<void> SetAfter(ImapAccount& account, const std::string& value, const std::string& where) {
  if (value == "move") {
    account.after = AfterFetch::kMove;
  } else if (value == "delete") {
    account.after = AfterFetch::kDelete;
  } else if (value == "keep") {
    account.after = AfterFetch::kKeep;
  } else {
    return MakeError(ErrorCode::kConfig,
                     where + ": after '" + value + "' is not move, delete or keep");
  }
  return {};
}

Result<int64_t> GetInteger(const toml::table& table, std::string_view key, const std::string& where,
                           int64_t low, int64_t high, int64_t fallback) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return fallback;
  auto value = node->value_exact<int64_t>();
  if (!value || *value < low || *value > high) {
    return MakeError(ErrorCode::kConfig, where + ": " + std::string(key) +
                                             " must be an integer from " + std::to_string(low) +
                                             " to " + std::to_string(high));
  }
  return *value;
}

Result<std::chrono::seconds> GetDuration(const toml::table& table, std::string_view key,
                                         const std::string& where, std::chrono::seconds fallback) {
  const toml::node* node = table.get(key);
  if (node == nullptr) return fallback;
  if (auto number = node->value_exact<int64_t>()) return ParseInterval(std::to_string(*number));
  auto text = node->value_exact<std::string>();
  auto parsed = text ? ParseInterval(*text) : MakeError(ErrorCode::kConfig, "");
  if (!parsed) {
    return MakeError(ErrorCode::kConfig, where + ": " + std::string(key) +
                                             " must be a duration such as \"90s\", \"5m\", "
                                             "\"1h\"");
  }
  return parsed;
}

Result<std::string> ResolvePassword(
    const toml::table& table, const std::string& where,
    const std::function<std::optional<std::string>(const std::string&)>& env) {
  const int sources = (table.contains("password") ? 1 : 0) +
                      (table.contains("password_env") ? 1 : 0) +
                      (table.contains("password_file") ? 1 : 0);
  if (sources != 1) {
    return MakeError(ErrorCode::kConfig,
                     where + ": exactly one of password, password_env, password_file is needed");
  }
  if (table.contains("password")) return GetString(table, "password", where, std::nullopt);
  if (table.contains("password_env")) {
    auto name = GetString(table, "password_env", where, std::nullopt);
    if (!name) return name;
    auto value = env(*name);
    if (!value || value->empty()) {
      return MakeError(ErrorCode::kConfig,
                       where + ": environment variable " + *name + " is not set");
    }
    return *value;
  }
  auto path = GetString(table, "password_file", where, std::nullopt);
  if (!path) return path;
  return ReadSecretFile(*path, where);
}

}  // namespace

std::string_view ImapTlsName(ImapTls tls) {
  switch (tls) {
    case ImapTls::kImplicit:
      return "implicit";
    case ImapTls::kStartTls:
      return "starttls";
    case ImapTls::kNone:
      return "none";
  }
  return "none";
}

std::string_view AfterFetchName(AfterFetch after) {
  switch (after) {
    case AfterFetch::kMove:
      return "move";
    case AfterFetch::kDelete:
      return "delete";
    case AfterFetch::kKeep:
      return "keep";
  }
  return "keep";
}

Result<std::chrono::seconds> ParseInterval(std::string_view text) {
  int64_t number = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, number);
  if (ec != std::errc() || number < 1) {
    return NotADuration(text);
  }
  const std::string_view unit(ptr, static_cast<size_t>(end - ptr));
  int64_t scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else if (unit == "d") {
    scale = 86400;
  }
  if (scale == 0 || number > int64_t{366} * 86400 / scale) {
    return NotADuration(text);
  }
  return std::chrono::seconds(number * scale);
}

bool IsLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.starts_with("127.");
}

Result<ImapAccount> ParseImapAccount(
    const toml::table& table, const std::string& where,
    const std::function<std::optional<std::string>(const std::string&)>& env) {
  static const std::set<std::string, std::less<>> known_keys = {"name",
                                                                "host",
                                                                "port",
                                                                "tls",
                                                                "user",
                                                                "password",
                                                                "password_env",
                                                                "password_file",
                                                                "mailbox",
                                                                "archive",
                                                                "after",
                                                                "interval",
                                                                "ca_file",
                                                                "allow_plaintext",
                                                                "timeout",
                                                                "batch",
                                                                "max_message_bytes"};
  for (const auto& [key, node] : table) {
    if (known_keys.find(key.str()) == known_keys.end()) {
      return MakeError(ErrorCode::kConfig,
                       where + ": unknown key '" + std::string(key.str()) + "'");
    }
  }

  ImapAccount account;
  auto name = GetString(table, "name", where, std::nullopt);
  if (!name) return tl::unexpected(name.error());
  account.name = *name;
  const std::string named = where + " (" + account.name + ")";

  auto host = GetString(table, "host", named, std::nullopt);
  auto user = GetString(table, "user", named, std::nullopt);
  auto tls = GetString(table, "tls", named, "implicit");
  auto mailbox = GetString(table, "mailbox", named, "INBOX");
  auto archive = GetString(table, "archive", named, "Archive");
  auto after = GetString(table, "after", named, "move");
  auto ca_file = GetString(table, "ca_file", named, "");
  for (const auto* value : {&host, &user, &tls, &mailbox, &archive, &after, &ca_file}) {
    if (!*value) return tl::unexpected(value->error());
  }
  account.host = *host;
  account.user = *user;
  account.mailbox = *mailbox;
  account.archive = *archive;
  account.ca_file = *ca_file;
  if (auto r = SetTls(account, *tls, named); !r) return tl::unexpected(r.error());
  if (auto r = SetAfter(account, *after, named); !r) return tl::unexpected(r.error());

  const int64_t default_port = account.tls == ImapTls::kImplicit ? 993 : 143;
  auto port = GetInteger(table, "port", named, 1, 65535, default_port);
  auto batch = GetInteger(table, "batch", named, 1, 10000, 100);
  if (!port) return tl::unexpected(port.error());
  if (!batch) return tl::unexpected(batch.error());
  account.port = static_cast<uint16_t>(*port);
  account.batch = static_cast<int>(*batch);
  auto max_message =
      GetInteger(table, "max_message_bytes", named, 1024, std::numeric_limits<int64_t>::max(),
                 static_cast<int64_t>(account.max_message_bytes));
  if (!max_message) return tl::unexpected(max_message.error());
  account.max_message_bytes = static_cast<uint64_t>(*max_message);

  auto interval = GetDuration(table, "interval", named, std::chrono::seconds(300));
  auto timeout = GetDuration(table, "timeout", named, std::chrono::seconds(60));
  if (!interval) return tl::unexpected(interval.error());
  if (!timeout) return tl::unexpected(timeout.error());
  account.interval = *interval;
  account.timeout = *timeout;

  if (const toml::node* node = table.get("allow_plaintext")) {
    auto value = node->value_exact<bool>();
    if (!value) return MakeError(ErrorCode::kConfig, named + ": allow_plaintext must be a boolean");
    account.allow_plaintext = *value;
  }
  auto password = ResolvePassword(table, named, env);
  if (!password) return tl::unexpected(password.error());
  account.password = std::move(*password);

  if (account.name.empty() || account.host.empty() || account.mailbox.empty() ||
      account.archive.empty()) {
    return MakeError(ErrorCode::kConfig,
                     named + ": name, host, mailbox and archive must not be empty");
  }
  if (account.tls == ImapTls::kNone && !account.allow_plaintext && !IsLoopbackHost(account.host)) {
    return MakeError(ErrorCode::kConfig,
                     named +
                         ": tls = \"none\" sends the password in the clear; it is allowed "
                         "only to a loopback address unless allow_plaintext = true");
  }
  return account;
}

}  // namespace dmarcd::server
