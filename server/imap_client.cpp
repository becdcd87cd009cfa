#include "server/imap_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>

namespace dmarcd::server {
namespace {

CURL* Handle(void* curl) { return static_cast<CURL*>(curl); }

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

int OnProgress(void* user, curl_off_t /*dltotal*/, curl_off_t /*dlnow*/, curl_off_t /*ultotal*/,
               curl_off_t /*ulnow*/) {
  return static_cast<std::atomic<bool>*>(user)->load() ? 1 : 0;
}

// The untagged lines of a custom command's answer: libcurl hands them to the
// write callback, one per line, with their CRLF.
std::vector<std::string_view> Lines(std::string_view body) {
  std::vector<std::string_view> lines;
  while (!body.empty()) {
    const size_t end = body.find('\n');
    std::string_view line = body.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    body.remove_prefix(end + 1);
  }
  return lines;
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && Upper(text.substr(0, prefix.size())) == prefix;
}

template <typename T>
bool ParseUnsigned(std::string_view text, T& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// Reads an IMAP astring or NIL (RFC 3501 section 9: quoted or atom) at the
// front of `rest` and removes it; literals do not occur in the answers read
// here.
std::string TakeString(std::string_view& rest) {
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  std::string out;
  if (!rest.empty() && rest.front() == '"') {
    size_t i = 1;
    for (; i < rest.size() && rest[i] != '"'; ++i) {
      if (rest[i] == '\\' && i + 1 < rest.size()) ++i;
      out.push_back(rest[i]);
    }
    rest.remove_prefix(std::min(rest.size(), i + 1));
    return out;
  }
  const size_t end = rest.find(' ');
  out = std::string(rest.substr(0, end));
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  return out;
}

Error CurlError(CURLcode code, const char* detail, const std::string& what) {
  std::string message = what + ": " + curl_easy_strerror(code);
  if (detail[0] != '\0') message += " (" + std::string(detail) + ")";
  switch (code) {
    case CURLE_LOGIN_DENIED:
      return Error(ErrorCode::kUnauthorized, message);
    case CURLE_ABORTED_BY_CALLBACK:
      return Error(ErrorCode::kNetwork, what + ": stopped");
    default:
      return Error(ErrorCode::kNetwork, message);
  }
}

std::string Escape(CURL* curl, const std::string& text) {
  char* escaped = curl_easy_escape(curl, text.c_str(), static_cast<int>(text.size()));
  std::string out = escaped != nullptr ? escaped : "";
  curl_free(escaped);
  return out;
}

}  // namespace

std::string QuoteMailbox(const std::string& name) {
  std::string out = "\"";
  for (char ch : name) {
    if (ch == '"' || ch == '\\') out.push_back('\\');
    out.push_back(ch);
  }
  out.push_back('"');
  return out;
}

std::string UidSet(const std::vector<uint32_t>& uids) {
  std::string out;
  for (size_t i = 0; i < uids.size();) {
    size_t j = i;
    while (j + 1 < uids.size() && uids[j + 1] == uids[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(uids[i]);
    if (j > i) out += ':' + std::to_string(uids[j]);
    i = j + 1;
  }
  return out;
}

ImapClient::ImapClient(const ImapAccount& account) : account_(account) {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });

  const char* scheme = account_.tls == ImapTls::kImplicit ? "imaps://" : "imap://";
  const bool ipv6 = account_.host.find(':') != std::string::npos;
  base_url_ = std::string(scheme) + (ipv6 ? "[" + account_.host + "]" : account_.host) + ":" +
              std::to_string(account_.port) + "/";
  curl_ = curl_easy_init();
  Configure();
}

void ImapClient::Configure() {
  CURL* curl = Handle(curl_);
  curl_easy_setopt(curl, CURLOPT_USERNAME, account_.user.c_str());
  curl_easy_setopt(curl, CURLOPT_PASSWORD, account_.password.c_str());
  // STARTTLS must succeed or the connection is dropped before LOGIN: a
  // server that does not offer it never sees the password.
  curl_easy_setopt(curl, CURLOPT_USE_SSL,
                   account_.tls == ImapTls::kNone ? static_cast<long>(CURLUSESSL_NONE)
                                                  : static_cast<long>(CURLUSESSL_ALL));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!account_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, account_.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(account_.timeout.count()));
  // A transfer that moves less than one byte a second for `timeout` is dead.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(account_.timeout.count()));
  // The wait for a command's answer is not a transfer: without this, a
  // server that never sends the tagged response holds a call for libcurl's
  // default of 120 s.
  curl_easy_setopt(curl, CURLOPT_SERVER_RESPONSE_TIMEOUT,
                   static_cast<long>(account_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body_);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &stopped_);
}

ImapClient::~ImapClient() { curl_easy_cleanup(Handle(curl_)); }

void ImapClient::Stop() { stopped_ = true; }

Result<std::string> ImapClient::Run(const std::string& path, const std::string& command) {
  if (stopped_) return MakeError(ErrorCode::kNetwork, command + ": stopped");
  CURL* curl = Handle(curl_);
  const std::string url = base_url_ + path;
  char detail[CURL_ERROR_SIZE] = {0};
  body_.clear();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, command.empty() ? nullptr : command.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, detail);
  const CURLcode code = curl_easy_perform(curl);
  last_code_ = code;
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  if (code != CURLE_OK && code != CURLE_QUOTE_ERROR) {
    // The connection may still carry the late answer to the failed command
    // (a stalled server, a wrong tag), and libcurl keeps it for reuse: a
    // new handle starts the next call on a new connection.
    curl_easy_cleanup(curl);
    curl_ = curl_easy_init();
    Configure();
  }
  if (code != CURLE_OK) {
    // The command word, never its arguments: they may name private folders.
    const size_t word_end = command.find(' ', command.starts_with("UID ") ? 4 : 0);
    const std::string what = command.empty() ? "FETCH" : command.substr(0, word_end);
    return tl::unexpected(CurlError(code, detail, what));
  }
  return std::move(body_);
}

Result<std::set<std::string>> ImapClient::Capabilities() {
  auto body = Run("", "CAPABILITY");
  if (!body) return tl::unexpected(body.error());
  std::set<std::string> capabilities;
  for (std::string_view line : Lines(*body)) {
    if (!StartsWithNoCase(line, "* CAPABILITY ")) continue;
    std::istringstream words{std::string(line.substr(13))};
    for (std::string word; words >> word;) capabilities.insert(Upper(word));
  }
  capabilities_ = capabilities;
  return capabilities;
}

Result<bool> ImapClient::Has(const std::string& capability) {
  if (capabilities_.empty()) {
    if (auto fetched = Capabilities(); !fetched) return tl::unexpected(fetched.error());
  }
  return capabilities_.count(capability) > 0;
}

Result<MailboxStatus> ImapClient::Status(const std::string& mailbox) {
  auto body = Run("", "STATUS " + QuoteMailbox(mailbox) + " (UIDVALIDITY UIDNEXT MESSAGES)");
  if (!body) {
    // A tagged NO to STATUS is the server saying the mailbox is not there
    // (RFC 3501 section 6.3.10); libcurl reports it as a refused command.
    if (last_code_ == CURLE_QUOTE_ERROR) {
      return MakeError(ErrorCode::kNotFound, "mailbox " + mailbox + " does not exist");
    }
    return tl::unexpected(body.error());
  }
  for (std::string_view line : Lines(*body)) {
    if (!StartsWithNoCase(line, "* STATUS ")) continue;
    const size_t open = line.rfind('(');
    const size_t close = line.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) break;
    std::istringstream items{std::string(line.substr(open + 1, close - open - 1))};
    MailboxStatus status;
    for (std::string key, value; items >> key >> value;) {
      key = Upper(key);
      uint32_t number = 0;
      if (!ParseUnsigned(value, number)) continue;
      if (key == "UIDVALIDITY") status.uidvalidity = number;
      if (key == "UIDNEXT") status.uidnext = number;
      if (key == "MESSAGES") status.messages = number;
    }
    if (status.uidvalidity == 0) break;
    return status;
  }
  return MakeError(ErrorCode::kNetwork, "STATUS: no UIDVALIDITY in the answer");
}

Result<char> ImapClient::Delimiter() {
  auto body = Run("", "LIST \"\" \"\"");
  if (!body) return tl::unexpected(body.error());
  for (std::string_view line : Lines(*body)) {
    if (!StartsWithNoCase(line, "* LIST ")) continue;
    const size_t close = line.find(')');
    if (close == std::string_view::npos) continue;
    std::string_view rest = line.substr(close + 1);
    const std::string delimiter = TakeString(rest);
    // NIL: a flat namespace; "/" keeps the archive name readable anyway.
    return delimiter.size() == 1 ? delimiter[0] : '/';
  }
  return '/';
}

Result<std::vector<std::string>> ImapClient::List(const std::string& pattern) {
  auto body = Run("", "LIST \"\" " + QuoteMailbox(pattern));
  if (!body) return tl::unexpected(body.error());
  std::vector<std::string> names;
  for (std::string_view line : Lines(*body)) {
    if (!StartsWithNoCase(line, "* LIST ")) continue;
    const size_t close = line.find(')');
    if (close == std::string_view::npos) continue;
    std::string_view rest = line.substr(close + 1);
    TakeString(rest);
    names.push_back(TakeString(rest));
  }
  return names;
}

Result<void> ImapClient::Create(const std::string& mailbox) {
  auto body = Run("", "CREATE " + QuoteMailbox(mailbox));
  if (!body) return tl::unexpected(body.error());
  return {};
}

Result<std::vector<uint32_t>> ImapClient::Search(const std::string& mailbox, uint32_t first_uid) {
  // "n:*" always matches the highest UID, even one below n (RFC 3501
  // section 6.4.8), so the answer is filtered again.
  auto body = Run(Escape(Handle(curl_), mailbox),
                  "UID SEARCH UNDELETED UID " + std::to_string(first_uid) + ":*");
  if (!body) return tl::unexpected(body.error());
  std::vector<uint32_t> uids;
  for (std::string_view line : Lines(*body)) {
    if (!StartsWithNoCase(line, "* SEARCH")) continue;
    std::istringstream words{std::string(line.substr(8))};
    for (std::string word; words >> word;) {
      uint32_t uid = 0;
      if (ParseUnsigned(std::string_view(word), uid) && uid >= first_uid) uids.push_back(uid);
    }
  }
  std::sort(uids.begin(), uids.end());
  return uids;
}

Result<std::string> ImapClient::Fetch(const std::string& mailbox, uint32_t uid) {
  // libcurl turns ";UID=n" into UID FETCH n BODY[] and hands exactly the
  // literal's bytes to the write callback.
  auto body = Run(Escape(Handle(curl_), mailbox) + "/;UID=" + std::to_string(uid), "");
  if (!body) return body;
  if (body->empty()) {
    return MakeError(ErrorCode::kNotFound, "UID " + std::to_string(uid) + " is gone");
  }
  return body;
}

Result<std::map<uint32_t, uint64_t>> ImapClient::Sizes(const std::string& mailbox,
                                                       const std::vector<uint32_t>& uids) {
  std::map<uint32_t, uint64_t> sizes;
  if (uids.empty()) return sizes;
  auto body = Run(Escape(Handle(curl_), mailbox), "UID FETCH " + UidSet(uids) + " (RFC822.SIZE)");
  if (!body) return tl::unexpected(body.error());

  // "* 12 FETCH (UID 4711 RFC822.SIZE 2048)": the items come in any order
  // (RFC 3501 section 7.4.2). A line that does not read as that is skipped,
  // and its message is then fetched whole and judged by the pipeline.
  for (std::string_view line : Lines(*body)) {
    if (!StartsWithNoCase(line, "* ")) continue;
    const size_t open = line.find('(');
    const size_t close = line.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) continue;
    if (Upper(line.substr(0, open)).find(" FETCH ") == std::string::npos) continue;
    std::istringstream items{std::string(line.substr(open + 1, close - open - 1))};
    std::optional<uint32_t> uid;
    std::optional<uint64_t> size;
    for (std::string key, value; items >> key >> value;) {
      key = Upper(key);
      uint32_t number = 0;
      uint64_t bytes = 0;
      if (key == "UID" && ParseUnsigned(std::string_view(value), number)) uid = number;
      if (key == "RFC822.SIZE" && ParseUnsigned(std::string_view(value), bytes)) size = bytes;
    }
    if (uid && size) sizes[*uid] = *size;
  }
  return sizes;
}

Result<std::string> ImapClient::FetchHeader(const std::string& mailbox, uint32_t uid,
                                            uint64_t max_bytes) {
  // libcurl turns ";SECTION=HEADER/;PARTIAL=0.n" into UID FETCH uid
  // BODY[HEADER]<0.n> (RFC 3501 section 6.4.5): a header section of any
  // size costs at most max_bytes.
  auto body = Run(Escape(Handle(curl_), mailbox) + "/;UID=" + std::to_string(uid) +
                      "/;SECTION=HEADER/;PARTIAL=0." + std::to_string(max_bytes),
                  "");
  if (!body) return body;
  if (body->empty()) {
    return MakeError(ErrorCode::kNotFound, "UID " + std::to_string(uid) + " is gone");
  }
  return body;
}

Result<void> ImapClient::Expunge(const std::string& mailbox, const std::string& set) {
  auto uidplus = Has("UIDPLUS");
  if (!uidplus) return tl::unexpected(uidplus.error());
  // Without UIDPLUS only a plain EXPUNGE exists; it also removes what other
  // clients flagged \Deleted, which is what they asked for anyway.
  const std::string command = *uidplus ? "UID EXPUNGE " + set : "EXPUNGE";
  auto body = Run(Escape(Handle(curl_), mailbox), command);
  if (!body) return tl::unexpected(body.error());
  return {};
}

Result<void> ImapClient::Move(const std::string& mailbox, const std::vector<uint32_t>& uids,
                              const std::string& target) {
  if (uids.empty()) return {};
  const std::string set = UidSet(uids);
  const std::string path = Escape(Handle(curl_), mailbox);
  auto move = Has("MOVE");
  if (!move) return tl::unexpected(move.error());
  if (*move) {
    auto body = Run(path, "UID MOVE " + set + " " + QuoteMailbox(target));
    if (!body) return tl::unexpected(body.error());
    return {};
  }
  // RFC 6851 section 3.3: without MOVE, COPY then delete; a crash between
  // the two leaves a copy behind, never a loss.
  if (auto body = Run(path, "UID COPY " + set + " " + QuoteMailbox(target)); !body) {
    return tl::unexpected(body.error());
  }
  return Delete(mailbox, uids);
}

Result<void> ImapClient::Delete(const std::string& mailbox, const std::vector<uint32_t>& uids) {
  if (uids.empty()) return {};
  const std::string set = UidSet(uids);
  auto body =
      Run(Escape(Handle(curl_), mailbox), "UID STORE " + set + " +FLAGS.SILENT (\\Deleted)");
  if (!body) return tl::unexpected(body.error());
  return Expunge(mailbox, set);
}

}  // namespace dmarcd::server
