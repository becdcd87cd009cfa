// Fuzz target: an HTTP request as the REST API reads it. Beast's request
// parser with the server's header and body caps takes the bytes; the
// request target (or, for inputs that are no request, the bytes themselves)
// goes through Boost.URL's origin-form parser and every query parameter
// through the API's parameter parsers (server/api_params.hpp).
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "fuzz/fuzz_support.hpp"
#include "server/api_params.hpp"
#include "server/iso_time.hpp"

namespace dmarcd::fuzz {
namespace {

namespace http = boost::beast::http;

void CheckParam(const std::string& key, const std::string& value) {
  auto limit = server::ParseIntegerParam(key, value, 1, server::kMaxLimit);
  if (limit) Check(*limit >= 1 && *limit <= server::kMaxLimit, "limit within its range");
  auto offset = server::ParseIntegerParam(key, value, 0, std::numeric_limits<int64_t>::max());
  if (offset) Check(*offset >= 0, "offset not negative");

  auto time = server::ParseTimeParam(key, value);
  if (time) {
    auto again = server::ParseIsoTime(server::FormatIsoTime(*time));
    Check(again && *again == *time, "a parsed time formats and parses back to itself");
  } else {
    Check(time.error().code == ErrorCode::kInvalidArgument, "a bad time is an invalid argument");
  }
  Check(server::LowerDomain(value).size() == value.size(), "lower-casing keeps the length");
}

void CheckTarget(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return;
  static_cast<void>(url->path());
  for (const auto& param : url->params()) CheckParam(param.key, param.value);
}

// The caps HttpServer sets on its parser (HttpServerOptions' defaults).
constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr std::uint64_t kBodyLimit = std::uint64_t{64} << 20;

void CheckRequest(std::string_view bytes) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(kBodyLimit);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec || !parser.is_header_done()) return;
  const auto& request = parser.get();
  CheckTarget(std::string_view(request.target().data(), request.target().size()));
}

}  // namespace
}  // namespace dmarcd::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  dmarcd::fuzz::CheckRequest(bytes);
  dmarcd::fuzz::CheckTarget(bytes);
  return 0;
}
