#include "web/assets.hpp"

#include "web/embedded_assets.hpp"

namespace dmarcd::web {

const Asset* FindAsset(std::string_view path) {
  // The dashboard is a single page: "/" is its entry point, everything else
  // is looked up verbatim (no directory listing, no path normalisation, so
  // "/../x" simply matches nothing).
  if (path == "/") {
    path = "/index.html";
  }

  // A handful of files: a linear scan beats building an index.
  for (const Asset& asset : EmbeddedAssets()) {
    if (asset.path == path) {
      return &asset;
    }
  }
  return nullptr;
}

}  // namespace dmarcd::web
