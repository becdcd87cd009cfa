#!/usr/bin/env bash
# Installs what is missing, builds dmarcd (release) and runs `dmarcd serve`
# on its defaults: ./dmarcd.db and the dashboard on http://127.0.0.1:8080/.
# Arguments are passed to `dmarcd serve` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DDMARCD_BUILD_TESTS=OFF -DDMARCD_BUILD_BENCH=OFF >/dev/null
cmake --build build/release -j2 --target dmarcd
exec build/release/dmarcd serve "$@"
