// `dmarcd fetch`: polls the [[imap]] accounts of the configuration without
// the HTTP server, storing through storage::Writer directly (SQLite
// serialises this writer with a running server's).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "server/config.hpp"
#include "server/imap_account.hpp"

namespace dmarcd::server {

// Exit statuses of `dmarcd fetch`, documented in its --help.
enum class FetchExit {
  kOk = 0,        // every message handled, nothing rejected
  kRejected = 1,  // some messages held no report (filed under Failure or Invalid)
  kUsage = 2,     // bad usage or configuration (no [[imap]] account, unknown --account)
  kFailed = 3,    // an account failed (login, TLS, mailbox, network) or messages were deferred
};

struct FetchOptions {
  bool once = false;                   // one pass over every account, then exit
  std::optional<std::string> account;  // only this account
};

// With `once`, polls each account one time and prints one line per account
//   fetch: account=NAME seen=N stored=N duplicate=N rejected=N deferred=N seconds=X.XX
// on `out`, errors on `err`. Without it, polls every account at its
// interval until SIGINT or SIGTERM and returns kOk.
// `accounts` are the configuration's [[imap]] accounts.
FetchExit RunFetch(const Config& config, const std::vector<ImapAccount>& accounts,
                   const FetchOptions& options, std::ostream& out, std::ostream& err);

}  // namespace dmarcd::server
