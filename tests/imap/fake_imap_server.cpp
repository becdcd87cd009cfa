#include "fake_imap_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace dmarcd::test {

const char* ImapFaultName(ImapFault fault) {
  switch (fault) {
    case ImapFault::kNone:
      return "none";
    case ImapFault::kGreetingGarbage:
      return "greeting_garbage";
    case ImapFault::kDisconnectAfterLogin:
      return "disconnect_after_login";
    case ImapFault::kDisconnectMidLiteral:
      return "disconnect_mid_literal";
    case ImapFault::kUntaggedGarbage:
      return "untagged_garbage_during_fetch";
    case ImapFault::kTaggedNo:
      return "tagged_no_then_ok";
    case ImapFault::kStall:
      return "stall_forever";
    case ImapFault::kWrongTag:
      return "wrong_tag";
  }
  return "none";
}

struct FakeImapServer::State {
  static constexpr uint32_t kUidValidity = 7;

  mutable std::mutex mutex;
  std::map<uint32_t, std::string> inbox;  // UID -> message
  std::map<std::string, std::vector<uint32_t>> folders;
  std::map<uint32_t, int> body_fetches;
  ImapFault fault = ImapFault::kNone;
  bool faulted = false;
  int connections = 0;
  uint32_t uid_next = 1;

  int listener = -1;
  std::atomic<bool> stopping{false};
  std::thread acceptor;
  std::vector<std::thread> sessions;

  // Plays the fault if it is `which` and has not been played yet.
  bool Play(ImapFault which) {
    std::lock_guard lock(mutex);
    if (fault != which || faulted) return false;
    faulted = true;
    return true;
  }

  void Accept() {
    while (!stopping) {
      pollfd waiting{listener, POLLIN, 0};
      if (poll(&waiting, 1, 50) <= 0) continue;
      const int client = accept(listener, nullptr, nullptr);
      if (client < 0) continue;
      {
        std::lock_guard lock(mutex);
        ++connections;
      }
      sessions.emplace_back([this, client] {
        Session(client);
        close(client);
      });
    }
  }

  static bool Send(int fd, const std::string& text) {
    size_t sent = 0;
    while (sent < text.size()) {
      const ssize_t n = send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // One CRLF-terminated line, without it; false when the peer is gone or the
  // server stops.
  bool ReadLine(int fd, std::string& buffer, std::string& line) const {
    for (;;) {
      const size_t end = buffer.find("\r\n");
      if (end != std::string::npos) {
        line = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        return true;
      }
      pollfd waiting{fd, POLLIN, 0};
      if (stopping) return false;
      if (poll(&waiting, 1, 50) <= 0) continue;
      char chunk[4096];
      const ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<size_t>(n));
    }
  }

  // Waits, answering nothing, until the peer goes away.
  void Silence(int fd) const {
    std::string buffer;
    std::string line;
    while (ReadLine(fd, buffer, line)) {
    }
  }

  static std::string Upper(std::string text) {
    for (char& ch : text) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return text;
  }

  static std::string Unquote(std::string text) {
    if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
      return text.substr(1, text.size() - 2);
    }
    return text;
  }

  // "1,3,5:7" and "1:*" against the UIDs in INBOX.
  std::vector<uint32_t> Matching(const std::string& set) const {
    std::vector<uint32_t> out;
    std::stringstream ranges(set);
    for (std::string range; std::getline(ranges, range, ',');) {
      const size_t colon = range.find(':');
      const std::string first_text = range.substr(0, colon);
      const std::string last_text =
          colon == std::string::npos ? first_text : range.substr(colon + 1);
      const uint32_t first = static_cast<uint32_t>(std::stoul(first_text));
      const uint32_t last =
          last_text == "*" ? UINT32_MAX : static_cast<uint32_t>(std::stoul(last_text));
      for (const auto& [uid, bytes] : inbox) {
        if (uid >= std::min(first, last) && uid <= std::max(first, last)) out.push_back(uid);
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  uint32_t Sequence(uint32_t uid) const {
    return static_cast<uint32_t>(std::distance(inbox.begin(), inbox.find(uid)) + 1);
  }

  void Session(int fd) {
    if (Play(ImapFault::kGreetingGarbage)) {
      Send(fd, "\x16\x03\x01 not an imap greeting\r\n");
      Silence(fd);
      return;
    }
    if (Play(ImapFault::kStall)) {
      Send(fd, "* OK ready\r\n");
      Silence(fd);
      return;
    }
    if (!Send(fd, "* OK [CAPABILITY IMAP4rev1 UIDPLUS MOVE] fake server ready\r\n")) return;

    std::string buffer;
    std::string line;
    while (ReadLine(fd, buffer, line)) {
      std::istringstream words(line);
      std::string tag;
      std::string command;
      words >> tag >> command;
      command = Upper(command);
      std::string rest;
      std::getline(words, rest);
      if (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
      if (!Answer(fd, tag, command, rest)) return;
    }
  }

  // False when the connection is to be closed.
  bool Answer(int fd, const std::string& tag, const std::string& command, const std::string& rest) {
    const std::string ok = tag + " OK " + command + " completed\r\n";
    if (command == "CAPABILITY") {
      return Send(fd, "* CAPABILITY IMAP4rev1 UIDPLUS MOVE\r\n" + ok);
    }
    if (command == "LOGIN") {
      if (Play(ImapFault::kDisconnectAfterLogin)) {
        Send(fd, tag + " OK\r\n");
        return false;
      }
      return Send(fd, ok);
    }
    if (command == "LOGOUT") {
      Send(fd, "* BYE logging out\r\n" + ok);
      return false;
    }
    if (command == "NOOP") return Send(fd, ok);

    std::unique_lock lock(mutex);
    if (command == "SELECT" || command == "EXAMINE") {
      const std::string name = Unquote(rest);
      if (Upper(name) != "INBOX" && folders.count(name) == 0)
        return Send(fd, tag + " NO no such\r\n");
      return Send(fd, "* " + std::to_string(inbox.size()) + " EXISTS\r\n* OK [UIDVALIDITY " +
                          std::to_string(kUidValidity) + "] ok\r\n* OK [UIDNEXT " +
                          std::to_string(uid_next) + "] ok\r\n" + tag +
                          " OK [READ-WRITE] SELECT completed\r\n");
    }
    if (command == "STATUS") {
      return Send(fd, "* STATUS INBOX (UIDVALIDITY " + std::to_string(kUidValidity) + " UIDNEXT " +
                          std::to_string(uid_next) + " MESSAGES " + std::to_string(inbox.size()) +
                          ")\r\n" + ok);
    }
    if (command == "LIST") {
      if (rest == "\"\" \"\"") return Send(fd, "* LIST (\\Noselect) \"/\" \"\"\r\n" + ok);
      std::string answer;
      for (const auto& [name, uids] : folders) answer += "* LIST () \"/\" \"" + name + "\"\r\n";
      return Send(fd, answer + ok);
    }
    if (command == "CREATE") {
      folders[Unquote(rest)];
      return Send(fd, ok);
    }
    if (command != "UID") return Send(fd, tag + " BAD unknown command\r\n");

    std::istringstream words(rest);
    std::string sub;
    std::string set;
    words >> sub >> set;
    sub = Upper(sub);
    std::string items;
    std::getline(words, items);
    if (!items.empty() && items.front() == ' ') items.erase(0, 1);

    if (sub == "SEARCH") {
      // "UID SEARCH UNDELETED UID n:*"
      std::string range = items.substr(items.rfind(' ') + 1);
      std::string answer = "* SEARCH";
      for (uint32_t uid : Matching(range)) answer += " " + std::to_string(uid);
      return Send(fd, answer + "\r\n" + tag + " OK SEARCH completed\r\n");
    }
    if (sub == "MOVE") {
      const std::string target = Unquote(items);
      std::string answer;
      for (uint32_t uid : Matching(set)) {
        answer += "* " + std::to_string(Sequence(uid)) + " EXPUNGE\r\n";
        folders[target].push_back(uid);
        inbox.erase(uid);
      }
      return Send(fd, answer + ok);
    }
    if (sub != "FETCH") return Send(fd, ok);

    const std::string upper_items = Upper(items);
    if (upper_items.find("RFC822.SIZE") != std::string::npos) {
      std::string answer;
      for (uint32_t uid : Matching(set)) {
        answer += "* " + std::to_string(Sequence(uid)) + " FETCH (UID " + std::to_string(uid) +
                  " RFC822.SIZE " + std::to_string(inbox[uid].size()) + ")\r\n";
      }
      return Send(fd, answer + ok);
    }

    const uint32_t uid = static_cast<uint32_t>(std::stoul(set));
    auto message = inbox.find(uid);
    if (message == inbox.end()) return Send(fd, ok);
    const std::string seq = std::to_string(Sequence(uid));
    if (upper_items.find("BODY[HEADER]") != std::string::npos) {
      const size_t blank = message->second.find("\r\n\r\n");
      const std::string header =
          blank == std::string::npos ? message->second : message->second.substr(0, blank + 4);
      return Send(fd, "* " + seq + " FETCH (UID " + set + " BODY[HEADER]<0> {" +
                          std::to_string(header.size()) + "}\r\n" + header + ")\r\n" + ok);
    }

    ++body_fetches[uid];
    const std::string bytes = message->second;
    lock.unlock();
    const std::string opening =
        "* " + seq + " FETCH (UID " + set + " BODY[] {" + std::to_string(bytes.size()) + "}\r\n";
    if (Play(ImapFault::kDisconnectMidLiteral)) {
      Send(fd, opening + bytes.substr(0, 1000));
      return false;
    }
    if (Play(ImapFault::kUntaggedGarbage)) {
      // The script's bytes, NUL included: "* BYE )))((( \x00\xff".
      constexpr char kGarbage[] = "* BYE )))((( \x00\xff\r\n";
      return Send(fd, "* " + seq + " FETCH (UID " + set + " RFC822.SIZE 900\r\n" +
                          std::string(kGarbage, sizeof kGarbage - 1) + tag +
                          " OK FETCH completed\r\n");
    }
    if (Play(ImapFault::kTaggedNo)) return Send(fd, tag + " NO [UNAVAILABLE] backend down\r\n");
    if (Play(ImapFault::kWrongTag)) {
      Send(fd, opening + bytes + ")\r\nzz99 OK FETCH completed\r\n");
      Silence(fd);
      return false;
    }
    return Send(fd, opening + bytes + ")\r\n" + ok);
  }
};

FakeImapServer::FakeImapServer(std::vector<std::string> messages, ImapFault fault)
    : state_(std::make_unique<State>()) {
  for (std::string& message : messages) state_->inbox[state_->uid_next++] = std::move(message);
  state_->fault = fault;

  state_->listener = socket(AF_INET, SOCK_STREAM, 0);
  const int yes = 1;
  setsockopt(state_->listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(state_->listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      listen(state_->listener, 8) == 0 &&
      getsockname(state_->listener, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port_ = ntohs(address.sin_port);
  }
  state_->acceptor = std::thread([this] { state_->Accept(); });
}

FakeImapServer::~FakeImapServer() {
  state_->stopping = true;
  state_->acceptor.join();
  for (std::thread& session : state_->sessions) session.join();
  close(state_->listener);
}

int FakeImapServer::Connections() const {
  std::lock_guard lock(state_->mutex);
  return state_->connections;
}

bool FakeImapServer::Faulted() const {
  std::lock_guard lock(state_->mutex);
  return state_->faulted;
}

int FakeImapServer::BodyFetches(uint32_t uid) const {
  std::lock_guard lock(state_->mutex);
  auto found = state_->body_fetches.find(uid);
  return found == state_->body_fetches.end() ? 0 : found->second;
}

std::vector<uint32_t> FakeImapServer::Inbox() const {
  std::lock_guard lock(state_->mutex);
  std::vector<uint32_t> uids;
  for (const auto& [uid, bytes] : state_->inbox) uids.push_back(uid);
  return uids;
}

std::vector<uint32_t> FakeImapServer::Folder(const std::string& name) const {
  std::lock_guard lock(state_->mutex);
  auto found = state_->folders.find(name);
  return found == state_->folders.end() ? std::vector<uint32_t>() : found->second;
}

}  // namespace dmarcd::test
