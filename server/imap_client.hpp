// A blocking IMAP client for one account, on libcurl.
//
// One ImapClient holds one curl easy handle, so that libcurl keeps the
// connection (and its login and selected mailbox) open from one call to the
// next. Every call may reconnect and log in again when the connection was
// lost; after a failed call the next one always starts on a new connection.
// A call waits at most ImapAccount::timeout for a byte from the server; one
// that fails that way may wait as long again for the server to answer the
// LOGOUT libcurl sends while closing, so it returns within twice the timeout.
//
// Errors: kUnauthorized when the server refuses the login; kNotFound for a
// mailbox that does not exist; kNetwork for everything else of the
// connection (refused, reset, timed out, TLS handshake or certificate
// verification failed, a command refused by the server). A kNetwork error
// says nothing about the message at hand: the caller retries later.
//
// Not thread-safe: one client per thread. Stop() alone may be called from
// another thread: it makes the call in progress and every later call fail
// quickly with kNetwork ("stopped").
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "parser/error.hpp"
#include "server/imap_account.hpp"

namespace dmarcd::server {

struct MailboxStatus {
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 0;
  uint32_t messages = 0;
};

class ImapClient {
 public:
  explicit ImapClient(const ImapAccount& account);
  ~ImapClient();
  ImapClient(const ImapClient&) = delete;
  ImapClient& operator=(const ImapClient&) = delete;

  // The server's capabilities, upper case ("IMAP4REV1", "MOVE", "UIDPLUS").
  Result<std::set<std::string>> Capabilities();

  // STATUS (RFC 3501 section 6.3.10): UIDVALIDITY, UIDNEXT, MESSAGES.
  Result<MailboxStatus> Status(const std::string& mailbox);

  // The hierarchy delimiter of the personal namespace ("/" or "."), from
  // LIST "" "" (RFC 3501 section 6.3.8).
  Result<char> Delimiter();

  // Names of the mailboxes matching a LIST pattern.
  Result<std::vector<std::string>> List(const std::string& pattern);

  // CREATE (RFC 3501 section 6.3.3).
  Result<void> Create(const std::string& mailbox);

  // UIDs of the messages in `mailbox` not flagged \Deleted with a UID of at
  // least `first_uid`, ascending.
  Result<std::vector<uint32_t>> Search(const std::string& mailbox, uint32_t first_uid);

  // The whole message (BODY[], RFC 3501 section 6.4.5) with this UID. A
  // UID that is gone is kNotFound.
  Result<std::string> Fetch(const std::string& mailbox, uint32_t uid);

  // RFC822.SIZE (RFC 3501 section 6.4.5) of the messages with these UIDs,
  // from one UID FETCH; a UID the server did not answer for (gone, or an
  // answer too garbled to read) is absent from the map.
  Result<std::map<uint32_t, uint64_t>> Sizes(const std::string& mailbox,
                                             const std::vector<uint32_t>& uids);

  // The message's header section (BODY[HEADER], RFC 3501 section 6.4.5),
  // at most `max_bytes` of it, for a message too large to download whole.
  // A UID that is gone is kNotFound.
  Result<std::string> FetchHeader(const std::string& mailbox, uint32_t uid, uint64_t max_bytes);

  // Moves the messages to `target`: UID MOVE (RFC 6851) when the server
  // has MOVE; otherwise UID COPY, \Deleted and UID EXPUNGE (RFC 4315), or a
  // plain EXPUNGE when the server lacks UIDPLUS.
  Result<void> Move(const std::string& mailbox, const std::vector<uint32_t>& uids,
                    const std::string& target);

  // Flags the messages \Deleted and expunges them (as Move does).
  Result<void> Delete(const std::string& mailbox, const std::vector<uint32_t>& uids);

  void Stop();

 private:
  void Configure();  // sets every option on a new handle
  Result<std::string> Run(const std::string& path, const std::string& command);
  Result<bool> Has(const std::string& capability);
  Result<void> Expunge(const std::string& mailbox, const std::string& set);

  const ImapAccount& account_;
  void* curl_;  // CURL*, kept out of the header
  std::string base_url_;
  std::string body_;
  int last_code_ = 0;  // the CURLcode of the last transfer
  std::atomic<bool> stopped_{false};
  std::set<std::string> capabilities_;
};

// Quotes a mailbox name as an IMAP quoted string (RFC 3501 section 4.3).
std::string QuoteMailbox(const std::string& name);

// "1,3,5:7" from ascending UIDs.
std::string UidSet(const std::vector<uint32_t>& uids);

}  // namespace dmarcd::server
