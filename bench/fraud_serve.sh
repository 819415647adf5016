#!/usr/bin/env bash
# `lepton-fraud serve` as a payment gateway calls it: POST /v1/score one transaction at a time in
# time order on one keep-alive connection (bench/fraud_serve_latency.py), fresh decision log.
# The first WARM test transactions warm the velocity state and are not counted; the next SCORE
# are. Prints, per server, the distribution of the response's own `latency_us` (features + model
# + TreeSHAP + rules, timed inside the handler), the client's round trip, and the server's CPU
# time per request (the whole handler: JSON, decision-log insert, HTTP).
# usage: bench/fraud_serve.sh BUILD_DIR MODEL.lpm   env: WARM (20000), SCORE (20000),
#   BASELINE (another lepton-fraud binary, run the same way first, for before/after in one run),
#   PERF (a path: record the measured server with perf into it; PERF_OPTS, default -g)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: bench/fraud_serve.sh BUILD_DIR MODEL.lpm}
model=${2:?usage: bench/fraud_serve.sh BUILD_DIR MODEL.lpm}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}/fraud-sim-handbook/test.csv.gz
[ -f "$data" ] || { echo "skip: $data not found" >&2; exit 77; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
tck=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg) before"
echo "# $data: warm ${WARM:-20000}, score ${SCORE:-20000} transactions, one connection"
run() {
  local name=$1 bin=$2 port=$3
  LEPTON_LOG=warn "$bin" serve --model "$model" --port "$port" --db "$tmp/$name.db" --threads 2 \
    >/dev/null 2>"$tmp/$name.err" &
  local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  /usr/bin/python3 "$root/bench/fraud_serve_latency.py" "$port" "$data" --score 0 \
    --warm "${WARM:-20000}" >/dev/null
  local t0; t0=$(cpu_ticks $pid)
  local perf_pid=
  if [ -n "${PERF:-}" ] && [ "$name" = this ]; then
    perf record -F 1999 ${PERF_OPTS:--g} -p $pid -o "$PERF" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  local r; r=$(/usr/bin/python3 "$root/bench/fraud_serve_latency.py" "$port" "$data" \
    --skip "${WARM:-20000}" --score "${SCORE:-20000}")
  local t1; t1=$(cpu_ticks $pid)
  if [ -n "$perf_pid" ]; then kill -INT $perf_pid; wait $perf_pid || true; fi
  kill -TERM $pid; wait $pid || true
  echo "$name: $r server_cpu_us_per_request: $(awk -v dt=$((t1 - t0)) -v tck=$tck -v n=${SCORE:-20000} 'BEGIN { printf "%.1f", dt / tck * 1e6 / n }')"
}
[ -n "${BASELINE:-}" ] && run baseline "$BASELINE" 18771
run this "$build/bin/lepton-fraud" 18772
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg) after"
