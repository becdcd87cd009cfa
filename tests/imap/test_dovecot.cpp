#include "test_dovecot.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace dmarcd::test {
namespace fs = std::filesystem;
namespace {

uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                     getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  close(fd);
  return bound ? ntohs(address.sin_port) : 0;
}

bool CanConnect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return ok;
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

void ChownNobody(const fs::path& path) {
  const passwd* nobody = getpwnam("nobody");
  if (nobody != nullptr) {
    if (chown(path.c_str(), nobody->pw_uid, nobody->pw_gid) != 0) return;
  }
}

bool Run(const std::string& command) { return std::system(command.c_str()) == 0; }

// A CA, and a server certificate for localhost and 127.0.0.1 signed by it;
// a second CA that signed nothing.
bool MakeCertificates(const fs::path& tls) {
  const std::string d = tls.string();
  const std::string quiet = " >/dev/null 2>&1";
  return Run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=dmarcd-test-ca -keyout " +
             d + "/ca.key -out " + d + "/ca.crt" + quiet) &&
         Run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=dmarcd-other-ca "
             "-keyout " +
             d + "/other-ca.key -out " + d + "/other-ca.crt" + quiet) &&
         Run("openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout " + d +
             "/server.key -out " + d + "/server.csr" + quiet) &&
         Run("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > " + d + "/ext.cnf") &&
         Run("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.crt -CAkey " + d +
             "/ca.key -CAcreateserial -days 2 -extfile " + d + "/ext.cnf -out " + d +
             "/server.crt" + quiet);
}

std::string Config(const fs::path& dir, uint16_t imap_port, uint16_t imaps_port) {
  const std::string d = dir.string();
  std::ostringstream conf;
  conf << "base_dir = " << d << "/run\n"
       << "state_dir = " << d << "/state\n"
       << "log_path = " << d << "/dovecot.log\n"
       << "protocols = imap\n"
       << "listen = 127.0.0.1\n"
       << "ssl = yes\n"
       << "ssl_cert = <" << d << "/tls/server.crt\n"
       << "ssl_key = <" << d << "/tls/server.key\n"
       << "disable_plaintext_auth = no\n"
       << "auth_mechanisms = plain login\n"
       << "passdb {\n  driver = static\n  args = password=secret\n}\n"
       << "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=" << d
       << "/mail/%u\n}\n"
       << "mail_location = maildir:~/Maildir\n"
       << "namespace inbox {\n  inbox = yes\n  separator = /\n}\n"
       << "service imap-login {\n"
       << "  inet_listener imap {\n    address = 127.0.0.1\n    port = " << imap_port << "\n  }\n"
       << "  inet_listener imaps {\n    address = 127.0.0.1\n    port = " << imaps_port
       << "\n    ssl = yes\n  }\n}\n"
       << "service stats {\n  inet_listener http {\n    port = 0\n  }\n}\n";
  return conf.str();
}

}  // namespace

std::string ReadFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

TestDovecot::TestDovecot() {
  std::string pattern = (fs::temp_directory_path() / "dmarcd-imap-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    failure_ = "mkdtemp failed";
    return;
  }
  dir_ = pattern;
  // Dovecot's mail processes run as nobody and must reach the Maildirs.
  fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);
  for (const char* sub : {"run", "state", "tls", "mail"}) fs::create_directories(dir_ / sub);
  // Dovecot creates the home of a user that has none yet.
  ChownNobody(dir_ / "mail");
  if (!MakeCertificates(dir_ / "tls")) {
    failure_ = "openssl could not create the test certificates";
    return;
  }

  imap_port_ = FreePort();
  imaps_port_ = FreePort();
  while (imaps_port_ == imap_port_) imaps_port_ = FreePort();
  WriteFile(dir_ / "dovecot.conf", Config(dir_, imap_port_, imaps_port_));

  const std::string conf = (dir_ / "dovecot.conf").string();
  const std::string out = (dir_ / "stdout.log").string();
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    const int null = open("/dev/null", O_RDONLY);
    dup2(null, STDIN_FILENO);
    execl("/usr/sbin/dovecot", "dovecot", "-F", "-c", conf.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_ = pid;

  for (int i = 0; i < 500; ++i) {
    if (CanConnect(imap_port_) && CanConnect(imaps_port_)) return;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      failure_ = "dovecot exited: " + ReadFile(out) + LogText();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  failure_ = "dovecot did not listen within 10 s: " + LogText();
  Stop();
}

TestDovecot::~TestDovecot() {
  Stop();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

void TestDovecot::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 250; ++i) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string TestDovecot::LogText() const { return ReadFile(dir_ / "dovecot.log"); }

fs::path TestDovecot::MailboxDir(const std::string& user, const std::string& mailbox) const {
  fs::path maildir = dir_ / "mail" / user / "Maildir";
  if (mailbox == "INBOX") return maildir;
  // Maildir++ (Dovecot's default layout): "Archive/Aggregate" lives in
  // ".Archive.Aggregate".
  std::string name = "." + mailbox;
  std::replace(name.begin(), name.end(), '/', '.');
  return maildir / name;
}

std::string TestDovecot::Deliver(const std::string& user, const std::string& bytes) {
  const fs::path home = dir_ / "mail" / user;
  const fs::path maildir = home / "Maildir";
  if (!fs::exists(maildir)) {
    for (const char* sub : {"cur", "new", "tmp"}) fs::create_directories(maildir / sub);
    for (const fs::path& p : {home, maildir, maildir / "cur", maildir / "new", maildir / "tmp"}) {
      ChownNobody(p);
    }
  }
  // Maildir names: time, a unique part, the host (https://cr.yp.to/proto/maildir.html).
  std::string name = std::to_string(std::time(nullptr)) + ".M" + std::to_string(++delivered_) +
                     "P" + std::to_string(getpid()) + ".dmarcd-test";
  WriteFile(maildir / "new" / name, bytes);
  ChownNobody(maildir / "new" / name);
  return name;
}

std::vector<std::string> TestDovecot::Messages(const std::string& user,
                                               const std::string& mailbox) const {
  std::vector<fs::path> files;
  const fs::path folder = MailboxDir(user, mailbox);
  for (const char* sub : {"cur", "new"}) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(folder / sub, ec)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> messages;
  messages.reserve(files.size());
  for (const fs::path& file : files) messages.push_back(ReadFile(file));
  return messages;
}

struct CuttingProxy::Impl {
  int listener = -1;
  uint16_t upstream = 0;
  std::string pattern;
  int occurrence = 0;
  size_t extra = 0;
  std::atomic<bool> stopping{false};
  std::atomic<bool> cut{false};
  std::thread thread;

  void Serve() {
    bool first = true;
    while (!stopping) {
      pollfd waiting{listener, POLLIN, 0};
      if (poll(&waiting, 1, 50) <= 0) continue;
      const int client = accept(listener, nullptr, nullptr);
      if (client < 0) continue;
      const int server = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      address.sin_port = htons(upstream);
      if (connect(server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        close(client);
        close(server);
        continue;
      }
      Pump(client, server, first);
      first = false;
      close(client);
      close(server);
    }
  }

  // One connection at a time: the client under test uses one.
  void Pump(int client, int server, bool cutting) {
    std::string seen;
    size_t cut_at = std::string::npos;
    char buffer[16384];
    while (!stopping) {
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (poll(fds, 2, 50) <= 0) continue;
      if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        const ssize_t n = read(client, buffer, sizeof buffer);
        if (n <= 0 || write(server, buffer, static_cast<size_t>(n)) != n) return;
      }
      if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        ssize_t n = read(server, buffer, sizeof buffer);
        if (n <= 0) return;
        if (cutting) {
          const size_t before = seen.size();
          seen.append(buffer, static_cast<size_t>(n));
          if (cut_at == std::string::npos) {
            size_t pos = 0;
            for (int i = 0; i < occurrence && pos != std::string::npos; ++i) {
              pos = seen.find(pattern, i == 0 ? 0 : pos + 1);
            }
            if (pos != std::string::npos) cut_at = pos + pattern.size() + extra;
          }
          if (cut_at != std::string::npos && seen.size() >= cut_at) {
            const size_t keep = cut_at > before ? cut_at - before : 0;
            if (keep > 0 && write(client, buffer, keep) != static_cast<ssize_t>(keep)) return;
            cut = true;
            return;
          }
        }
        if (write(client, buffer, static_cast<size_t>(n)) != n) return;
      }
    }
  }
};

CuttingProxy::CuttingProxy(uint16_t upstream_port, std::string pattern, int occurrence,
                           size_t extra)
    : impl_(new Impl) {
  impl_->upstream = upstream_port;
  impl_->pattern = std::move(pattern);
  impl_->occurrence = occurrence;
  impl_->extra = extra;
  impl_->listener = socket(AF_INET, SOCK_STREAM, 0);
  const int yes = 1;
  setsockopt(impl_->listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(impl_->listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      listen(impl_->listener, 4) == 0 &&
      getsockname(impl_->listener, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port_ = ntohs(address.sin_port);
  }
  impl_->thread = std::thread([this] { impl_->Serve(); });
}

CuttingProxy::~CuttingProxy() {
  impl_->stopping = true;
  impl_->thread.join();
  close(impl_->listener);
  delete impl_;
}

bool CuttingProxy::Cut() const { return impl_->cut; }

}  // namespace dmarcd::test
