# wrk_common.sh - the harness that the wrk benches (recommend_wrk.sh, fraud_wrk.sh, cs_wrk.sh,
# serve_model.sh) share, sourced right after they set root and build: a service and the
# bare-server ceiling (bench/serve_ceiling.c) loaded in turn by wrk on loopback, 32 connections,
# with the server's CPU time per request from /proc.
# Sourcing it sets duration (DURATION, 10 s), threads (the server pool: THREADS, else the CPU
# count), wrk_t (wrk's threads: 2), tmp (a scratch folder, removed at exit with every background
# job) and exits 77 without wrk. PIN=1 runs the servers on CPU 1 and wrk on CPU 0 (taskset) with
# one thread each (THREADS then defaults to 1, wrk -t1), so that no thread waits for another's
# time slice: the p99 is then the server's own queueing, not the scheduler's.
# The sourcing script may define wrk_before_load NAME PORT (run once the server answers
# /healthz, before the load), and sets PERF (a file) to `perf record -g` the server named by
# WRK_PERF_NAME; PERF_CG replaces `-g` (e.g. PERF_CG="--call-graph dwarf,16384", which also walks
# libc and libmicrohttpd, built without frame pointers). WARMUP=S runs the same load for S seconds
# before the measured DURATION (not counted in the numbers or the CPU time): the steady state of
# a server whose caches (recommend's prepared users) a cold start would otherwise fill inside the
# measured window.
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 77; }
duration=${DURATION:-10}
wrk_pin_srv=() wrk_pin_wrk=()
if [ "${PIN:-0}" = 1 ]; then
  command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] || { echo "PIN=1 needs taskset and 2 CPUs" >&2; exit 77; }
  wrk_pin_srv=(taskset -c 1) wrk_pin_wrk=(taskset -c 0)
  threads=${THREADS:-1} wrk_t=1
else
  threads=${THREADS:-$(nproc)} wrk_t=2
fi
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

# The Lua `done` hook every script ends with: one RESULT line (req/s p50_us p99_us non2xx requests).
wrk_done_lua() {
  cat <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.1f %.1f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.requests))
end
LUA
}

# The lines of the files (or of stdin) as the items of a Lua list of strings: "a","b",...
# (lines holding a quote or a backslash must be left out by the caller).
wrk_lua_list() {
  awk '{ printf "%s\"%s\"", (NR > 1 ? "," : ""), $0 }' "$@"
}

# The ceiling's script into $tmp/post.lua: POST the 2-byte body "{}" (it answers a GET without a
# body with 400).
wrk_ceiling_lua() {
  { wrk_done_lua; cat <<'LUA'
wrk.method = "POST"
wrk.path = "/"
wrk.headers["Content-Type"] = "application/json"
wrk.body = "{}"
LUA
  } >"$tmp/post.lua"
}

wrk_header() {
  echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg) before${wrk_pin_srv:+; servers pinned to CPU 1, wrk to CPU 0}"
}

wrk_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# wrk_run NAME PORT SCRIPT COMMAND...: start a server, wait for it, wrk_before_load, load it with
# wrk -s $tmp/SCRIPT, stop it; writes and prints "NAME req/s p50 p99 non2xx requests cpu_us".
wrk_run() {
  local name=$1 port=$2 script=$3; shift 3
  LEPTON_LOG=warn "${wrk_pin_srv[@]}" "$@" >/dev/null 2>"$tmp/$name.err" &
  local pid=$! perf_pid= tck; tck=$(getconf CLK_TCK)
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  if declare -F wrk_before_load >/dev/null; then wrk_before_load "$name" "$port"; fi
  if [ "${WARMUP:-0}" != 0 ]; then # not measured: the server's caches filled first
    "${wrk_pin_wrk[@]}" wrk -t"$wrk_t" -c32 -d"${WARMUP}s" -s "$tmp/$script" "http://127.0.0.1:$port" >/dev/null
  fi
  local t0; t0=$(wrk_cpu_ticks $pid)
  if [ -n "${PERF:-}" ] && [ "$name" = "${WRK_PERF_NAME:-}" ]; then
    perf record ${PERF_CG:--g} -o "$PERF" -p $pid -- sleep "$duration" >/dev/null 2>&1 & perf_pid=$!
  fi
  local r; r=$("${wrk_pin_wrk[@]}" wrk -t"$wrk_t" -c32 -d"${duration}s" -s "$tmp/$script" "http://127.0.0.1:$port" | grep '^RESULT')
  local t1; t1=$(wrk_cpu_ticks $pid)
  [ -z "$perf_pid" ] || wait $perf_pid || true
  kill -TERM $pid; wait $pid || true
  awk -v r="$r" -v n="$name" -v dt="$((t1 - t0))" -v tck="$tck" 'BEGIN { split(r, a, " ");
    printf "%s %s %s %s %s %s %.1f\n", n, a[2], a[3], a[4], a[5], a[6], dt / tck * 1e6 / a[6] }' >"$tmp/$name"
  cat "$tmp/$name"
}

# wrk_ratio NAME: the service's line against the ceiling's.
wrk_ratio() {
  paste -d' ' "$tmp/ceiling" "$tmp/$1" | awk -v n="$1" '{
    printf "%s/ceiling throughput ratio: %.3f   p99 %.2f ms (goal < 2 ms)   server CPU per request %.1f us (ceiling %.1f)\n",
      n, $9 / $2, $11 / 1000, $14, $7 }'
  echo "# load average $(cut -d' ' -f1-3 /proc/loadavg) after"
}
