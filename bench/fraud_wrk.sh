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
#   `perf record -g` the fraud server during its load into it), BASELINE (another lepton-fraud
#   binary, e.g. an older build: loaded too in the same run, on its own fresh database, as
#   "baseline"), FRAUD_THREADS (the fraud servers' pool, default THREADS: a request waits for
#   its group commit without using the CPU, so a larger pool keeps the cores busy)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
. "$root/bench/wrk_common.sh"
fthreads=${FRAUD_THREADS:-$threads}
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
{ cat <<'LUA'
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
LUA
  wrk_done_lua; } >"$tmp/score.lua"
wrk_ceiling_lua
wrk_header
echo "# model: $model"
echo "# wrk -t$wrk_t -c32 -d${duration}s, server pool $threads threads (fraud: $fthreads); columns: req/s p50_us p99_us non2xx requests server_cpu_us_per_request"
# fraud only: one transaction scored before the load, kept as a sample answer
wrk_before_load() {
  [ "$1" = fraud ] || [ "$1" = baseline ] || return 0
  curl -s -H 'Content-Type: application/json' \
    -d '{"transaction_id":"probe-1","customer_id":"1","terminal_id":"2","tx_amount":12.5}' \
    "http://127.0.0.1:$2/v1/score" >"$tmp/sample.$1"
}
WRK_PERF_NAME=fraud
wrk_run ceiling 18761 post.lua "$build/bench/serve_ceiling" 18761 "$threads"
if [ -n "${BASELINE:-}" ]; then
  wrk_run baseline 18763 score.lua "$BASELINE" serve --model "$model" --port 18763 --db "$tmp/baseline.db" --threads "$fthreads"
fi
wrk_run fraud 18762 score.lua "$fraud" serve --model "$model" --port 18762 --db "$tmp/fraud.db" --threads "$fthreads"
echo "# one answer: $(head -c 400 "$tmp/sample.fraud")"
echo "# decisions logged: $(sqlite3 "$tmp/fraud.db" 'SELECT COUNT(*) FROM decisions' 2>/dev/null || echo '?') (goal: every scored request)"
if [ -n "${BASELINE:-}" ]; then
  echo "# baseline decisions logged: $(sqlite3 "$tmp/baseline.db" 'SELECT COUNT(*) FROM decisions' 2>/dev/null || echo '?')"
  wrk_ratio baseline
fi
wrk_ratio fraud
