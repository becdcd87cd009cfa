// Reports for the benchmarks, made in memory and deterministic, so that
// runs compare: the shapes a large mailbox provider sends.
#pragma once

#include <zlib.h>

#include <string>

namespace dmarcd::bench {

// A report shaped like a large mailbox provider's: every record with one
// DKIM and one SPF result.
inline std::string MakeReport(int records, const std::string& report_id = "bench-1") {
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n<report_metadata>"
      "<org_name>bench.example.net</org_name><email>dmarc@bench.example.net</email>"
      "<report_id>" +
      report_id +
      "</report_id><date_range><begin>1735689600</begin>"
      "<end>1735775999</end></date_range></report_metadata>\n<policy_published>"
      "<domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp>"
      "<pct>100</pct></policy_published>\n";
  for (int i = 0; i < records; ++i) {
    const std::string ip =
        "198.51." + std::to_string((i / 250) % 250) + "." + std::to_string(i % 250 + 1);
    const bool pass = i % 4 != 0;
    const char* result = pass ? "pass" : "fail";
    xml += "<record><row><source_ip>" + ip + "</source_ip><count>" + std::to_string(i % 97 + 1) +
           "</count><policy_evaluated><disposition>none</disposition><dkim>" + result +
           "</dkim><spf>" + result +
           "</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from>"
           "</identifiers><auth_results><dkim><domain>example.com</domain><selector>s1</selector>"
           "<result>" +
           result + "</result></dkim><spf><domain>example.com</domain><result>" + result +
           "</result></spf></auth_results></record>\n";
  }
  xml += "</feedback>\n";
  return xml;
}

inline std::string Gzip(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace dmarcd::bench
