// A small scripted IMAP server on loopback for the fault tests of issue #6
// (the scenarios of tests/data/imap/imap_hostile_responses.txt).
//
// It speaks just enough IMAP4rev1 (RFC 3501) with MOVE (RFC 6851) and
// UIDPLUS for libcurl and the poller: CAPABILITY, LOGIN, SELECT, STATUS,
// LIST, CREATE, UID SEARCH, UID FETCH (RFC822.SIZE, BODY[], BODY[HEADER]),
// UID MOVE, NOOP and LOGOUT, over one INBOX and the folders created in it.
// One fault is played once, at the first place it applies; after that the
// server behaves. Every connection has its own thread; all are ended and
// joined by the destructor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dmarcd::test {

enum class ImapFault {
  kNone,
  kGreetingGarbage,       // a TLS ClientHello-like greeting instead of "* OK"
  kDisconnectAfterLogin,  // "OK" to LOGIN, then the socket is closed
  kDisconnectMidLiteral,  // a BODY[] literal cut after 1000 bytes, then closed
  kUntaggedGarbage,       // an unfinished FETCH line and a garbled BYE instead of BODY[]
  kTaggedNo,              // "NO [UNAVAILABLE] backend down" to the first BODY[] fetch
  kStall,                 // "* OK ready", then silence on that connection
  kWrongTag,              // a BODY[] answer finished with a tag the client never sent
};

const char* ImapFaultName(ImapFault fault);

class FakeImapServer {
 public:
  // Messages get UIDs 1, 2, ... in order.
  FakeImapServer(std::vector<std::string> messages, ImapFault fault);
  ~FakeImapServer();
  FakeImapServer(const FakeImapServer&) = delete;
  FakeImapServer& operator=(const FakeImapServer&) = delete;

  uint16_t Port() const { return port_; }

  int Connections() const;
  // Whether the fault was played.
  bool Faulted() const;
  // How often BODY[] of this UID was asked for (a whole download, whether
  // or not it was answered whole).
  int BodyFetches(uint32_t uid) const;
  // UIDs still in INBOX, ascending.
  std::vector<uint32_t> Inbox() const;
  // UIDs moved to a folder ("Archive/Aggregate").
  std::vector<uint32_t> Folder(const std::string& name) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
  uint16_t port_ = 0;
};

}  // namespace dmarcd::test
