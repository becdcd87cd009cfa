// Every hostile file of tests/data/parser/hostile through every channel of
// the real dmarcd binary (issue #6): `dmarcd ingest FILE`, `dmarcd ingest -`
// from stdin, an HTTP upload to `dmarcd serve`, and IMAP through a private
// Dovecot (`dmarcd fetch --once`), each file as an attachment in the shape of
// control_valid_aggregate.eml and each .eml APPENDed whole. For each, the
// outcome is the expected one (stored with N records, a duplicate of a
// report already there, or rejected with the named reason in the rejected
// table and the log), nothing of a rejected input is stored, the channel
// still works, and a control report given straight after is stored.
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_dovecot.hpp"

extern char** environ;

namespace dmarcd {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const fs::path kData = DMARCD_TEST_DATA_DIR;
const fs::path kHostile = kData / "parser/hostile";

std::string ReadFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// What a hostile file must come to, whatever the channel: accepted with
// `records` records (stored the first time, a duplicate after), a failure
// report, or rejected with `code`.
struct Expected {
  std::string code;  // empty: accepted
  size_t records = 0;
  bool failure = false;
};

Expected Accepted(size_t records) { return Expected{"", records, false}; }
Expected Rejected(const char* code) { return Expected{code, 0, false}; }

// The outcomes of tests/parser/hostile_test.cpp, end to end: there the
// parser alone refuses the forensic control as unsupported; here it is
// stored as a failure report.
const std::map<std::string, Expected>& Expectations() {
  static const std::map<std::string, Expected> expected = {
      {"arf_malformed.eml", Rejected("not_a_report")},
      {"bad_dates_and_counts.xml", Rejected("bad_date_range")},
      {"billion_laughs.xml", Rejected("doctype_refused")},
      {"control_valid_aggregate.eml", Accepted(2)},
      {"control_valid_aggregate.xml", Accepted(2)},
      {"control_valid_aggregate.xml.gz", Accepted(2)},
      {"control_valid_aggregate.zip", Accepted(2)},
      {"control_valid_forensic_arf.eml", Expected{"", 0, true}},
      {"deep_nesting_10k.xml", Rejected("too_deep")},
      {"gzip_bad_crc.xml.gz", Rejected("bad_archive")},
      {"gzip_bomb_xml_whitespace_1g.xml.gz", Rejected("ratio_exceeded")},
      {"gzip_bomb_zeros_1g.gz", Rejected("not_xml")},
      {"gzip_trailing_crlf.xml.gz", Accepted(2)},
      {"gzip_truncated.xml.gz", Rejected("bad_archive")},
      {"huge_text_field_50mb.xml.gz", Rejected("too_large")},
      {"invalid_utf8_fields.xml", Accepted(2)},
      {"mime_10000_parts.eml", Rejected("too_many_entries")},
      {"mime_1mb_header_line.eml", Accepted(2)},
      {"mime_50k_headers.eml", Accepted(2)},
      {"mime_base64_garbage.eml", Rejected("bad_archive")},
      {"mime_bomb_attachment.eml", Rejected("ratio_exceeded")},
      {"mime_deep_nesting_1000.eml", Rejected("too_deep")},
      {"mime_folded_header_100k_lines.eml", Accepted(2)},
      {"nul_byte_in_xml.xml", Rejected("malformed_xml")},
      {"quadratic_blowup.xml", Rejected("doctype_refused")},
      {"sqli_fields.xml", Accepted(1)},
      {"xss_script_org_name.xml", Accepted(1)},
      {"xxe_external_dtd.xml", Rejected("doctype_refused")},
      {"xxe_local_file.xml", Rejected("doctype_refused")},
      {"xxe_network_url.xml", Rejected("doctype_refused")},
      {"zip_encrypted_entry.zip", Rejected("bad_archive")},
      {"zip_huge_declared_size.zip", Rejected("too_large")},
      {"zip_lying_entry_count.zip", Rejected("bad_archive")},
      {"zip_many_entries_5000.zip", Rejected("too_many_entries")},
      {"zip_nested_10_levels.zip", Rejected("too_deep")},
      {"zip_overlap_bomb_10g.zip", Rejected("too_many_entries")},
      {"zip_truncated.zip", Rejected("bad_archive")},
  };
  return expected;
}

std::vector<std::string> HostileFiles() {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(kHostile)) {
    files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string ContentType(const std::string& file) {
  if (EndsWith(file, ".eml")) return "message/rfc822";
  if (EndsWith(file, ".zip")) return "application/zip";
  if (EndsWith(file, ".gz")) return "application/gzip";
  return "application/xml";
}

// The control report with its own report id, so that each one is a new
// report in a database that already holds the others.
std::string Control(const std::string& report_id) {
  std::string xml = ReadFile(kHostile / "control_valid_aggregate.xml");
  const std::string old_id = "<report_id>control-0001</report_id>";
  const size_t at = xml.find(old_id);
  EXPECT_NE(at, std::string::npos);
  xml.replace(at, old_id.size(), "<report_id>" + report_id + "</report_id>");
  return xml;
}

std::string Base64Lines(const std::string& bytes) {
  std::string out;
  constexpr size_t kLine = 57;  // 76 characters of base64 (RFC 2045 section 6.8)
  std::vector<unsigned char> encoded(4 * ((kLine + 2) / 3) + 1);
  for (size_t at = 0; at < bytes.size(); at += kLine) {
    const size_t n = std::min(kLine, bytes.size() - at);
    const int length =
        EVP_EncodeBlock(encoded.data(), reinterpret_cast<const unsigned char*>(bytes.data() + at),
                        static_cast<int>(n));
    out.append(reinterpret_cast<const char*>(encoded.data()), static_cast<size_t>(length));
    out += "\r\n";
  }
  return out;
}

// `bytes` as the base64 attachment of an email shaped like
// control_valid_aggregate.eml.
std::string AsAttachment(const std::string& name, const std::string& bytes, int number) {
  std::ostringstream mail;
  mail << "Return-Path: <noreply-dmarc@reporter.example.com>\r\n"
       << "From: DMARC Reporter <noreply-dmarc@reporter.example.com>\r\n"
       << "To: dmarc-rua@example.com\r\n"
       << "Subject: Report Domain: example.com Submitter: reporter.example.com Report-ID: <" << name
       << ">\r\n"
       << "Date: Tue, 14 Nov 2023 12:00:00 +0000\r\n"
       << "Message-ID: <hostile-" << number << "@reporter.example.com>\r\n"
       << "MIME-Version: 1.0\r\n"
       << "Content-Type: multipart/mixed; boundary=\"=_dmarc_b1\"\r\n\r\n"
       << "This is a multi-part message in MIME format.\r\n"
       << "--=_dmarc_b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
       << "This is an aggregate report from reporter.example.com.\r\n"
       << "--=_dmarc_b1\r\n"
       << "Content-Type: " << ContentType(name) << "; name=\"" << name << "\"\r\n"
       << "Content-Transfer-Encoding: base64\r\n"
       << "Content-Disposition: attachment; filename=\"" << name << "\"\r\n\r\n"
       << Base64Lines(bytes) << "--=_dmarc_b1--\r\n";
  return mail.str();
}

struct CommandRun {
  int status = -1;  // exit status, -1 when killed by a signal
  std::string out;
  std::string err;
};

pid_t Spawn(const std::vector<std::string>& args, const fs::path& in, const fs::path& out,
            const fs::path& err) {
  std::vector<std::string> full = {DMARCD_BINARY};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(full.size() + 1);
  for (std::string& arg : full) argv.push_back(arg.data());
  argv.push_back(nullptr);
  // The settings come from the arguments alone.
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("DMARCD_", 0) != 0) env.emplace_back(*e);
  }
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << argv[0];
  return pid;
}

int Wait(pid_t pid) {
  int wstatus = 0;
  if (waitpid(pid, &wstatus, 0) != pid) return -1;
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

int64_t QueryInt(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* statement = nullptr;
  int64_t value = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
      sqlite3_step(statement) == SQLITE_ROW) {
    value = sqlite3_column_int64(statement, 0);
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return value;
}

std::string QueryText(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* statement = nullptr;
  std::string value = "(no row)";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr) == SQLITE_OK &&
      sqlite3_step(statement) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(statement, 0);
    value = text == nullptr ? "" : reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return value;
}

std::string Quoted(const std::string& text) {
  std::string out = "'";
  for (char ch : text) {
    out += ch;
    if (ch == '\'') out += '\'';
  }
  return out + "'";
}

// One part's outcome as a channel reported it.
struct Outcome {
  std::string status;  // stored, duplicate, rejected
  std::string code;    // the reason, when rejected
  std::string report_id;
  int64_t records = -1;
  bool failure = false;
};

// A field of an `ingest -v` line: key=value or key="value".
std::string Field(const std::string& line, const std::string& key) {
  const size_t at = line.find(" " + key + "=");
  if (at == std::string::npos) return "";
  size_t begin = at + key.size() + 2;
  if (begin < line.size() && line[begin] == '"') {
    return line.substr(begin + 1, line.find('"', begin + 1) - begin - 1);
  }
  return line.substr(begin, line.find(' ', begin) - begin);
}

Outcome FromIngestLine(const std::string& line) {
  Outcome outcome;
  outcome.status = Field(line, "outcome");
  const std::string reason = Field(line, "reason");
  outcome.code = reason.substr(0, reason.find(':'));
  outcome.report_id = Field(line, "report_id");
  const std::string records = Field(line, "records");
  if (!records.empty()) outcome.records = std::stoll(records);
  outcome.failure = line.find(" failure_report=") != std::string::npos;
  return outcome;
}

// Checks one outcome against the table; `seen` holds the report ids this
// channel's database already has.
void Check(const std::string& file, const Outcome& got, std::set<std::string>& seen) {
  const Expected& want = Expectations().at(file);
  if (!want.code.empty()) {
    EXPECT_EQ(got.status, "rejected") << file;
    EXPECT_EQ(got.code, want.code) << file;
    return;
  }
  if (want.failure) {
    EXPECT_TRUE(got.status == "stored" || got.status == "duplicate") << file << ": " << got.status;
    EXPECT_TRUE(got.failure) << file;
    return;
  }
  ASSERT_FALSE(got.report_id.empty()) << file << ": " << got.status << " " << got.code;
  if (seen.insert(got.report_id).second) {
    EXPECT_EQ(got.status, "stored") << file;
    EXPECT_EQ(got.records, static_cast<int64_t>(want.records)) << file;
  } else {
    EXPECT_EQ(got.status, "duplicate") << file;
  }
}

// Whether a log line for `origin` says it was rejected and why: ` reason="code: ...`,
// or ` reasons="code: ...; ..."` for several parts.
bool LogNamesReason(const std::string& log, const std::string& origin, const std::string& code) {
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("origin=" + origin) == std::string::npos) continue;
    if (line.find("outcome=rejected") == std::string::npos) continue;
    if (line.find(" reason=\"" + code + ":") != std::string::npos ||
        line.find(" reasons=\"" + code + ":") != std::string::npos) {
      return true;
    }
  }
  return false;
}

class HostileChannelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "dmarcd-hostile-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    db_ = dir_ / "dmarcd.db";
    WriteFile(dir_ / "empty", "");
  }

  void TearDown() override {
    StopServer();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  CommandRun Dmarcd(const std::vector<std::string>& args, const fs::path& in = {}) {
    fs::remove(dir_ / "command.log");
    const pid_t pid =
        Spawn(args, in.empty() ? dir_ / "empty" : in, dir_ / "out", dir_ / "command.log");
    CommandRun run;
    run.status = Wait(pid);
    run.out = ReadFile(dir_ / "out");
    run.err = ReadFile(dir_ / "command.log");
    return run;
  }

  int64_t Count(const std::string& sql) const { return QueryInt(db_, sql); }
  std::string Text(const std::string& sql) const { return QueryText(db_, sql); }

  // The reasons of the rejected rows added after row `after`.
  std::set<std::string> NewRejections(int64_t after) const {
    std::set<std::string> codes;
    int64_t id = after;
    while ((id = Count("SELECT coalesce(min(id), 0) FROM rejected WHERE id > " +
                       std::to_string(id))) > 0) {
      codes.insert(Text("SELECT code FROM rejected WHERE id = " + std::to_string(id)));
    }
    return codes;
  }

  // Rows a rejected input must not have left behind.
  int64_t ReportRows() const {
    if (!fs::exists(db_)) return 0;
    return Count(
        "SELECT (SELECT count(*) FROM reports) + (SELECT count(*) FROM records) + "
        "(SELECT count(*) FROM failure_reports)");
  }

  void StartServer() {
    const fs::path port_file = dir_ / "port";
    server_log_ = dir_ / "server.log";
    server_ = Spawn({"serve", "--db", db_.string(), "--listen", "127.0.0.1:0", "--port-file",
                     port_file.string()},
                    dir_ / "empty", dir_ / "server.out", server_log_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (ReadFile(port_file).empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::string port = ReadFile(port_file);
    ASSERT_FALSE(port.empty()) << ReadFile(server_log_);
    port_ = std::stoi(port);
  }

  void StopServer() {
    if (server_ <= 0) return;
    kill(server_, SIGTERM);
    EXPECT_EQ(Wait(server_), 0) << ReadFile(server_log_);
    server_ = -1;
  }

  static size_t Collect(char* data, size_t size, size_t count, void* target) {
    static_cast<std::string*>(target)->append(data, size * count);
    return size * count;
  }

  // status, body
  std::pair<long, std::string> Http(const std::string& method, const std::string& path,
                                    const std::string& body = "",
                                    const std::string& content_type = "") {
    std::string answer;
    CURL* curl = curl_easy_init();
    const std::string url = "http://127.0.0.1:" + std::to_string(port_) + path;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_slist* headers = curl_slist_append(nullptr, "Expect:");
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token_).c_str());
    if (method == "POST") {
      headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    const CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    EXPECT_EQ(rc, CURLE_OK) << method << " " << path << ": " << curl_easy_strerror(rc);
    return {status, answer};
  }

  static Outcome FromUpload(const std::string& body) {
    Outcome outcome;
    json::value parsed = json::parse(body);
    const json::array& parts = parsed.at("parts").as_array();
    if (parts.empty()) return outcome;
    const json::object& part = parts[0].as_object();
    outcome.status = part.at("status").as_string().c_str();
    if (part.at("error").is_object()) {
      outcome.code = part.at("error").at("code").as_string().c_str();
    }
    if (part.at("report").is_object()) {
      const json::object& report = part.at("report").as_object();
      outcome.report_id = report.at("report_id").as_string().c_str();
      outcome.records = report.at("records").to_number<int64_t>();
      outcome.failure = part.contains("kind") && part.at("kind").as_string() == "failure";
    }
    return outcome;
  }

  // APPENDs a message whole (RFC 3501 section 6.3.11) through libcurl.
  static void Append(const test::TestDovecot& dovecot, const std::string& user,
                     const std::string& message) {
    struct Reader {
      const std::string* bytes;
      size_t at = 0;
      static size_t Read(char* buffer, size_t size, size_t count, void* self) {
        auto* reader = static_cast<Reader*>(self);
        const size_t n = std::min(size * count, reader->bytes->size() - reader->at);
        std::copy_n(reader->bytes->data() + reader->at, n, buffer);
        reader->at += n;
        return n;
      }
    } reader{&message};
    CURL* curl = curl_easy_init();
    const std::string url = "imap://127.0.0.1:" + std::to_string(dovecot.ImapPort()) + "/INBOX";
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_USERNAME, user.c_str());
    curl_easy_setopt(curl, CURLOPT_PASSWORD, "secret");
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, &Reader::Read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &reader);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
    const CURLcode rc = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    ASSERT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
  }

  fs::path dir_;
  fs::path db_;
  pid_t server_ = -1;
  fs::path server_log_;
  int port_ = 0;
  std::string token_;
};

// The 10 GiB gzip bomb of make_gzip_bomb_10g.py (about 10 MB). Making it
// costs half a minute of CPU, so it is made once per build folder and kept;
// a temporary name and a rename keep two test processes from reading half
// a file.
fs::path GzipBomb10g() {
  fs::path bomb = fs::path(DMARCD_TEST_WORK_DIR) / "bomb10g.gz";
  if (fs::exists(bomb)) return bomb;
  const fs::path partial = bomb.string() + "." + std::to_string(getpid());
  const std::string command = "python3 " + (kData / "hostile/make_gzip_bomb_10g.py").string() +
                              " " + partial.string() + " 10";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::error_code ec;
  fs::rename(partial, bomb, ec);
  EXPECT_FALSE(ec) << ec.message();
  return bomb;
}

// `dmarcd ingest -v HOSTILE CONTROL` for each file: the hostile file's
// line, then the control's.
TEST_F(HostileChannelsTest, IngestFileAndStdin) {
  for (const bool from_stdin : {false, true}) {
    SCOPED_TRACE(from_stdin ? "stdin" : "file");
    db_ = dir_ / (from_stdin ? "stdin.db" : "file.db");
    std::set<std::string> seen;
    int number = 0;
    for (const std::string& file : HostileFiles()) {
      SCOPED_TRACE(file);
      const fs::path path = kHostile / file;
      const std::string control_id = std::string(from_stdin ? "stdin-" : "file-") + file;
      const fs::path control = dir_ / ("control-" + std::to_string(++number) + ".xml");
      WriteFile(control, Control(control_id));
      const int64_t rows_before = ReportRows();
      const int64_t rejected_before =
          fs::exists(db_) ? Count("SELECT coalesce(max(id), 0) FROM rejected") : 0;

      const auto start = std::chrono::steady_clock::now();
      const CommandRun run = Dmarcd({"ingest", "-v", "--db", db_.string(),
                                     from_stdin ? "-" : path.string(), control.string()},
                                    from_stdin ? path : fs::path());
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
      ASSERT_NE(run.status, -1) << "killed: " << run.err;

      std::vector<std::string> lines;
      std::istringstream out(run.out);
      for (std::string line; std::getline(out, line);) {
        if (line.rfind("origin=", 0) == 0) lines.push_back(line);
      }
      // One line per part of the hostile input, then the control's.
      ASSERT_GE(lines.size(), 2u) << run.out << run.err;
      const std::string origin = from_stdin ? "stdin" : "file:" + path.string();
      Outcome hostile;
      for (size_t i = 0; i + 1 < lines.size(); ++i) {
        EXPECT_EQ(lines[i].rfind("origin=" + origin + " ", 0), 0u) << lines[i];
        hostile = FromIngestLine(lines[i]);
        Check(file, hostile, seen);
      }

      const Outcome after = FromIngestLine(lines.back());
      EXPECT_EQ(after.status, "stored") << lines.back();
      EXPECT_EQ(after.report_id, control_id);
      EXPECT_EQ(after.records, 2);
      EXPECT_EQ(run.status, hostile.status == "rejected" ? 1 : 0) << run.err;

      if (hostile.status == "rejected") {
        // Nothing of it stored; the reason in the rejected table and the log.
        EXPECT_EQ(ReportRows(), rows_before + 1 + 2) << "only the control's report and records";
        EXPECT_EQ(NewRejections(rejected_before), std::set<std::string>{hostile.code});
        if (!from_stdin) {
          EXPECT_EQ(Text("SELECT code FROM rejected WHERE origin = " + Quoted(origin)),
                    hostile.code);
        }
        // Files are stored in group commits, whose log line has no reason;
        // stdin goes alone through the path that logs it.
        if (from_stdin) {
          EXPECT_TRUE(LogNamesReason(run.err, "stdin", hostile.code)) << run.err;
        }
      }
    }
    EXPECT_EQ(Text("PRAGMA integrity_check"), "ok");
  }
}

// Member names such as "../../../tmp/x.xml", "/tmp/x.xml", "C:/x.xml" and a
// 300-level path are labels, never paths: the six reports inside are read
// in memory, by `ingest` from a folder of its own and by an upload, and no
// file of those names appears anywhere a path could have led.
TEST_F(HostileChannelsTest, ZipMemberNamesNeverBecomePaths) {
  const fs::path zip = kData / "parser/zip_slip/zip_path_traversal.zip";
  const fs::path work = dir_ / "work/a/b/c/d";
  fs::create_directories(work);
  const fs::path before = fs::current_path();
  fs::current_path(work);
  const CommandRun run = Dmarcd({"ingest", "-v", "--db", db_.string(), zip.string()});
  fs::current_path(before);
  EXPECT_EQ(run.status, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("stored=6 duplicate=0 rejected=0 records=12"), std::string::npos)
      << run.out;
  EXPECT_EQ(Count("SELECT count(*) FROM reports WHERE report_id LIKE 'zipslip-0%'"), 6);

  db_ = dir_ / "upload.db";
  const CommandRun token =
      Dmarcd({"token", "add", "uploader", "--scope", "ingest", "--db", db_.string()});
  ASSERT_EQ(token.status, 0) << token.err;
  token_ = token.out.substr(0, token.out.find('\n'));
  StartServer();
  const auto [status, body] = Http("POST", "/api/v1/reports", ReadFile(zip), "application/zip");
  EXPECT_EQ(status, 201) << body;
  const json::value answer = json::parse(body);
  const json::array& parts = answer.at("parts").as_array();
  ASSERT_EQ(parts.size(), 6u) << body;
  for (const json::value& part : parts) EXPECT_EQ(part.at("status").as_string(), "stored");

  // Where the names point from the ingest's folder, the server's and /.
  std::vector<fs::path> places = {fs::path("/"), fs::path("/tmp"), before};
  for (fs::path up = work; up != dir_.parent_path(); up = up.parent_path()) places.push_back(up);
  for (const fs::path& place : places) {
    for (const char* name :
         {"dmarc_zip_slip.xml", "dmarc_zip_absolute.xml", "dmarc_zip_backslash.xml",
          "dmarc_zip_middle.xml", "dmarc_zip_drive.xml", "C:", "reports", "a/a/a"}) {
      EXPECT_FALSE(fs::exists(place / name)) << (place / name);
    }
  }
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir_, ec); it != fs::end(it); ++it) {
    EXPECT_EQ(it->path().filename().string().rfind("dmarc_zip_", 0), std::string::npos)
        << it->path();
    EXPECT_NE(it->path().filename(), "deep.xml") << it->path();
  }
}

// Each file POSTed to a running `dmarcd serve` with its Content-Type, then
// /healthz, then a control report; last the 10 GiB bomb.
TEST_F(HostileChannelsTest, HttpUpload) {
  const CommandRun token =
      Dmarcd({"token", "add", "hostile", "--scope", "ingest", "--db", db_.string()});
  ASSERT_EQ(token.status, 0) << token.err;
  token_ = token.out.substr(0, token.out.find('\n'));
  StartServer();

  std::set<std::string> seen;
  int upload = 0;
  std::vector<std::pair<std::string, std::string>> inputs;
  for (const std::string& file : HostileFiles()) {
    inputs.emplace_back(file, ReadFile(kHostile / file));
  }
  for (const auto& [file, bytes] : inputs) {
    SCOPED_TRACE(file);
    const int64_t rows_before = ReportRows();
    const int64_t rejected_before = Count("SELECT coalesce(max(id), 0) FROM rejected");

    const auto [status, body] = Http("POST", "/api/v1/reports", bytes, ContentType(file));
    ++upload;
    ASSERT_TRUE(status == 201 || status == 200 || status == 422) << status << " " << body;
    const Outcome hostile = FromUpload(body);
    Check(file, hostile, seen);
    EXPECT_EQ(status, hostile.status == "stored" ? 201 : hostile.status == "duplicate" ? 200 : 422);

    EXPECT_EQ(Http("GET", "/healthz").first, 200);
    const std::string control_id = "upload-" + file;
    const auto [control_status, control_body] =
        Http("POST", "/api/v1/reports", Control(control_id), "application/xml");
    ++upload;
    EXPECT_EQ(control_status, 201) << control_body;
    const Outcome after = FromUpload(control_body);
    EXPECT_EQ(after.report_id, control_id);
    EXPECT_EQ(after.records, 2);

    if (hostile.status == "rejected") {
      EXPECT_EQ(ReportRows(), rows_before + 1 + 2) << "only the control's report and records";
      EXPECT_EQ(NewRejections(rejected_before), std::set<std::string>{hostile.code});
      EXPECT_TRUE(LogNamesReason(ReadFile(server_log_),
                                 "http:upload/" + std::to_string(upload - 1) + " ", hostile.code))
          << ReadFile(server_log_);
    }
  }

  // The 10 GiB bomb: refused as too large (413), or rejected at the
  // compression-ratio cap, or earlier as not XML (zero bytes).
  const std::string bomb = ReadFile(GzipBomb10g());
  ASSERT_GT(bomb.size(), 9u << 20);
  const int64_t rows_before = ReportRows();
  const auto start = std::chrono::steady_clock::now();
  const auto [status, body] = Http("POST", "/api/v1/reports", bomb, "application/gzip");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  if (status != 413) {
    EXPECT_EQ(status, 422) << body;
    const Outcome outcome = FromUpload(body);
    EXPECT_TRUE(outcome.code == "ratio_exceeded" || outcome.code == "not_xml") << outcome.code;
  }
  EXPECT_EQ(ReportRows(), rows_before);
  EXPECT_EQ(Http("GET", "/healthz").first, 200);
  const auto [control_status, control_body] =
      Http("POST", "/api/v1/reports", Control("upload-after-bomb"), "application/xml");
  EXPECT_EQ(control_status, 201) << control_body;
  EXPECT_EQ(Text("PRAGMA integrity_check"), "ok");
}

// All files in one mailbox of a private Dovecot, each followed by a control
// report: the .eml files APPENDed whole, the others as the attachment of an
// email shaped like control_valid_aggregate.eml, and last the 10 GiB bomb as
// an attachment. Two runs of `dmarcd fetch --once`: the first files every
// message by its outcome, the second finds nothing, so each message was
// fetched once.
TEST_F(HostileChannelsTest, Imap) {
  test::TestDovecot dovecot;
  ASSERT_TRUE(dovecot.IsRunning()) << dovecot.Failure();
  const std::string user = "hostile";

  // UID n + 1 is the control of the hostile message with UID n.
  std::vector<std::string> files = HostileFiles();
  files.emplace_back("bomb10g.gz");
  int number = 0;
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    const std::string bytes =
        file == "bomb10g.gz" ? ReadFile(GzipBomb10g()) : ReadFile(kHostile / file);
    Append(dovecot, user, EndsWith(file, ".eml") ? bytes : AsAttachment(file, bytes, ++number));
    Append(dovecot, user, AsAttachment("control.xml", Control("imap-" + file), ++number));
  }

  const fs::path config = dir_ / "dmarcd.toml";
  WriteFile(config, "[database]\npath = \"" + db_.string() +
                        "\"\n\n[[imap]]\nname = \"hostile\"\nhost = \"127.0.0.1\"\nport = " +
                        std::to_string(dovecot.ImapPort()) + "\ntls = \"none\"\nuser = \"" + user +
                        "\"\npassword = \"secret\"\ninterval = \"1h\"\ntimeout = \"30s\"\n");
  const CommandRun first =
      Dmarcd({"fetch", "--once", "--log-level", "info", "--config", config.string()});
  EXPECT_EQ(first.status, 1) << first.out << first.err;  // some input was rejected
  const CommandRun second =
      Dmarcd({"fetch", "--once", "--log-level", "info", "--config", config.string()});
  EXPECT_EQ(second.status, 0) << second.out << second.err;
  EXPECT_NE(second.out.find(" seen=0 "), std::string::npos) << second.out;
  const std::string log = first.err + second.err;

  const std::string origin_prefix =
      "imap:hostile/INBOX;UIDVALIDITY=" + Text("SELECT uidvalidity FROM imap_state") + "/;UID=";
  std::set<std::string> seen;
  size_t rejected = 0;
  size_t aggregate = 0;
  size_t failure = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& file = files[i];
    SCOPED_TRACE(file);
    const std::string origin = origin_prefix + std::to_string(2 * i + 1);
    const std::string control_origin = origin_prefix + std::to_string(2 * i + 2);

    // Fetched and stored once over the two runs.
    size_t lines = 0;
    std::string line;
    for (std::istringstream in(log); std::getline(in, line);) {
      if (line.find("origin=" + origin + " outcome=") != std::string::npos) ++lines;
    }
    ASSERT_EQ(lines, 1u) << log;

    Outcome hostile;
    for (std::istringstream in(log); std::getline(in, line);) {
      if (line.find("origin=" + origin + " outcome=") == std::string::npos) continue;
      hostile.status = Field(line, "outcome");
    }
    hostile.code = Text("SELECT code FROM rejected WHERE origin = " + Quoted(origin));
    if (hostile.code == "(no row)") hostile.code.clear();
    hostile.report_id = Text("SELECT report_id FROM reports WHERE origin = " + Quoted(origin));
    hostile.records = Count("SELECT records FROM reports WHERE origin = " + Quoted(origin));
    hostile.failure = Count(
                          "SELECT count(*) FROM failure_reports f JOIN raw_inputs r ON "
                          "f.raw_input_id = r.id WHERE r.origin = " +
                          Quoted(origin)) == 1;
    if (file == "bomb10g.gz") {
      EXPECT_EQ(hostile.status, "rejected");
      EXPECT_TRUE(hostile.code == "ratio_exceeded" || hostile.code == "not_xml") << hostile.code;
    } else if (hostile.status == "duplicate") {
      EXPECT_TRUE(Expectations().at(file).code.empty()) << "a duplicate of a rejected input";
      EXPECT_EQ(hostile.report_id, "(no row)");
    } else {
      Check(file, hostile, seen);
    }
    if (hostile.status == "rejected") {
      ++rejected;
      EXPECT_EQ(Count("SELECT count(*) FROM reports WHERE origin = " + Quoted(origin)), 0);
      EXPECT_FALSE(hostile.failure);
      EXPECT_TRUE(LogNamesReason(log, origin, hostile.code)) << log;
    } else {
      ++(hostile.failure ? failure : aggregate);
    }

    EXPECT_EQ(Text("SELECT report_id FROM reports WHERE origin = " + Quoted(control_origin)),
              "imap-" + file);
    EXPECT_EQ(Count("SELECT records FROM reports WHERE origin = " + Quoted(control_origin)), 2);
  }

  // Every rejection the table expects (and the bomb), the forensic control,
  // the rest aggregate reports stored or already there.
  size_t want_rejected = 1;
  for (const auto& [file, want] : Expectations()) want_rejected += want.code.empty() ? 0 : 1;
  EXPECT_EQ(rejected, want_rejected);
  EXPECT_EQ(failure, 1u);
  EXPECT_EQ(aggregate, files.size() - want_rejected - failure);

  // Each message filed by its outcome, none left behind.
  EXPECT_TRUE(dovecot.Messages(user, "INBOX").empty());
  EXPECT_EQ(dovecot.Messages(user, "Archive/Invalid").size(), rejected);
  EXPECT_EQ(dovecot.Messages(user, "Archive/Failure").size(), failure);
  EXPECT_EQ(dovecot.Messages(user, "Archive/Aggregate").size(), aggregate + files.size());
  EXPECT_EQ(Text("PRAGMA integrity_check"), "ok");
}

}  // namespace
}  // namespace dmarcd
