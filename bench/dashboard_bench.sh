#!/usr/bin/env bash
# Dashboard benchmark (issue #5): builds a database of about 10 million
# aggregate records, serves it with `dmarcd serve` on loopback and times the
# dashboard's calls against the targets:
#
#   summary of one domain for one year              < 50 ms
#   daily trend of one domain for one year          < 50 ms
#   top 100 failing sources of one domain, a month  < 200 ms
#   wrk on the summary endpoint                     >= 5,000 requests/s
#
#   bench/dashboard_bench.sh [--dmarcd PATH] [--reports N] [--records N]
#                            [--copies N] [--dir DIR] [--runs N]
#
#   --dmarcd PATH  the binary (default build/release/dmarcd; a Release build)
#   --reports N    reports to generate (default 296: eight reporters a day,
#                  so 37 days from 2024-01-01)
#   --records N    records per report (default 3500)
#   --copies N     how many times the base appears in the database (default
#                  10: 296 x 3500 x 10 = 10.36M records over 370 days)
#   --dir DIR      keep the reports and the database in DIR and reuse them
#                  on the next run (default: a temporary folder, removed)
#   --runs N       timed calls per query after one warm-up (default 20)
#
# How the database is built: bench/gen_aggregate.py (deterministic for its
# seed, 60 % of the reports for example.com) writes the base reports as gzip
# files, and `dmarcd ingest` stores them through the writer, roll-ups
# included; its rate is printed. Then a bulk loader in SQL copies the base's
# reports, records, DKIM and SPF results and day shares --copies - 1 more
# times, each copy shifted by the base's span in whole days (so the copies
# follow one another) and with its own report ids; and `dmarcd migrate`
# builds every roll-up from the records with the writer's own code (the
# rebuild migration 0004 runs), so the roll-ups are exactly what ingesting
# the copies would have written. Ingesting all 10M records through
# `dmarcd ingest` works too (--reports 2900 --copies 1) but takes far longer
# on a shared two-core machine. Run it under `nice -n 19` there.
#
# Each query is timed with curl (time_total: connect, request, answer) and
# reported as median and max. Needs python3, curl, wrk (Debian: wrk) and
# sqlite3 (Debian: sqlite3).
set -euo pipefail
cd "$(dirname "$0")/.."

dmarcd=build/release/dmarcd
reports=296
records=3500
copies=10
dir=""
runs=20
while (($#)); do
  case "$1" in
    --dmarcd) dmarcd=$2; shift 2 ;;
    --reports) reports=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --copies) copies=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *)
      echo "usage: $0 [--dmarcd PATH] [--reports N] [--records N] [--copies N] [--dir DIR]" \
        "[--runs N]" >&2
      exit 2
      ;;
  esac
done
[[ -x "$dmarcd" ]] || { echo "dashboard_bench: $dmarcd not built (Release)" >&2; exit 2; }
for tool in python3 curl wrk sqlite3; do
  command -v "$tool" >/dev/null || { echo "dashboard_bench: install $tool" >&2; exit 2; }
done
dmarcd=$(realpath "$dmarcd")

server=""
cleanup() {
  if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [[ -n "${temporary:-}" ]]; then rm -rf "$temporary"; fi
}
trap cleanup EXIT
if [[ -z "$dir" ]]; then
  temporary=$(mktemp -d -t dmarcd-dashboard-bench.XXXXXX)
  dir=$temporary
fi
mkdir -p "$dir"
db="$dir/dmarcd.db"

# 1. Reports.
if [[ ! -f "$dir/reports.done" ]]; then
  rm -rf "$dir/reports"
  start=$(date +%s.%N)
  python3 bench/gen_aggregate.py --reports "$reports" --records "$records" --format gz \
    --seed dashboard --out "$dir/reports"
  touch "$dir/reports.done"
  printf 'generate: %d reports x %d records in %.1f s\n' "$reports" "$records" \
    "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
fi

# 2. The base, through the same writer (and roll-ups) as every channel.
if [[ ! -f "$dir/ingest.done" ]]; then
  rm -f "$db" "$db-wal" "$db-shm" "$dir/copies.done"
  start=$(date +%s.%N)
  "$dmarcd" ingest --db "$db" "$dir/reports" | tail -n 1
  seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  touch "$dir/ingest.done"
  printf 'ingest: %.1f s, %.0f records/s\n' "$seconds" \
    "$(awk -v n="$((reports * records))" -v s="$seconds" 'BEGIN { print n / s }')"
fi

# 3. The copies, then every roll-up rebuilt by `dmarcd migrate`.
if [[ ! -f "$dir/copies.done" ]] && ((copies > 1)); then
  start=$(date +%s.%N)
  {
    echo "CREATE TEMP TABLE base AS SELECT MAX(id) AS last_report,"
    echo "  (SELECT MAX(id) FROM records) AS last_record,"
    echo "  (MAX(date_end) / 86400 - MIN(date_begin) / 86400 + 1) * 86400 AS shift FROM reports;"
    for ((k = 1; k < copies; ++k)); do
      cat <<SQL
BEGIN;
INSERT INTO reports (id, reporter_key, org_name, org_email, extra_contact_info, report_id, domain,
  date_begin, date_end, version, namespace, generator, policy_adkim, policy_aspf, policy_p,
  policy_sp, policy_np, policy_pct, policy_fo, policy_testing, policy_discovery_method, records,
  messages, raw_input_id, document_name, received_at, origin)
SELECT id + $k * b.last_report, reporter_key, org_name, org_email, extra_contact_info,
  report_id || '.copy$k', domain, date_begin + $k * b.shift, date_end + $k * b.shift, version,
  namespace, generator, policy_adkim, policy_aspf, policy_p, policy_sp, policy_np, policy_pct,
  policy_fo, policy_testing, policy_discovery_method, records, messages, NULL, document_name,
  received_at, 'bench:copy$k'
FROM reports, base b WHERE id <= b.last_report;
INSERT INTO records SELECT id + $k * b.last_record, report_id + $k * b.last_report, seq, source_ip, count,
  disposition, policy_dkim, policy_spf, header_from, envelope_from, envelope_to
FROM records, base b WHERE id <= b.last_record;
INSERT INTO record_reasons SELECT record_id + $k * b.last_record, seq, type, comment
FROM record_reasons, base b WHERE record_id <= b.last_record;
INSERT INTO dkim_results SELECT record_id + $k * b.last_record, seq, domain, selector, result,
  human_result FROM dkim_results, base b WHERE record_id <= b.last_record;
INSERT INTO spf_results SELECT record_id + $k * b.last_record, seq, domain, scope, result, human_result
FROM spf_results, base b WHERE record_id <= b.last_record;
INSERT INTO report_days SELECT report_id + $k * b.last_report, day + $k * b.shift, domain, messages,
  dmarc_pass, dkim_aligned_pass, spf_aligned_pass, disposition_none, disposition_quarantine,
  disposition_reject FROM report_days, base b WHERE report_id <= b.last_report;
COMMIT;
SQL
    done
    # Back to schema 3 without roll-ups: `dmarcd migrate` then runs 0004
    # and 0005, and 0005 builds the roll-ups of every copy.
    echo "DROP TABLE domain_days; DROP TABLE source_days; DROP TABLE source_reports;"
    echo "DROP TABLE reporter_days; PRAGMA user_version = 3;"
  } | sqlite3 -bail "$db"
  copied=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  start=$(date +%s.%N)
  "$dmarcd" migrate --db "$db"
  touch "$dir/copies.done"
  printf 'copies: %.1f s of SQL, roll-ups rebuilt by dmarcd migrate in %.1f s\n' "$copied" \
    "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"
fi
echo "database: $(sqlite3 "$db" 'SELECT COUNT(*) FROM records') records," \
  "$(sqlite3 "$db" 'SELECT COUNT(*) FROM reports') reports, $(du -h "$db" | cut -f1)"
echo "example.com in 2024: $(sqlite3 "$db" "SELECT SUM(records) FROM reports WHERE domain = 'example.com' AND date_begin >= 1704067200 AND date_begin < 1735689600") records," \
  "$(sqlite3 "$db" "SELECT COUNT(*) FROM source_days WHERE domain = 'example.com' AND day >= 1717200000 AND day < 1719792000") source-days in June"

# A database kept in --dir by an older dmarcd is migrated first, and timed,
# so that serve starts at once.
start=$(date +%s.%N)
"$dmarcd" migrate --db "$db" >/dev/null
printf 'schema: up to date after %.1f s of dmarcd migrate\n' \
  "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')"

# 4. The server (a port file left by an interrupted run is not its own).
rm -f "$dir/port"
"$dmarcd" serve --db "$db" --listen 127.0.0.1:0 --port-file "$dir/port" 2>"$dir/serve.log" &
server=$!
for _ in $(seq 200); do [[ -s "$dir/port" ]] && break; sleep 0.1; done
[[ -s "$dir/port" ]] || { cat "$dir/serve.log" >&2; exit 1; }
base="http://127.0.0.1:$(cat "$dir/port")"
rm -f "$dir/port"

# Median and max of `runs` calls after one warm-up, in ms; fails the run
# on anything but 200.
time_query() {
  local name=$1 target_ms=$2 path=$3
  local status
  status=$(curl -s -o "$dir/answer" -w '%{http_code}' "$base$path")
  [[ "$status" == 200 ]] || { echo "$name: HTTP $status: $(head -c 300 "$dir/answer")" >&2; exit 1; }
  for _ in $(seq "$runs"); do
    curl -s -o /dev/null -w '%{time_total}\n' "$base$path"
  done | sort -n | awk -v name="$name" -v target="$target_ms" -v bytes="$(wc -c <"$dir/answer")" '
    { t[NR] = $1 * 1000 }
    END {
      median = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
      verdict = (target == 0) ? "no target" \
              : sprintf("target < %d ms: %s", target, (median < target) ? "met" : "MISSED")
      printf "%-34s median %7.2f ms  max %7.2f ms  (%d bytes)  %s\n",
             name, median, t[NR], bytes, verdict
    }'
}

year="domain=example.com&from=2024-01-01&to=2025-01-01"
time_query "summary, one year" 50 "/api/v1/summary?$year"
time_query "daily trend, one year" 50 "/api/v1/timeseries?$year&bucket=day"
time_query "top 100 failing sources, June" 200 \
  "/api/v1/sources?domain=example.com&from=2024-06-01&to=2024-07-01&result=fail&sort=failing&limit=100"
time_query "top 100 failing sources, one year" 0 \
  "/api/v1/sources?$year&result=fail&sort=failing&limit=100"
time_query "reporters, one year" 0 "/api/v1/reporters?$year"

echo "wrk -t2 -c32 -d10s on the summary (one domain, one year):"
wrk -t2 -c32 -d10s "$base/api/v1/summary?$year" | tee "$dir/wrk.txt"
awk '/Requests\/sec/ { printf "summary throughput: %.0f requests/s, target >= 5000: %s\n", $2, ($2 >= 5000) ? "met" : "MISSED" }' "$dir/wrk.txt"
