// The table of embedded dashboard files, written at build time by
// cmake/embed_assets.cmake. Internal to dmarcd_web: callers use FindAsset.
#pragma once

#include <span>

#include "web/assets.hpp"

namespace dmarcd::web {

// Every embedded file, sorted as the build listed them. The views point at
// static storage and stay valid for the life of the program.
std::span<const Asset> EmbeddedAssets();

}  // namespace dmarcd::web
