#!/usr/bin/env bash
# Layer overhead of libcore's serve module: wrk against a bare libmicrohttpd + cJSON server
# (serve_ceiling) and the same parse + fixed reply through Lepton's route table (serve_echo),
# on loopback, 32 connections, a POST Lua script, DURATION seconds each, in one run.
# usage: bench/serve_bench.sh [BUILD_DIR]     env: DURATION (10), THREADS (server pool, nproc),
#                                                  WRK_THREADS (2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
duration=${DURATION:-10}
threads=${THREADS:-$(nproc)}
wrk_threads=${WRK_THREADS:-2}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 77; }
for b in serve_ceiling serve_echo; do
  [ -x "$build/bench/$b" ] || { echo "missing $build/bench/$b: build first" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
cat >"$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.path = "/v1/score"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"text":"my card was charged twice for the same order","k":5}'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.1f %.1f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.requests))
end
LUA
run() { # name binary port
  LEPTON_LOG=warn "$build/bench/$2" "$3" "$threads" 2>"$tmp/$1.log" &
  local pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$3/" 2>/dev/null && break; sleep 0.1; done
  wrk -t"$wrk_threads" -c32 -d"${duration}s" -s "$tmp/post.lua" "http://127.0.0.1:$3" >"$tmp/$1.out"
  kill -TERM "$pid"; wait "$pid" || true
  grep '^RESULT' "$tmp/$1.out" | sed "s/^RESULT/$1/"
}
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# wrk -t$wrk_threads -c32 -d${duration}s, server pool $threads threads; columns: req/s p50_us p99_us non2xx requests"
c=$(run ceiling serve_ceiling 18731)
l=$(run lepton serve_echo 18732)
echo "$c"
echo "$l"
awk -v c="$c" -v l="$l" 'BEGIN { split(c, a, " "); split(l, b, " ");
  printf "lepton/ceiling throughput ratio: %.3f   p50 ratio: %.2f   p99 ratio: %.2f\n",
         b[2] / a[2], b[3] / a[3], b[4] / a[4] }'
