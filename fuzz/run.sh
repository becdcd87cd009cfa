#!/usr/bin/env bash
# Runs one libFuzzer target for a while, seeded from tests/data.
#
#   fuzz/run.sh BUILD_DIR TARGET SECONDS
#
# BUILD_DIR is a clang build configured with -DDMARCD_BUILD_FUZZ=ON; TARGET
# is one of envelope, gzip, zip, aggregate_xml, arf, http_request. What the
# fuzzer learns is kept in BUILD_DIR/fuzz/corpus/TARGET (tests/data is only
# read); an input that crashes, leaks or hangs is written to
# BUILD_DIR/fuzz/findings/TARGET and the script exits non-zero. Copy such an
# input to tests/data/parser/fuzz/ (with a line in tests/data/README.md)
# once it is fixed, so every later build replays it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$1
name=$2
seconds=$3

dict=""
case "$name" in
  envelope | arf) max_len=131072 dict=envelope.dict ;;
  aggregate_xml) max_len=65536 dict=aggregate_xml.dict ;;
  gzip | zip) max_len=65536 ;;
  http_request) max_len=16384 dict=http_request.dict ;;
  *)
    echo "fuzz/run.sh: unknown target '$name'" >&2
    exit 2
    ;;
esac

corpus="$build/fuzz/corpus/$name"
findings="$build/fuzz/findings/$name"
mkdir -p "$corpus" "$findings"

# -timeout: one input running longer than this (wall time) is a hang; the
# hostile-input rule is 10 s on a release build and sanitizers are slower.
# FUZZ_TIMEOUT raises it on a machine busy with other work.
args=(-max_total_time="$seconds" -max_len="$max_len" -timeout="${FUZZ_TIMEOUT:-25}" -rss_limit_mb=2560
  -artifact_prefix="$findings/" -print_final_stats=1)
if [[ -n "$dict" ]]; then args+=(-dict="$root/fuzz/$dict"); fi

exec "$build/fuzz/fuzz_$name" "${args[@]}" "$corpus" "$root/tests/data"
