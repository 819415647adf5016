#!/usr/bin/env bash
# The latency of a user's next list right after their event, and right after a periodic retrain:
# N MovieLens-100k users in turn send GET /v1/recommend, POST /v1/events (one event), wait 5 ms,
# GET /v1/recommend again, against `lepton-recommend serve --retrain-every 3` (ALS, 64 factors,
# 15 iterations, CG, trained on ua_train); then, once the retrain that those events trigger has
# swapped the model in (and 1 s more), each user's GET once more. The server's own latency of
# each GET is read from its access log. Prints p50/p90 of the first GETs, p50/p90/p99 of the
# GETs after the event and of those after the retrain, for this build and, with BASELINE=another
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
  "$2" serve --model "$tmp/m.lpm" --port 18995 --db "$tmp/$1.db" --retrain-every 3 >"$tmp/$1.log" 2>&1 &
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
def generation():
    c.request("GET", "/v1/monitor"); r = c.getresponse(); return json.loads(r.read())["model_version"]
g0, t0 = generation(), time.time()
while generation() == g0 and time.time() - t0 < 60: time.sleep(0.2)
time.sleep(1)
for u in range(1, int(sys.argv[2]) + 1):
    call("GET", "/v1/recommend?user=%d&k=10" % u)
PY
  kill -TERM $pid; wait $pid || true
  python3 - "$tmp/$1.log" "$1" <<'PY'
import json, sys
L = [json.loads(l)["latency_us"] for l in open(sys.argv[1]) if '"access"' in l and "/v1/recommend" in l]
n = len(L) // 3
first = sorted(L[0:2 * n:2]); after = sorted(L[1:2 * n:2]); retr = sorted(L[2 * n:])
q = lambda a, p: a[min(len(a) - 1, int(p * len(a)))]
print("%s: first GET p50 %d p90 %d us | after the event p50 %d p90 %d p99 %d us | after the "
      "retrain p50 %d p90 %d p99 %d us (%d users)" % (sys.argv[2], q(first, .5), q(first, .9),
      q(after, .5), q(after, .9), q(after, .99), q(retr, .5), q(retr, .9), q(retr, .99), n))
PY
}
[ -n "${BASELINE:-}" ] && run baseline "$BASELINE"
run recommend "$build/bin/lepton-recommend"
