#!/usr/bin/env bash
# `lepton serve` under load: single-row POST /v1/predict on a 100-tree gbdt with the prediction
# log on, against the bare libmicrohttpd + cJSON ceiling server (bench/serve_ceiling.c, parses
# the same body and returns a fixed reply), wrk on loopback, 32 connections, in one run. Reports
# requests/s, p50/p99, the server's CPU time per request and the prediction log's
# written/dropped counts.
# usage: bench/serve_model.sh [BUILD_DIR]     env: DURATION (10), THREADS (server pool, nproc),
#   ROUNDS (1; each round runs every server once, in the same order),
#   BASELINE (another `lepton` binary, e.g. an earlier commit's, run the same way between the
#   ceiling and this build's, for before/after numbers from one run),
#   PIN (1: the server on CPU 1 with one pool thread unless THREADS says otherwise, and wrk -t1
#   on CPU 0, with `taskset`, so that no thread waits for another's time slice: the p99 is then
#   the server's queueing, not the scheduler's; the throughput is one core's)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
. "$root/bench/wrk_common.sh"
data=${LEPTON_SHARED_DATA:-$root/../shared/data}/breast-cancer-wisconsin
[ -f "$data/train.csv" ] || { echo "skip: $data not found" >&2; exit 77; }
lepton=$build/bin/lepton
"$lepton" train --data "$data/train.csv" --label target --drop row --model gbdt \
  --param n_rounds=100 --param max_leaves=31 --out "$tmp/m.lpm" >/dev/null
# one row of the test file as the request body

"$lepton" ingest "$data/test.csv" --db "$tmp/rows.db" --table t >/dev/null
body=$("$lepton" query --db "$tmp/rows.db" --json --sql "SELECT * FROM t LIMIT 1")
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.path = "/v1/predict"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"rows":[$body]}'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.1f %.1f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.requests))
end
LUA
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg) before"
echo "# wrk -t$wrk_t -c32 -d${duration}s, server pool $threads threads${wrk_pin_srv:+, server pinned to CPU 1 and wrk to CPU 0}; columns: req/s p50_us p99_us non2xx requests server_cpu_us_per_request"
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# run NAME PORT COMMAND...: start a server, load it with wrk, append its RESULT line (plus the
# server's CPU time per request, which other processes on a busy machine disturb far less than
# the wall-clock rate) to $tmp/NAME; the /v1/monitor reply (lepton only) to $tmp/NAME.mon
run() {
  local name=$1 port=$2; shift 2
  LEPTON_LOG=warn "${wrk_pin_srv[@]}" "$@" >/dev/null 2>"$tmp/$name.err" &
  local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  local t0; t0=$(cpu_ticks $pid)
  local r; r=$("${wrk_pin_wrk[@]}" wrk -t"$wrk_t" -c32 -d"${duration}s" -s "$tmp/post.lua" "http://127.0.0.1:$port" | grep '^RESULT')
  local t1; t1=$(cpu_ticks $pid)
  curl -s "http://127.0.0.1:$port/v1/monitor" >"$tmp/$name.mon" || true
  kill -TERM $pid; wait $pid || true
  awk -v r="$r" -v n="$name" -v dt="$((t1 - t0))" -v tck="$tck" 'BEGIN { split(r, a, " ");
    printf "%s %s %s %s %s %s %.1f\n", n, a[2], a[3], a[4], a[5], a[6], dt / tck * 1e6 / a[6] }' >>"$tmp/$name"
}
for round in $(seq "${ROUNDS:-1}"); do
  run ceiling 18741 "$build/bench/serve_ceiling" 18741 "$threads"
  [ -n "${BASELINE:-}" ] && run baseline 18743 "$BASELINE" serve --model "$tmp/m.lpm" --port 18743 --db "$tmp/base.db" --threads "$threads"
  run lepton-serve 18742 "$lepton" serve --model "$tmp/m.lpm" --port 18742 --db "$tmp/mon.db" --threads "$threads"
done
cat "$tmp/ceiling" ${BASELINE:+"$tmp/baseline"} "$tmp/lepton-serve"
for name in ${BASELINE:+baseline} lepton-serve; do
  mon=$(cat "$tmp/$name.mon")
  echo "$name prediction log: $(grep -o '"predictions_logged":[0-9]*' <<<"$mon"), $(grep -o '"predictions_dropped":[0-9]*' <<<"$mon")"
  # per round, the ratio to the ceiling measured just before it
  paste -d' ' "$tmp/ceiling" "$tmp/$name" | awk -v n="$name" '{
    printf "%s/ceiling throughput ratio: %.3f   p99 %.2f ms   server CPU per request %.1f us (ceiling %.1f)\n",
      n, $9 / $2, $11 / 1000, $14, $7 }'
done
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg) after"
