// A private Dovecot for the IMAP tests: an unprivileged instance with its
// own base directory, configuration, static password database ("secret"
// for every user), a Maildir per user in a temporary folder, a plain
// listener and an implicit-TLS listener whose certificate is signed by a CA
// the harness creates. No system service is touched; the instance and its
// folder are gone when the object is destroyed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace dmarcd::test {

class TestDovecot {
 public:
  // Starts Dovecot; on failure IsRunning() is false and Failure() says why.
  TestDovecot();
  ~TestDovecot();
  TestDovecot(const TestDovecot&) = delete;
  TestDovecot& operator=(const TestDovecot&) = delete;

  bool IsRunning() const { return pid_ > 0; }
  const std::string& Failure() const { return failure_; }

  uint16_t ImapPort() const { return imap_port_; }
  uint16_t ImapsPort() const { return imaps_port_; }
  std::filesystem::path Dir() const { return dir_; }
  std::filesystem::path CaFile() const { return dir_ / "tls" / "ca.crt"; }
  // A CA that signed nothing this server presents.
  std::filesystem::path OtherCaFile() const { return dir_ / "tls" / "other-ca.crt"; }
  std::string LogText() const;

  // Delivers a message into the user's INBOX (Maildir new/), as local
  // delivery (an MDA) does. Returns the file name.
  std::string Deliver(const std::string& user, const std::string& bytes);

  // The messages in a mailbox ("INBOX", "Archive/Aggregate"), read from
  // the Maildir on disk, in file name order.
  std::vector<std::string> Messages(const std::string& user, const std::string& mailbox) const;

  // The Maildir folder of a mailbox.
  std::filesystem::path MailboxDir(const std::string& user, const std::string& mailbox) const;

  // Stops the instance (SIGTERM, then SIGKILL). Idempotent.
  void Stop();

 private:
  std::filesystem::path dir_;
  uint16_t imap_port_ = 0;
  uint16_t imaps_port_ = 0;
  pid_t pid_ = -1;
  std::string failure_;
  int delivered_ = 0;
};

// A loopback TCP proxy in front of a server. The first connection is cut
// (both directions closed) once the server has sent `pattern` `occurrence`
// times and then `extra` more bytes; later connections pass untouched.
class CuttingProxy {
 public:
  CuttingProxy(uint16_t upstream_port, std::string pattern, int occurrence, size_t extra);
  ~CuttingProxy();
  CuttingProxy(const CuttingProxy&) = delete;
  CuttingProxy& operator=(const CuttingProxy&) = delete;

  uint16_t Port() const { return port_; }
  bool Cut() const;  // whether the first connection was cut

 private:
  struct Impl;
  Impl* impl_;
  uint16_t port_ = 0;
};

// Reads a whole file; empty when it cannot be read.
std::string ReadFile(const std::filesystem::path& path);

}  // namespace dmarcd::test
