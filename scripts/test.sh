#!/usr/bin/env bash
# Installs what is missing, checks formatting, builds dmarcd with
# AddressSanitizer and UndefinedBehaviorSanitizer (warnings are errors) and
# runs every test: unit, integration against the real binary, and the
# dashboard in headless Chromium; the server's and the IMAP poller's tests
# run once more under ThreadSanitizer; every libFuzzer target runs for
# FUZZ_SECONDS (30) with clang. clang-format and clang-tidy must be clean.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test

echo "== clang-format"
git ls-files -- '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror

echo "== build (address,undefined sanitizers)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DDMARCD_SANITIZE=address,undefined -DDMARCD_WERROR=ON -DDMARCD_BUILD_FUZZ=ON >/dev/null
cmake --build build/asan -j2

echo "== clang-tidy"
run-clang-tidy -p build/asan -quiet -j2 "^$(pwd)/(parser|storage|server|web|tests|bench|fuzz)/.*\.cpp$" \
  >build/asan/clang-tidy.log 2>&1 || {
  grep -E "error:|warning:" build/asan/clang-tidy.log | sort -u
  echo "clang-tidy found problems (full log: build/asan/clang-tidy.log)"
  exit 1
}

echo "== fuzzing (libFuzzer, clang, address,undefined sanitizers)"
# The g++ build above replays tests/data through every target; here each one
# is fuzzed for a while, seeded from tests/data. A crash, leak, sanitizer
# report or hang fails the run; the input is in build/fuzz/fuzz/findings/.
fuzz_targets=(envelope gzip zip aggregate_xml arf http_request)
CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DDMARCD_SANITIZE=address,undefined -DDMARCD_BUILD_FUZZ=ON -DDMARCD_BUILD_TESTS=OFF \
  -DDMARCD_BUILD_BENCH=OFF >/dev/null
cmake --build build/fuzz -j2 --target "${fuzz_targets[@]/#/fuzz_}"
for target in "${fuzz_targets[@]}"; do
  fuzz/run.sh build/fuzz "$target" "${FUZZ_SECONDS:-30}" >"build/fuzz/$target.log" 2>&1 || {
    tail -n 60 "build/fuzz/$target.log"
    echo "fuzz target $target found a problem (log: build/fuzz/$target.log)"
    exit 1
  }
  echo "$target: $(grep -E '^Done' "build/fuzz/$target.log" || true)"
done

echo "== server and IMAP poller tests under ThreadSanitizer"
cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDMARCD_SANITIZE=thread \
  -DDMARCD_WERROR=ON -DDMARCD_BUILD_BENCH=OFF -DDMARCD_BROWSER_TESTS=OFF >/dev/null
cmake --build build/tsan -j2 --target dmarcd dmarcd_server_unit_test dmarcd_server_integration_test \
  dmarcd_imap_test dmarcd_imap_command_test
TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/server/dmarcd_server_unit_test --gtest_brief=1
TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/server/dmarcd_server_integration_test --gtest_brief=1
TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/imap/dmarcd_imap_test --gtest_brief=1
TSAN_OPTIONS=halt_on_error=1 build/tsan/tests/imap/dmarcd_imap_command_test --gtest_brief=1

echo "== all tests (address,undefined sanitizers)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build/asan
ctest --output-on-failure -j2 --timeout 600
