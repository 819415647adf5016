#!/usr/bin/env bash
# The latency of a user's next list right after their event: N MovieLens-100k users in turn send
# GET /v1/recommend, POST /v1/events (one event), wait 5 ms, GET /v1/recommend again, against
# `lepton-recommend serve` (ALS, 64 factors, 15 iterations, CG, trained on ua_train); the server's
# own latency of each GET is read from its access log. Prints p50/p90 of the first GETs and
# p50/p90/p99 of the GETs after the event, for this build and, with BASELINE=another
# lepton-recommend binary, for that one too (same model, fresh database each).
# usage: bench/recommend_after_event.sh [BUILD_DIR]   env: USERS (400), BASELINE
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
ml=${LEPTON_SHARED_DATA:-$root/../shared/data}/movielens-100k
[ -f "$ml/ua_train.csv" ] || { echo "skip: $ml/ua_train.csv not found" >&2; exit 77; }
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
OMP_WAIT_POLICY=passive LEPTON_PROGRESS=0 "$build/bin/lepton-recommend" train --data "$ml/ua_train.csv" \
  --user-col user_id --item-col item_id --weight-col rating --model als --factors 64 \
  --iterations 15 --solver cg --threads 2 --seed 1 --out "$tmp/m.lpm" >/dev/null 2>&1
tail -n +2 "$ml/ua_train.csv" | cut -d, -f2 | sort -u >"$tmp/items"
run() { # NAME BINARY
  "$2" serve --model "$tmp/m.lpm" --port 18995 --db "$tmp/$1.db" >"$tmp/$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18995/healthz && break; sleep 0.1; done
  python3 - "$tmp/items" "${USERS:-400}" <<'PY'
import http.client, json, random, sys, time
items = [l.strip() for l in open(sys.argv[1])]
c = http.client.HTTPConnection("127.0.0.1", 18995)
def call(method, path, body=None):
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    if r.status // 100 != 2: sys.exit("%s %s: HTTP %d" % (method, path, r.status))
random.seed(3)
for u in range(1, int(sys.argv[2]) + 1):
    call("GET", "/v1/recommend?user=%d&k=10" % u)
    call("POST", "/v1/events", json.dumps({"user": str(u), "item": random.choice(items), "weight": 4}))
    time.sleep(0.005)
    call("GET", "/v1/recommend?user=%d&k=10" % u)
PY
  kill -TERM $pid; wait $pid || true
  python3 - "$tmp/$1.log" "$1" <<'PY'
import json, sys
L = [json.loads(l) for l in open(sys.argv[1]) if '"access"' in l and "/v1/recommend" in l]
first = sorted(l["latency_us"] for l in L[0::2]); after = sorted(l["latency_us"] for l in L[1::2])
q = lambda a, p: a[min(len(a) - 1, int(p * len(a)))]
print("%s: first GET p50 %d p90 %d us | GET after the event p50 %d p90 %d p99 %d us (%d users)"
      % (sys.argv[2], q(first, .5), q(first, .9), q(after, .5), q(after, .9), q(after, .99), len(after)))
PY
}
[ -n "${BASELINE:-}" ] && run baseline "$BASELINE"
run recommend "$build/bin/lepton-recommend"
