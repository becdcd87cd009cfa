#!/usr/bin/env bash
# Whole-process ingest benchmark (issue #7): times `dmarcd ingest` into a
# fresh database and, in the same run, `xmllint --stream --noout` over the
# same XML uncompressed, and prints both, their ratio, records/s, MB/s of
# XML and peak RSS (median, min and max of RUNS runs).
#
#   bench/ingest_bench.sh [--runs N] [--dmarcd PATH] [--huge]
#
#   --runs N      runs per data set (default 5; the median needs >= 5)
#   --dmarcd PATH the binary (default build/release/dmarcd)
#   --huge        also ingest one report of about 1 GB of XML (gzip), made
#                 as a stream on disk, for its peak RSS: minutes, not seconds
#
# Data sets, made by bench/gen_aggregate.py (deterministic for its seed):
#   gz     1,000 reports x 50 records, one .xml.gz file each
#   eml    the same reports as emails with a gzip attachment
#   big    one report of 150,000 records (about 104 MB of XML), as .xml.gz
#   small  one 50-record .xml.gz, process start to exit, into a database
#          that holds another report already, and into a new one (which
#          includes creating the schema)
# Everything lives in a temporary folder, removed on exit. Needs python3,
# xmllint (Debian libxml2-utils) and GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5
dmarcd=build/release/dmarcd
huge=0
while (($#)); do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --dmarcd) dmarcd=$2; shift 2 ;;
    --huge) huge=1; shift ;;
    *) echo "usage: $0 [--runs N] [--dmarcd PATH] [--huge]" >&2; exit 2 ;;
  esac
done
[[ -x "$dmarcd" ]] || { echo "ingest_bench: $dmarcd not built (Release)" >&2; exit 2; }
command -v xmllint >/dev/null || { echo "ingest_bench: install libxml2-utils" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "ingest_bench: install time (GNU time)" >&2; exit 2; }
dmarcd=$(realpath "$dmarcd")

dir=$(mktemp -d -t dmarcd-ingest-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
gen=bench/gen_aggregate.py

echo "ingest_bench: generating data sets in $dir" >&2
python3 "$gen" --reports 1000 --records 50 --format gz --out "$dir/gz" 2>/dev/null
python3 "$gen" --reports 1000 --records 50 --format xml --out "$dir/xml" 2>/dev/null
python3 "$gen" --reports 1000 --records 50 --format eml --out "$dir/eml" 2>/dev/null
python3 "$gen" --reports 1 --records 150000 --format xml --style gmailish --out - \
  >"$dir/big.xml" 2>/dev/null
gzip -6 -c "$dir/big.xml" >"$dir/big.xml.gz"
mkdir -p "$dir/small" "$dir/first"
cp "$(ls "$dir"/gz/*.xml.gz | sed -n 1p)" "$dir/small/"
cp "$(ls "$dir"/gz/*.xml.gz | sed -n 2p)" "$dir/first/"
"$dmarcd" ingest --db "$dir/template.db" "$dir/first" >/dev/null

# One timed command: wall seconds (bash's clock, microseconds) and peak RSS
# in KiB (GNU time), printed as "SECONDS KIB".
timed() {
  local start end
  start=$EPOCHREALTIME
  /usr/bin/time -f "%M" -o "$dir/rss" "$@" >"$dir/out" 2>"$dir/err" || {
    local rc=$?
    # 1: something was rejected, which the data sets never are.
    echo "ingest_bench: '$*' failed ($rc):" >&2
    cat "$dir/err" "$dir/out" >&2
    exit 1
  }
  end=$EPOCHREALTIME
  echo "$(python3 -c "print(f'{$end - $start:.4f}')") $(tail -n 1 "$dir/rss")"
}

ingest() {
  rm -f "$dir"/bench.db*
  timed "$dmarcd" ingest --db "$dir/bench.db" "$@"
}

# Sums each data set's records and XML bytes once: the rates divide these.
xml_bytes_of() { cat "$@" | wc -c; }
gz_xml_bytes=$(xml_bytes_of "$dir"/xml/*.xml)
big_xml_bytes=$(xml_bytes_of "$dir/big.xml")

declare -A samples
for ((run = 1; run <= runs; ++run)); do
  echo "ingest_bench: run $run of $runs" >&2
  samples[gz]+="$(ingest "$dir/gz");"
  samples[xmllint_gz]+="$(timed xmllint --stream --noout "$dir"/xml/*.xml);"
  samples[eml]+="$(ingest "$dir/eml");"
  samples[big]+="$(ingest "$dir/big.xml.gz");"
  samples[xmllint_big]+="$(timed xmllint --stream --noout "$dir/big.xml");"
  samples[small_new]+="$(ingest "$dir/small");"
  rm -f "$dir"/bench.db*
  cp "$dir/template.db" "$dir/bench.db"
  samples[small]+="$(timed "$dmarcd" ingest --db "$dir/bench.db" "$dir/small");"
done

if ((huge)); then
  # About 1 GB of XML as one report: the 150,000-record report's records
  # repeated, streamed through gzip so that the XML never sits on disk or in
  # memory whole. The default inflate cap (1 GiB) is raised for it.
  echo "ingest_bench: generating the 1 GB report" >&2
  head_end=$(grep -n -m 1 '<record>' "$dir/big.xml" | cut -d: -f1)
  tail_start=$(grep -n '</feedback>' "$dir/big.xml" | tail -n 1 | cut -d: -f1)
  {
    head -n $((head_end - 1)) "$dir/big.xml"
    for _ in $(seq 12); do sed -n "${head_end},$((tail_start - 1))p" "$dir/big.xml"; done
    tail -n +"$tail_start" "$dir/big.xml"
  } | tee >(wc -c >"$dir/huge.bytes") | gzip -6 >"$dir/huge.xml.gz"
  huge_records=$((150000 * 12))
  for ((run = 1; run <= runs; ++run)); do
    samples[huge]+="$(DMARCD_LIMITS_MAX_INFLATED_BYTES=4294967296 ingest "$dir/huge.xml.gz");"
  done
fi

# Median, min and max of each set, then the rates and the ratio to xmllint.
python3 - "$runs" "$gz_xml_bytes" "$big_xml_bytes" "${huge_records:-0}" \
  "$(cat "$dir/huge.bytes" 2>/dev/null || echo 0)" <<PY
import statistics, sys
runs, gz_bytes, big_bytes, huge_records, huge_bytes = map(int, sys.argv[1:])
raw = {
    "gz": "${samples[gz]}", "xmllint_gz": "${samples[xmllint_gz]}",
    "eml": "${samples[eml]}", "big": "${samples[big]}",
    "xmllint_big": "${samples[xmllint_big]}", "small": "${samples[small]}",
    "small_new": "${samples[small_new]}",
    "huge": "${samples[huge]:-}",
}
def parse(text):
    pairs = [s.split() for s in text.split(";") if s.strip()]
    return [float(p[0]) for p in pairs], [int(p[1]) for p in pairs]
def line(name, key, records=0, xml_bytes=0):
    secs, rss = parse(raw[key])
    if not secs:
        return None
    med = statistics.median(secs)
    text = (f"{name:<34} median {med:8.3f} s  min {min(secs):8.3f}  max {max(secs):8.3f}"
            f"  peak RSS {max(rss) / 1024:7.1f} MiB")
    if records:
        text += f"  {records / med:10,.0f} records/s"
    if xml_bytes:
        text += f"  {xml_bytes / med / 1e6:7.1f} MB/s"
    print(text)
    return med
print(f"runs: {runs}")
gz = line("ingest 1000 x 50 .xml.gz", "gz", 50000, gz_bytes)
lint_gz = line("xmllint --stream, same XML", "xmllint_gz", 50000, gz_bytes)
eml = line("ingest 1000 x 50 .eml (gzip)", "eml", 50000, gz_bytes)
big = line("ingest 150,000 records .xml.gz", "big", 150000, big_bytes)
lint_big = line("xmllint --stream, same XML", "xmllint_big", 150000, big_bytes)
line("ingest one small file", "small")
line("ingest one small file, new db", "small_new")
line("ingest ~1 GB report .xml.gz", "huge", huge_records, huge_bytes)
print(f"ratio to xmllint: .xml.gz {gz / lint_gz:.2f}x  .eml {eml / lint_gz:.2f}x  "
      f"150k report {big / lint_big:.2f}x")
PY
