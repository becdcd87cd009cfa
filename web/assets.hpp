// The dashboard's static files, compiled into the binary at build time (the
// charting library comes from npm at a pinned version; nothing is fetched at
// run time).
#pragma once

#include <string_view>

namespace dmarcd::web {

struct Asset {
  std::string_view path;          // "/index.html", "/app.js", "/vendor/chart.umd.js"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view body;
};

// The asset served at `path`, or nullptr. "/" maps to "/index.html".
const Asset* FindAsset(std::string_view path);

}  // namespace dmarcd::web
