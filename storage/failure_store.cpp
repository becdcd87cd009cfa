#include "storage/failure_store.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include "parser/arf_parser.hpp"
#include "parser/pipeline.hpp"
#include "storage/tokens.hpp"

namespace dmarcd::storage {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kHashHexDigits = 12;
// How much of an email is searched for the word that marks an ARF report.
constexpr size_t kProbeBytes = size_t{64} << 10;

// RFC 5322 section 3.2.3 atext and '.', less '=' and '/': those join an
// address to what precedes it in Authentication-Results
// ("smtp.mailfrom=user@example.net") far more often than they sit in one.
bool IsLocalChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-?^_`{|}~.").find(c) != std::string_view::npos;
}

bool IsDomainChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-';
}

bool IsHash(std::string_view local) {
  if (local.size() != 2 + kHashHexDigits || !local.starts_with("h-")) return false;
  for (char c : local.substr(2)) {
    if (std::string_view("0123456789abcdef").find(c) == std::string_view::npos) return false;
  }
  return true;
}

std::string HashLocalPart(std::string_view local, std::string_view key) {
  std::string lower(local);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(lower.data()), lower.size(), mac.data(), &size);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "h-";
  for (size_t i = 0; i < kHashHexDigits / 2; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0x0f];
  }
  return out;
}

Result<std::string> PrivacyKey(Database& db) {
  auto find = Statement::Prepare(db.Handle(), "SELECT key FROM privacy_key WHERE id = 1");
  if (!find) return tl::unexpected(find.error());
  auto found = find->Step();
  if (!found) return tl::unexpected(found.error());
  if (*found) return find->Blob(0);

  std::string key(kKeyBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
    return MakeError(ErrorCode::kInternal, "no random bytes for the privacy key");
  }
  auto insert = Statement::Prepare(db.Handle(), "INSERT INTO privacy_key (id, key) VALUES (1, ?)");
  if (!insert) return tl::unexpected(insert.error());
  if (auto inserted = insert->BindBlob(1, key).Run(); !inserted) {
    return tl::unexpected(inserted.error());
  }
  return key;
}

bool ContainsNoCase(std::string_view text, std::string_view word) {
  auto it = std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != text.end();
}

}  // namespace

bool MayBeFailureReport(std::string_view bytes) {
  if (parser::SniffPayload(bytes) != parser::PayloadKind::kEmail) return false;
  return ContainsNoCase(bytes.substr(0, kProbeBytes), "feedback-report") ||
         parser::LooksLikeNonStandardFailureReport(bytes);
}

namespace {

// The email's header block (RFC 5322 section 2.1), up to its blank line.
std::string OuterHeaders(std::string_view email) {
  for (std::string_view blank : {"\r\n\r\n", "\n\n"}) {
    if (size_t end = email.find(blank); end != std::string_view::npos) {
      return std::string(email.substr(0, end + blank.size()));
    }
  }
  return std::string(email);
}

std::string Lines(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) {
    if (!text.empty()) text += '\n';
    text += item;
  }
  return text;
}

}  // namespace

std::string_view SampleModeName(SampleMode mode) {
  switch (mode) {
    case SampleMode::kFull:
      return "full";
    case SampleMode::kHeaders:
      return "headers";
    case SampleMode::kNone:
      return "none";
  }
  return "headers";
}

Result<SampleMode> ParseSampleMode(std::string_view name) {
  for (SampleMode mode : {SampleMode::kFull, SampleMode::kHeaders, SampleMode::kNone}) {
    if (name == SampleModeName(mode)) return mode;
  }
  return MakeError(
      ErrorCode::kConfig,
      "store_samples must be \"headers\", \"full\" or \"none\", not \"" + std::string(name) + "\"");
}

std::string RedactLocalParts(std::string_view text, std::string_view key) {
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  for (size_t at = text.find('@'); at != std::string_view::npos; at = text.find('@', at + 1)) {
    size_t begin = at;
    while (begin > copied && IsLocalChar(text[begin - 1])) --begin;
    while (begin < at && text[begin] == '.') ++begin;
    size_t end = at + 1;
    while (end < text.size() && IsDomainChar(text[end])) ++end;
    const std::string_view local = text.substr(begin, at - begin);
    if (local.empty() || end == at + 1 || IsHash(local)) continue;
    out.append(text.substr(copied, begin - copied));
    out += HashLocalPart(local, key);
    copied = at;
  }
  out.append(text.substr(copied));
  return out;
}

Result<std::optional<parser::Envelope>> ApplyFailurePrivacy(Database& db,
                                                            const parser::Envelope& envelope,
                                                            const FailurePrivacy& privacy) {
  const bool keeps_all = privacy.store_samples == SampleMode::kFull && !privacy.redact_local_parts;
  if (keeps_all || !MayBeFailureReport(envelope.bytes)) return std::nullopt;

  std::string key;
  if (privacy.redact_local_parts) {
    auto found = PrivacyKey(db);
    if (!found) return tl::unexpected(found.error());
    key = std::move(*found);
  }
  auto redact = [&](std::string_view text) {
    return privacy.redact_local_parts ? RedactLocalParts(text, key) : std::string(text);
  };

  auto report = parser::ParseFailureReport(envelope.bytes);
  if (!report) {
    // Another feedback type is no failure report and is kept whole. A
    // failure report too broken to read goes to the rejected table as the
    // settings allow: whole only with "full", else its own header block
    // alone (the returned message cannot be told apart from the rest);
    // local parts redacted as far as they can be found in the bytes.
    if (report.error().code == ErrorCode::kNotAReport) return std::nullopt;
    if (privacy.store_samples == SampleMode::kFull) {
      return parser::Envelope{redact(envelope.bytes), envelope.origin, envelope.refused};
    }
    return parser::Envelope{redact(OuterHeaders(envelope.bytes)), envelope.origin,
                            envelope.refused};
  }

  parser::FailureReport kept;
  kept.format = report->format;
  for (const std::string& field : report->fields) kept.fields.push_back(redact(field));
  if (privacy.store_samples != SampleMode::kNone && report->returned_part_type) {
    kept.returned_part_type = report->returned_part_type;
    kept.headers = redact(report->headers);
    if (privacy.store_samples == SampleMode::kFull && report->body) {
      kept.body = redact(*report->body);
    }
  }
  std::vector<std::string> envelope_headers;
  for (const std::string& header : report->envelope_headers) {
    envelope_headers.push_back(redact(header));
  }
  return parser::Envelope{parser::WriteFailureReport(kept, envelope_headers), envelope.origin,
                          envelope.refused};
}

Result<FailureStoreOutcome> FailureStore::Store(const parser::FailureReport& report, bool redacted,
                                                int64_t raw_pk, std::string_view origin,
                                                int64_t received_at) {
  if (!prepared_) {
    auto find = Statement::Prepare(db_.Handle(), "SELECT id FROM failure_reports WHERE digest = ?");
    if (!find) return tl::unexpected(find.error());
    find_ = std::move(*find);
    auto insert = Statement::Prepare(
        db_.Handle(),
        "INSERT INTO failure_reports (digest, domain, format, arrived_at, feedback_type, "
        "user_agent, version, arrival_date, arrival_date_text, reporting_mta, source_ip, "
        "source_ip_comment, incidents, original_envelope_id, original_mail_from, "
        "original_rcpt_to, reported_domain, reported_uri, authentication_results, auth_failure, "
        "identity_alignment, delivery_result, dkim_domain, dkim_identity, dkim_selector, "
        "dkim_canonicalized_header, dkim_canonicalized_body, spf_dns, fields, "
        "returned_part_type, mail_from, mail_to, subject, mail_date, message_id, headers, body, "
        "sample_kept, local_parts_redacted, warnings, raw_input_id, received_at, origin) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!insert) return tl::unexpected(insert.error());
    insert_ = std::move(*insert);
    prepared_ = true;
  }

  // The outer envelope (Received lines, the channel) differs between IMAP,
  // upload and file; the report itself is its fields and returned headers.
  FailureStoreOutcome outcome;
  outcome.domain = report.Domain();
  outcome.arrived_at = report.arrival_date.value_or(received_at);
  const std::string digest = Sha256Hex(Lines(report.fields) + "\n\n" + report.headers);
  find_.Bind(1, std::string_view(digest));
  auto found = find_.Step();
  if (!found) return tl::unexpected(found.error());
  if (*found) {
    outcome.duplicate = true;
    outcome.id = find_.Int(0);
    find_.Reset();
    return outcome;
  }
  find_.Reset();

  const char* sample = report.body ? "full" : report.returned_part_type ? "headers" : "none";
  const bool arf = report.format == parser::FailureFormat::kArf;
  insert_.Bind(1, std::string_view(digest))
      .Bind(2, std::string_view(outcome.domain))
      .Bind(3, std::string_view(arf ? "arf" : "non_standard"))
      .Bind(4, outcome.arrived_at)
      .Bind(5, std::string_view(report.feedback_type))
      .Bind(6, report.user_agent)
      .Bind(7, report.version)
      .Bind(8, report.arrival_date)
      .Bind(9, report.arrival_date_text)
      .Bind(10, report.reporting_mta)
      .Bind(11, report.source_ip)
      .Bind(12, report.source_ip_comment)
      .Bind(13, report.incidents ? std::optional<int64_t>(static_cast<int64_t>(*report.incidents))
                                 : std::nullopt)
      .Bind(14, report.original_envelope_id)
      .Bind(15, report.original_mail_from)
      .Bind(16, std::string_view(Lines(report.original_rcpt_to)))
      .Bind(17, std::string_view(Lines(report.reported_domain)))
      .Bind(18, std::string_view(Lines(report.reported_uri)))
      .Bind(19, std::string_view(Lines(report.authentication_results)))
      .Bind(20, std::string_view(Lines(report.auth_failure)))
      .Bind(21, std::string_view(Lines(report.identity_alignment)))
      .Bind(22, report.delivery_result)
      .Bind(23, report.dkim_domain)
      .Bind(24, report.dkim_identity)
      .Bind(25, report.dkim_selector)
      .Bind(26, report.dkim_canonicalized_header)
      .Bind(27, report.dkim_canonicalized_body)
      .Bind(28, report.spf_dns)
      .Bind(29, std::string_view(Lines(report.fields)))
      .Bind(30, report.returned_part_type)
      .Bind(31, report.from)
      .Bind(32, report.to)
      .Bind(33, report.subject)
      .Bind(34, report.date)
      .Bind(35, report.message_id)
      .Bind(36, std::string_view(report.headers));
  if (report.body) {
    insert_.BindBlob(37, *report.body);
  } else {
    insert_.BindNull(37);
  }
  insert_.Bind(38, std::string_view(sample))
      .Bind(39, int64_t{redacted ? 1 : 0})
      .Bind(40, std::string_view(Lines(report.warnings)))
      .Bind(41, raw_pk != 0 ? std::optional<int64_t>(raw_pk) : std::nullopt)
      .Bind(42, received_at)
      .Bind(43, origin);
  if (auto inserted = insert_.Run(); !inserted) return tl::unexpected(inserted.error());
  outcome.id = sqlite3_last_insert_rowid(db_.Handle());
  return outcome;
}

Result<int64_t> DeleteFailureReportsBefore(Database& db, int64_t cutoff) {
  if (auto begun = db.Exec("BEGIN IMMEDIATE"); !begun) return tl::unexpected(begun.error());
  auto fail = [&db](Error error) -> Result<int64_t> {
    db.Exec("ROLLBACK");
    return tl::unexpected(std::move(error));
  };

  // The raw copies go first, while the rows still say which they are; a
  // copy another row still needs (a report, a rejected part) stays.
  auto raw = Statement::Prepare(
      db.Handle(),
      "DELETE FROM raw_inputs WHERE id IN (SELECT raw_input_id FROM failure_reports WHERE "
      "received_at < ?1 AND raw_input_id IS NOT NULL) "
      "AND id NOT IN (SELECT raw_input_id FROM reports WHERE raw_input_id IS NOT NULL) "
      "AND id NOT IN (SELECT raw_input_id FROM rejected WHERE raw_input_id IS NOT NULL) "
      "AND id NOT IN (SELECT raw_input_id FROM failure_reports WHERE received_at >= ?1 "
      "AND raw_input_id IS NOT NULL)");
  auto rows = Statement::Prepare(db.Handle(), "DELETE FROM failure_reports WHERE received_at < ?");
  if (!raw || !rows) return fail(!raw ? raw.error() : rows.error());
  if (auto deleted = raw->Bind(1, cutoff).Run(); !deleted) return fail(deleted.error());
  if (auto deleted = rows->Bind(1, cutoff).Run(); !deleted) return fail(deleted.error());
  const int64_t count = sqlite3_changes(db.Handle());
  if (auto committed = db.Exec("COMMIT"); !committed) return fail(committed.error());
  return count;
}

Result<std::optional<int64_t>> ParseRetention(std::string_view text) {
  if (text.empty() || text == "0") return std::optional<int64_t>();
  const char unit = text.back();
  std::string_view digits = text.substr(0, text.size() - 1);
  int64_t per_unit = unit == 'd' ? 86400 : unit == 'w' ? 7 * 86400 : unit == 'h' ? 3600 : 0;
  bool numeric =
      !digits.empty() && digits.size() <= 6 &&
      std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (per_unit == 0 || !numeric) {
    return MakeError(ErrorCode::kConfig,
                     "failure_retention must look like \"90d\", \"12w\" or "
                     "\"36h\", not \"" +
                         std::string(text) + "\"");
  }
  return std::optional<int64_t>(std::stoll(std::string(digits)) * per_unit);
}

}  // namespace dmarcd::storage
