#!/usr/bin/env bash
# `lepton-fraud serve` under load: POST /v1/score with wrk on loopback, 32 connections, against the
# bare libmicrohttpd + cJSON ceiling server (bench/serve_ceiling.c, sent the 2-byte body "{}"), in
# one run. Every request is a new transaction (a unique id per wrk thread and request, a customer
# and a terminal drawn at random from the ids of the training data, an amount of 1-300, no time:
# the service stamps it), so each one goes through the whole path: JSON, velocity features and
# their state update, the model, TreeSHAP reasons, rules, and the decision-log INSERT committed
# before the answer. Reports requests/s, p50/p99, non-2xx count, requests and the server's CPU
# time per request, then the throughput ratio to the ceiling.
# usage: bench/fraud_wrk.sh [BUILD_DIR]   env: MODEL (an existing lepton-fraud model; default:
#   train one on fraud-sim-handbook train.csv.gz when ../shared/data has it, else on
#   data/fraud/transactions.csv), DURATION (10), THREADS (server pool, nproc), PERF (a file:
#   `perf record -g` the fraud server during its load into it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
duration=${DURATION:-10}
threads=${THREADS:-$(nproc)}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 77; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
fraud=$build/bin/lepton-fraud
sim=${LEPTON_SHARED_DATA:-$root/../shared/data}/fraud-sim-handbook/train.csv.gz
if [ -n "${MODEL:-}" ]; then
  model=$MODEL
else
  model=$tmp/fraud.lpm
  if [ -f "$sim" ]; then data=$sim; drop=tx_fraud_scenario,tx_time_seconds,tx_time_days
  else data=$root/data/fraud/transactions.csv; drop=tx_fraud_scenario; fi
  echo "# training on $data" >&2
  OMP_WAIT_POLICY=passive LEPTON_PROGRESS=0 "$fraud" train --data "$data" --label tx_fraud \
    --time-col tx_datetime --entity-cols customer_id,terminal_id --amount-col tx_amount \
    --id-col transaction_id --drop-cols "$drop" --threads "$threads" --out "$model" >/dev/null
fi
cat >"$tmp/score.lua" <<'LUA'
-- tid: a global that setup() sets in each thread's own Lua state (0, 1, ...)
local counter = 0
local threads = {}
setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
init = function(args)
  math.randomseed(17 + tid)
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"transaction_id":"w%d-%d","customer_id":"%d","terminal_id":"%d","tx_amount":%.2f}',
    tid, counter, math.random(0, 4999), math.random(0, 9999), 1 + math.random() * 299)
  return wrk.format("POST", "/v1/score", {["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.1f %.1f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.requests))
end
LUA
sed -n '/^done = /,$p' "$tmp/score.lua" >"$tmp/post.lua"
cat >>"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/json"
wrk.body = "{}"
LUA
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg) before"
echo "# model: $model"
echo "# wrk -t2 -c32 -d${duration}s, server pool $threads threads; columns: req/s p50_us p99_us non2xx requests server_cpu_us_per_request"
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
run() {
  local name=$1 port=$2 script=$3; shift 3
  LEPTON_LOG=warn "$@" >/dev/null 2>"$tmp/$name.err" &
  local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  if [ "$name" = fraud ]; then
    curl -s -H 'Content-Type: application/json' -d '{"transaction_id":"probe-1","customer_id":"1","terminal_id":"2","tx_amount":12.5}' \
      "http://127.0.0.1:$port/v1/score" >"$tmp/sample"
  fi
  local t0; t0=$(cpu_ticks $pid) perf_pid=
  if [ -n "${PERF:-}" ] && [ "$name" = fraud ]; then
    perf record -g -o "$PERF" -p $pid -- sleep "$duration" >/dev/null 2>&1 & perf_pid=$!
  fi
  local r; r=$(wrk -t2 -c32 -d"${duration}s" -s "$tmp/$script" "http://127.0.0.1:$port" | grep '^RESULT')
  local t1; t1=$(cpu_ticks $pid)
  [ -z "$perf_pid" ] || wait $perf_pid || true
  kill -TERM $pid; wait $pid || true
  awk -v r="$r" -v n="$name" -v dt="$((t1 - t0))" -v tck="$tck" 'BEGIN { split(r, a, " ");
    printf "%s %s %s %s %s %s %.1f\n", n, a[2], a[3], a[4], a[5], a[6], dt / tck * 1e6 / a[6] }' >"$tmp/$name"
  cat "$tmp/$name"
}
run ceiling 18761 post.lua "$build/bench/serve_ceiling" 18761 "$threads"
run fraud 18762 score.lua "$fraud" serve --model "$model" --port 18762 --db "$tmp/fraud.db" --threads "$threads"
echo "# one answer: $(head -c 400 "$tmp/sample")"
echo "# decisions logged: $(sqlite3 "$tmp/fraud.db" 'SELECT COUNT(*) FROM decisions' 2>/dev/null || echo '?')"
paste -d' ' "$tmp/ceiling" "$tmp/fraud" | awk '{
  printf "fraud/ceiling throughput ratio: %.3f (goal >= 0.5)   p99 %.2f ms (goal < 2 ms)   server CPU per request %.1f us (ceiling %.1f)\n",
    $9 / $2, $11 / 1000, $14, $7 }'
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg) after"
