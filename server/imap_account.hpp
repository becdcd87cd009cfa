// One IMAP account to poll: the [[imap]] tables of the configuration.
//
// ParseImapAccount reads one table, resolves the password (from `password`,
// the environment variable named by `password_env`, or the file named by
// `password_file`) and checks the transport: plaintext IMAP is allowed only
// to a loopback address unless `allow_plaintext = true`, so a password is
// never sent in the clear by mistake. Every failure is a kConfig error that
// names the account and the key.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "parser/error.hpp"

namespace dmarcd::server {

enum class ImapTls {
  kImplicit,  // TLS from the first byte (imaps, port 993)
  kStartTls,  // plain connection upgraded with STARTTLS (RFC 3501 section 6.2.1), required
  kNone,      // no TLS: loopback or allow_plaintext only
};

// What happens to a message once its outcome is committed.
enum class AfterFetch {
  kMove,    // to <archive>/Aggregate, <archive>/Failure or <archive>/Invalid
  kDelete,  // flagged \Deleted and expunged
  kKeep,    // left alone; the highest UID handled is remembered (read-only access)
};

struct ImapAccount {
  std::string name;  // for logs, /healthz and the remembered UID state
  std::string host;
  uint16_t port = 993;  // default: 993 for implicit TLS, 143 otherwise
  ImapTls tls = ImapTls::kImplicit;
  std::string user;
  std::string password;  // resolved; never logged
  std::string mailbox = "INBOX";
  std::string archive = "Archive";
  AfterFetch after = AfterFetch::kMove;
  std::chrono::seconds interval{300};  // between polls under `serve`
  std::string ca_file;                 // PEM bundle of a private CA; empty: system store
  bool allow_plaintext = false;
  std::chrono::seconds timeout{60};  // connect timeout, and the longest stall of a transfer
  int batch = 100;                   // messages fetched before the next move and state update
  // A message whose RFC822.SIZE is above this is never downloaded: its
  // header section alone is kept, as rejected input (kTooLarge). `dmarcd
  // fetch` lowers it to [limits] max_envelope_bytes when that is smaller.
  uint64_t max_message_bytes = uint64_t{256} << 20;
};

std::string_view ImapTlsName(ImapTls tls);          // "implicit", "starttls", "none"
std::string_view AfterFetchName(AfterFetch after);  // "move", "delete", "keep"

// "90s", "5m", "1h", "1d" or a bare number of seconds; at least one second.
Result<std::chrono::seconds> ParseInterval(std::string_view text);

// Reads one [[imap]] table; `where` names it in messages ("config FILE:
// imap[1]"). `env` looks up password_env.
Result<ImapAccount> ParseImapAccount(
    const toml::table& table, const std::string& where,
    const std::function<std::optional<std::string>(const std::string&)>& env);

// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(std::string_view host);

}  // namespace dmarcd::server
