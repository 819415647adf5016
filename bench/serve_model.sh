#!/usr/bin/env bash
# `lepton serve` under load: single-row POST /v1/predict on a 100-tree gbdt with the prediction
# log on, against the bare libmicrohttpd + cJSON ceiling server (bench/serve_ceiling.c, parses
# the same body and returns a fixed reply), wrk on loopback, 32 connections, in one run. Reports
# requests/s, p50/p99 and the prediction log's written/dropped counts.
# usage: bench/serve_model.sh [BUILD_DIR]     env: DURATION (10), THREADS (server pool, nproc)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
duration=${DURATION:-10}
threads=${THREADS:-$(nproc)}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}/breast-cancer-wisconsin
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 77; }
[ -f "$data/train.csv" ] || { echo "skip: $data not found" >&2; exit 77; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
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
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# wrk -t2 -c32 -d${duration}s, server pool $threads threads; columns: req/s p50_us p99_us non2xx requests"
LEPTON_LOG=warn "$build/bench/serve_ceiling" 18741 "$threads" 2>/dev/null &
cpid=$!
sleep 0.5
wrk -t2 -c32 -d"${duration}s" -s "$tmp/post.lua" http://127.0.0.1:18741 | grep '^RESULT' | sed 's/^RESULT/ceiling/' >"$tmp/c"
kill -TERM $cpid; wait $cpid || true
LEPTON_LOG=warn "$lepton" serve --model "$tmp/m.lpm" --port 18742 --db "$tmp/mon.db" --threads "$threads" >/dev/null 2>"$tmp/serve.err" &
spid=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18742/healthz && break; sleep 0.1; done
wrk -t2 -c32 -d"${duration}s" -s "$tmp/post.lua" http://127.0.0.1:18742 | grep '^RESULT' | sed 's/^RESULT/lepton-serve/' >"$tmp/l"
mon=$(curl -s http://127.0.0.1:18742/v1/monitor)
kill -TERM $spid; wait $spid || true
cat "$tmp/c" "$tmp/l"
echo "prediction log: $(grep -o '"predictions_logged":[0-9]*' <<<"$mon"), $(grep -o '"predictions_dropped":[0-9]*' <<<"$mon")"
awk -v c="$(cat "$tmp/c")" -v l="$(cat "$tmp/l")" 'BEGIN { split(c, a, " "); split(l, b, " ");
  printf "lepton-serve/ceiling throughput ratio: %.3f   p99 %.2f ms\n", b[2] / a[2], b[4] / 1000 }'
