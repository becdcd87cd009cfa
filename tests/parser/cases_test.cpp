// Every fault case in tests/data/cases: the input goes through ParseEnvelope
// and what the handler receives is compared with the case's expected.json,
// field by field.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <ctime>
#include <map>

#include "tests/parser/collecting_handler.hpp"

namespace dmarcd::parser::testing {
namespace {

namespace json = boost::json;

struct CaseInput {
  std::string folder;
  std::string input;
  json::object expected;  // the case, or its per_input entry
};

void PrintTo(const CaseInput& param, std::ostream* out) {
  *out << param.folder << "/" << param.input;
}

std::string PrintName(const ::testing::TestParamInfo<CaseInput>& info) {
  std::string name = info.param.folder + "_" + info.param.input;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

std::vector<CaseInput> LoadCases() {
  std::vector<CaseInput> cases;
  std::vector<std::filesystem::path> folders;
  for (const auto& entry : std::filesystem::directory_iterator(DataDir() / "cases")) {
    if (entry.is_directory()) folders.push_back(entry.path());
  }
  std::sort(folders.begin(), folders.end());

  for (const auto& folder : folders) {
    json::object expected = json::parse(ReadFile(folder / "expected.json")).as_object();
    for (const auto& input : expected.at("inputs").as_array()) {
      std::string file(input.as_string());
      json::object entry = expected;
      if (expected.contains("per_input")) {
        entry = expected.at("per_input").at(file).as_object();
      }
      cases.push_back(CaseInput{folder.filename().string(), file, entry});
    }
  }
  return cases;
}

// The ErrorCode each rejected input must carry.
const std::map<std::string, ErrorCode>& ExpectedCodes() {
  static const std::map<std::string, ErrorCode> codes = {
      {"07-gzip-payload-not-xml", ErrorCode::kNotXml},
      {"11-stray-xsd-schema-tag", ErrorCode::kMalformedXml},
      {"c-end-before-begin.xml", ErrorCode::kBadDateRange},
      {"bomb.xml.gz", ErrorCode::kRatioExceeded},
      {"xxe-external-entity.xml", ErrorCode::kDoctypeRefused},
      {"entity-expansion.xml", ErrorCode::kDoctypeRefused},
      {"deep-nesting.xml.gz", ErrorCode::kTooDeep},
  };
  return codes;
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::optional<std::string> OptString(const json::value& value) {
  if (value.is_null()) return std::nullopt;
  return std::string(value.as_string());
}

std::optional<std::string> Field(const json::object& object, std::string_view key) {
  return OptString(object.at(key));
}

// Compares an optional model value with a JSON string or null.
#define EXPECT_FIELD(actual, object, key) EXPECT_EQ(actual, Field(object, key)) << "field " << key

void ExpectPolicy(const PolicyPublished& policy, const json::object& expected) {
  for (const auto& [key, value] : expected) {
    if (key == "domain") {
      EXPECT_EQ(policy.domain, value.as_string());
    } else if (key == "pct") {
      std::optional<int> pct;
      if (!value.is_null()) pct = static_cast<int>(value.to_number<int64_t>());
      EXPECT_EQ(policy.pct, pct);
    } else if (key == "adkim") {
      EXPECT_EQ(policy.adkim, OptString(value));
    } else if (key == "aspf") {
      EXPECT_EQ(policy.aspf, OptString(value));
    } else if (key == "p") {
      EXPECT_EQ(policy.p, OptString(value));
    } else if (key == "sp") {
      EXPECT_EQ(policy.sp, OptString(value));
    } else if (key == "np") {
      EXPECT_EQ(policy.np, OptString(value));
    } else if (key == "fo") {
      EXPECT_EQ(policy.fo, OptString(value));
    } else {
      ADD_FAILURE() << "unknown policy field " << key;
    }
  }
}

void ExpectRecord(const AggregateRecord& record, const json::object& expected) {
  EXPECT_EQ(record.source_ip, expected.at("source_ip").as_string());
  EXPECT_EQ(record.count, expected.at("count").to_number<uint64_t>());
  EXPECT_FIELD(record.disposition, expected, "disposition");
  EXPECT_FIELD(record.policy_dkim, expected, "policy_dkim");
  EXPECT_FIELD(record.policy_spf, expected, "policy_spf");
  EXPECT_FIELD(record.header_from, expected, "header_from");
  EXPECT_FIELD(record.envelope_from, expected, "envelope_from");
  if (expected.contains("source_ip_family")) {
    int family = record.source_ip.find(':') == std::string::npos ? 4 : 6;
    EXPECT_EQ(family, expected.at("source_ip_family").to_number<int>());
  }

  const auto& reasons = expected.at("reasons").as_array();
  ASSERT_EQ(record.reasons.size(), reasons.size());
  for (size_t i = 0; i < reasons.size(); ++i) {
    EXPECT_FIELD(record.reasons[i].type, reasons[i].as_object(), "type");
    EXPECT_FIELD(record.reasons[i].comment, reasons[i].as_object(), "comment");
  }

  const auto& dkim = expected.at("dkim").as_array();
  ASSERT_EQ(record.dkim.size(), dkim.size());
  for (size_t i = 0; i < dkim.size(); ++i) {
    const auto& want = dkim[i].as_object();
    EXPECT_FIELD(record.dkim[i].domain, want, "domain");
    EXPECT_FIELD(record.dkim[i].selector, want, "selector");
    EXPECT_EQ(record.dkim[i].result, want.at("result").as_string());
    EXPECT_FIELD(record.dkim[i].human_result, want, "human_result");
  }

  const auto& spf = expected.at("spf").as_array();
  ASSERT_EQ(record.spf.size(), spf.size());
  for (size_t i = 0; i < spf.size(); ++i) {
    const auto& want = spf[i].as_object();
    EXPECT_FIELD(record.spf[i].domain, want, "domain");
    EXPECT_FIELD(record.spf[i].scope, want, "scope");
    EXPECT_EQ(record.spf[i].result, want.at("result").as_string());
    if (want.contains("human_result")) {
      EXPECT_FIELD(record.spf[i].human_result, want, "human_result");
    }
  }
}

void ExpectReport(const CollectedDocument& doc, const json::object& expected) {
  const AggregateHeader& header = doc.header;
  if (expected.contains("org_name")) {
    EXPECT_EQ(header.org_name, expected.at("org_name").as_string());
  }
  if (expected.contains("org_name_one_of")) {
    bool found = false;
    for (const auto& name : expected.at("org_name_one_of").as_array()) {
      found = found || header.org_name == name.as_string();
    }
    EXPECT_TRUE(found) << header.org_name;
  }
  if (expected.contains("org_email")) {
    EXPECT_FIELD(header.email, expected, "org_email");
  }
  if (expected.contains("extra_contact_info")) {
    EXPECT_FIELD(header.extra_contact_info, expected, "extra_contact_info");
  }
  EXPECT_EQ(header.report_id, expected.at("report_id").as_string());
  const auto& range = expected.at("date_range").as_object();
  EXPECT_EQ(header.begin, range.at("begin").to_number<int64_t>());
  EXPECT_EQ(header.end, range.at("end").to_number<int64_t>());
  if (expected.contains("attachment_filename")) {
    EXPECT_EQ(doc.name, expected.at("attachment_filename").as_string());
  }

  if (expected.contains("policy_published")) {
    ExpectPolicy(header.policy, expected.at("policy_published").as_object());
  }

  if (expected.at("records").is_number()) {
    // Case 24's summary form: totals only.
    EXPECT_EQ(doc.records.size(), expected.at("records").to_number<uint64_t>());
    EXPECT_EQ(doc.Messages(), expected.at("messages").to_number<uint64_t>());
    ASSERT_FALSE(doc.records.empty());
    EXPECT_EQ(doc.records[0].count, expected.at("first_record_count").to_number<uint64_t>());
    std::set<std::string> sources;
    for (const auto& record : doc.records) sources.insert(record.source_ip);
    EXPECT_EQ(sources.size(), expected.at("distinct_source_ips").to_number<uint64_t>());
    return;
  }

  const auto& records = expected.at("records").as_array();
  ASSERT_EQ(doc.records.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    SCOPED_TRACE("record " + std::to_string(i));
    ExpectRecord(doc.records[i], records[i].as_object());
  }
  const auto& totals = expected.at("totals").as_object();
  EXPECT_EQ(doc.records.size(), totals.at("records").to_number<uint64_t>());
  EXPECT_EQ(doc.Messages(), totals.at("messages").to_number<uint64_t>());
}

// Warnings are compared by meaning: the expected text up to its first
// parenthesis or quote must appear in one of the warnings given.
void ExpectWarnings(const std::vector<std::string>& actual, const json::array& expected) {
  EXPECT_EQ(actual.size(), expected.size()) << ::testing::PrintToString(actual);
  for (const auto& want : expected) {
    std::string text = Lower(std::string(want.as_string()));
    std::string key = text.substr(0, text.find_first_of("('"));
    while (!key.empty() && key.back() == ' ') key.pop_back();
    bool found = std::any_of(actual.begin(), actual.end(), [&](const std::string& warning) {
      return Lower(warning).find(key) != std::string::npos;
    });
    EXPECT_TRUE(found) << "no warning like '" << text << "' in "
                       << ::testing::PrintToString(actual);
  }
}

void ExpectRejected(const CollectingHandler& handler, const CaseInput& param) {
  EXPECT_TRUE(handler.Accepted().empty());
  auto errors = handler.Errors();
  ASSERT_FALSE(errors.empty());
  const Error& error = errors.front();

  const auto& codes = ExpectedCodes();
  auto code = codes.find(param.input);
  if (code == codes.end()) code = codes.find(param.folder);
  ASSERT_NE(code, codes.end()) << "no expected code for " << param.input;
  EXPECT_EQ(ErrorCodeName(error.code), ErrorCodeName(code->second)) << error.ToString();

  std::vector<std::string> reasons;
  const auto& spec = param.expected.at("error").as_object();
  if (spec.contains("reason_contains_any")) {
    for (const auto& reason : spec.at("reason_contains_any").as_array()) {
      reasons.emplace_back(reason.as_string());
    }
  }
  if (spec.contains("reason_contains"))
    reasons.emplace_back(spec.at("reason_contains").as_string());
  bool found = std::any_of(reasons.begin(), reasons.end(), [&](const std::string& reason) {
    return Lower(error.message).find(Lower(reason)) != std::string::npos;
  });
  EXPECT_TRUE(found) << error.message;
}

// Keeps the failure reports the pipeline hands over.
class FailureCollectingHandler : public CollectingHandler {
 public:
  void OnFailureReport(std::string_view name, std::string_view bytes,
                       const FailureReport& report) override {
    static_cast<void>(name);
    static_cast<void>(bytes);
    failure_reports.push_back(report);
  }

  std::vector<FailureReport> failure_reports;
};

std::string IsoUtc(int64_t seconds) {
  std::time_t time = seconds;
  std::tm tm{};
  gmtime_r(&time, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::vector<std::string> Strings(const json::value& value) {
  std::vector<std::string> out;
  for (const auto& item : value.as_array()) out.emplace_back(item.as_string());
  return out;
}

// Cases 22 and 23: the fields of expected.json's failure report.
void ExpectFailureReport(const FailureReport& report, const json::object& expected) {
  auto text = [&](const char* key) { return std::string(expected.at(key).as_string()); };
  EXPECT_EQ(text("kind"), "failure");
  EXPECT_EQ(report.format, FailureFormat::kArf);
  EXPECT_EQ(report.feedback_type, text("feedback_type"));
  EXPECT_EQ(report.source_ip, text("source_ip"));
  ASSERT_EQ(report.reported_domain.size(), 1U);
  EXPECT_EQ(report.reported_domain[0], text("reported_domain"));
  ASSERT_TRUE(report.arrival_date.has_value());
  EXPECT_EQ(IsoUtc(*report.arrival_date), text("arrival_date_utc"));

  const auto& headers = expected.at("original_headers").as_object();
  EXPECT_EQ(report.from, std::string(headers.at("from").as_string()));
  EXPECT_EQ(report.subject, std::string(headers.at("subject").as_string()));
  EXPECT_EQ(report.message_id, std::string(headers.at("message_id").as_string()));

  if (expected.contains("user_agent")) {
    EXPECT_EQ(report.user_agent, text("user_agent"));
  }
  if (expected.contains("version")) {
    EXPECT_EQ(report.version, text("version"));
  }
  if (expected.contains("original_mail_from")) {
    EXPECT_EQ(report.original_mail_from, text("original_mail_from"));
  }
  if (expected.contains("original_rcpt_to")) {
    EXPECT_EQ(report.original_rcpt_to, std::vector<std::string>{text("original_rcpt_to")});
  }
  if (expected.contains("source_ip_comment")) {
    EXPECT_EQ(report.source_ip_comment, text("source_ip_comment"));
  }
  if (expected.contains("authentication_results")) {
    EXPECT_EQ(report.authentication_results,
              std::vector<std::string>{text("authentication_results")});
  }
  if (expected.contains("auth_failure")) {
    EXPECT_EQ(report.auth_failure, Strings(expected.at("auth_failure")));
  }
  if (expected.contains("identity_alignment")) {
    EXPECT_EQ(report.identity_alignment, Strings(expected.at("identity_alignment")));
  }
  if (expected.contains("delivery_result")) {
    EXPECT_EQ(report.delivery_result, text("delivery_result"));
  }
  if (expected.contains("original_headers_part_type")) {
    EXPECT_EQ(report.returned_part_type, text("original_headers_part_type"));
  }
}

class CasesTest : public ::testing::TestWithParam<CaseInput> {};

TEST_P(CasesTest, MatchesExpected) {
  const CaseInput& param = GetParam();
  FailureCollectingHandler handler;
  auto start = std::chrono::steady_clock::now();
  auto result = ParseFile(DataDir() / "cases" / param.folder / param.input, handler);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(result) << result.error().ToString();

  std::string outcome(param.expected.at("outcome").as_string());
  bool failure_report = param.folder.starts_with("22-") || param.folder.starts_with("23-");
  if (failure_report) {
    EXPECT_TRUE(handler.Errors().empty()) << handler.Errors().front().ToString();
    const auto& reports = param.expected.at("reports").as_array();
    ASSERT_EQ(handler.failure_reports.size(), reports.size());
    for (size_t i = 0; i < reports.size(); ++i) {
      ExpectFailureReport(handler.failure_reports[i], reports[i].as_object());
    }
    json::array no_warnings;
    const json::array& warnings = param.expected.contains("warnings")
                                      ? param.expected.at("warnings").as_array()
                                      : no_warnings;
    ExpectWarnings(handler.failure_reports[0].warnings, warnings);
    return;
  }
  if (outcome == "rejected") {
    ExpectRejected(handler, param);
    // A bomb or an entity expansion is refused cheaply, long before 10 s.
    EXPECT_LT(elapsed, std::chrono::seconds(10));
    return;
  }

  EXPECT_TRUE(handler.Errors().empty()) << handler.Errors().front().ToString();
  auto accepted = handler.Accepted();
  if (param.expected.contains("report")) {
    ASSERT_EQ(accepted.size(), 1U);
    ExpectReport(*accepted[0], param.expected.at("report").as_object());
    return;
  }
  const auto& reports = param.expected.at("reports").as_array();
  ASSERT_EQ(accepted.size(), reports.size());
  for (size_t i = 0; i < reports.size(); ++i) {
    ExpectReport(*accepted[i], reports[i].as_object());
  }
  json::array no_warnings;
  const json::array& warnings =
      param.expected.contains("warnings") ? param.expected.at("warnings").as_array() : no_warnings;
  ExpectWarnings(accepted[0]->warnings, warnings);
}

INSTANTIATE_TEST_SUITE_P(AllCases, CasesTest, ::testing::ValuesIn(LoadCases()), PrintName);

// Case 24 with a tighter size cap, as its expected.json describes: the size
// cap stops the bomb and inflation stops close to it.
TEST(CasesLimitTest, BombStoppedBySizeCap) {
  Limits limits;
  limits.max_inflated_bytes = 67108864;
  limits.max_compression_ratio = 1e9;
  CollectingHandler handler;
  ASSERT_TRUE(ParseFile(DataDir() / "cases/24-large-report-and-decompression-bomb/bomb.xml.gz",
                        handler, limits));
  auto errors = handler.Errors();
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].code, ErrorCode::kTooLarge);
  EXPECT_NE(errors[0].message.find("decompressed size"), std::string::npos);
}

}  // namespace
}  // namespace dmarcd::parser::testing
