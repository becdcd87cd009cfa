#include "parser/error.hpp"

namespace dmarcd {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kTooLarge:
      return "too_large";
    case ErrorCode::kRatioExceeded:
      return "ratio_exceeded";
    case ErrorCode::kTooManyEntries:
      return "too_many_entries";
    case ErrorCode::kTooDeep:
      return "too_deep";
    case ErrorCode::kBadArchive:
      return "bad_archive";
    case ErrorCode::kBadMime:
      return "bad_mime";
    case ErrorCode::kNoReport:
      return "no_report";
    case ErrorCode::kNotXml:
      return "not_xml";
    case ErrorCode::kMalformedXml:
      return "malformed_xml";
    case ErrorCode::kDoctypeRefused:
      return "doctype_refused";
    case ErrorCode::kNotAReport:
      return "not_a_report";
    case ErrorCode::kMissingElement:
      return "missing_element";
    case ErrorCode::kInvalidValue:
      return "invalid_value";
    case ErrorCode::kBadDateRange:
      return "bad_date_range";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kDatabaseBusy:
      return "database_busy";
    case ErrorCode::kDatabase:
      return "database";
    case ErrorCode::kNetwork:
      return "network";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kUnauthorized:
      return "unauthorized";
    case ErrorCode::kForbidden:
      return "forbidden";
    case ErrorCode::kConfig:
      return "config";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

bool IsTransient(ErrorCode code) {
  return code == ErrorCode::kIo || code == ErrorCode::kDatabaseBusy ||
         code == ErrorCode::kDatabase || code == ErrorCode::kNetwork;
}

std::string Error::ToString() const {
  std::string out(ErrorCodeName(code));
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

}  // namespace dmarcd
