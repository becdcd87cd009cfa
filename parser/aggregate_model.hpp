// The DMARC aggregate report model (RFC 7489 Appendix C, RFC 9990).
//
// Values are stored as the reporter sent them once trimmed; enumerations are
// normalised to lower case and, where a reporter used a value outside the
// schema (SPF "hardfail"), mapped to the nearest defined one with a warning
// on the report. std::nullopt means the element was absent or empty.
//
// A report is delivered in pieces so that memory stays flat however many
// records it holds: one AggregateHeader (metadata and published policy),
// then each AggregateRecord, then the warnings gathered on the way (see
// AggregateSink in aggregate_parser.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dmarcd::parser {

struct PolicyPublished {
  std::string domain;                // required
  std::optional<std::string> adkim;  // "r" | "s"
  std::optional<std::string> aspf;   // "r" | "s"
  std::optional<std::string> p;      // "none" | "quarantine" | "reject"
  std::optional<std::string> sp;
  std::optional<std::string> np;  // RFC 9990
  std::optional<int> pct;         // RFC 7489 only
  std::optional<std::string> fo;
  std::optional<std::string> testing;           // RFC 9990: "y" | "n"
  std::optional<std::string> discovery_method;  // RFC 9990: "psl" | "treewalk"
};

struct AggregateHeader {
  std::optional<std::string> version;        // <version>, e.g. "1.0"
  std::optional<std::string> xml_namespace;  // e.g. urn:ietf:params:xml:ns:dmarc-2.0
  std::string org_name;                      // may be empty: some reporters send none
  std::optional<std::string> email;
  std::optional<std::string> extra_contact_info;
  std::string report_id;                 // required, never empty
  int64_t begin = 0;                     // Unix seconds, UTC, required
  int64_t end = 0;                       // Unix seconds, UTC, required, >= begin
  std::vector<std::string> errors;       // <report_metadata><error>
  std::optional<std::string> generator;  // RFC 9990
  PolicyPublished policy;

  // The reporter's identity for de-duplication: org_name when set,
  // otherwise the domain of the contact email, otherwise "".
  std::string ReporterKey() const;
};

struct PolicyOverride {
  std::optional<std::string> type;  // forwarded, sampled_out, local_policy, ...
  std::optional<std::string> comment;
};

struct DkimAuthResult {
  std::optional<std::string> domain;
  std::optional<std::string> selector;
  std::string result;  // none|pass|fail|policy|neutral|temperror|permerror
  std::optional<std::string> human_result;
};

struct SpfAuthResult {
  std::optional<std::string> domain;
  std::optional<std::string> scope;  // "mfrom" | "helo"
  std::string result;                // none|neutral|pass|fail|softfail|temperror|permerror
  std::optional<std::string> human_result;
};

struct AggregateRecord {
  std::string source_ip;                   // canonical text: dotted quad, or RFC 5952 IPv6
  uint64_t count = 0;                      // 64-bit: large reporters exceed 2^31
  std::optional<std::string> disposition;  // none | quarantine | reject
  std::optional<std::string> policy_dkim;  // policy_evaluated/dkim: pass | fail
  std::optional<std::string> policy_spf;   // policy_evaluated/spf: pass | fail
  std::vector<PolicyOverride> reasons;
  std::optional<std::string> header_from;
  std::optional<std::string> envelope_from;
  std::optional<std::string> envelope_to;
  std::vector<DkimAuthResult> dkim;
  std::vector<SpfAuthResult> spf;

  // DMARC passes when either aligned identifier passes (RFC 7489 3.1,
  // as the reporter evaluated it in policy_evaluated).
  bool DmarcPass() const { return policy_dkim == "pass" || policy_spf == "pass"; }
};

}  // namespace dmarcd::parser
