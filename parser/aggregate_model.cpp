#include "parser/aggregate_model.hpp"

namespace dmarcd::parser {

std::string AggregateHeader::ReporterKey() const {
  if (!org_name.empty()) return org_name;

  // Some reporters leave <org_name> empty (seen in the wild from small
  // MTAs); the domain of the contact address still tells them apart.
  if (email) {
    auto at = email->rfind('@');
    if (at != std::string::npos && at + 1 < email->size()) return email->substr(at + 1);
  }
  return "";
}

}  // namespace dmarcd::parser
