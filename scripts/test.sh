#!/usr/bin/env bash
# Installs what is missing, checks formatting, builds dmarcd with
# AddressSanitizer and UndefinedBehaviorSanitizer (warnings are errors) and
# runs every test: unit, integration against the real binary, and the
# dashboard in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test

echo "== clang-format"
git ls-files -- '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror

echo "== build (address,undefined sanitizers)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DDMARCD_SANITIZE=address,undefined -DDMARCD_WERROR=ON >/dev/null
cmake --build build/asan -j2

echo "== tests"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build/asan
ctest --output-on-failure -j2 --timeout 600
