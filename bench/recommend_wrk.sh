#!/usr/bin/env bash
# `lepton-recommend serve` under load: GET /v1/recommend?user=U&k=10 with wrk on loopback,
# 32 connections, against the bare libmicrohttpd + cJSON ceiling server (bench/serve_ceiling.c,
# which parses a body and answers a fixed reply; it is sent the 2-byte body "{}", since a GET
# without a body gets its 400), in one run. The model: ALS (64 factors, 15 iterations, CG) trained
# on movielens-100k ua_train when ../shared/data has it, else on data/shop/train.csv. Before the
# load, NEW_USERS users that the model has never seen and FOLD_USERS known users get 3 new events
# each through POST /v1/events, so their lists go through fold-in; every request picks a user at
# random from the trained users, the known users with new events and the new users. While the
# GETs run, a second wrk (1 connection) posts EVENTS_PER_S single events for random users and
# items, each of which invalidates that user's prepared state in the service, so fold-ins keep
# happening under the load (the GET latencies are wrk's main run alone; the server CPU per GET
# includes the events' share). The service runs twice: as shipped, and with its prepared-user
# cache off (`--user-cache-mb 0`: every request reads the stored events and builds the user's
# system, as the service did before the cache). Reports requests/s, p50/p99, non-2xx count,
# requests and the server's CPU time per request, then the throughput ratio to the ceiling.
# usage: bench/recommend_wrk.sh [BUILD_DIR]   env: DURATION (10), THREADS (server pool, nproc),
#   FOLD_USERS (100), NEW_USERS (50), EVENTS_PER_S (50; 0 = none), PERF (a file: `perf record
#   -g` the recommend server during its load into it), BASELINE (another lepton-recommend
#   binary, e.g. an earlier commit's, run the same way right after the ceiling, for before /
#   after numbers from one run), SKIP_NOCACHE=1 (leave out the `--user-cache-mb 0` run), WARMUP
#   (seconds of unmeasured load first, events included; wrk_common.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
. "$root/bench/wrk_common.sh"
fold_users=${FOLD_USERS:-100}
new_users=${NEW_USERS:-50}
events_per_s=${EVENTS_PER_S:-50}
ml=${LEPTON_SHARED_DATA:-$root/../shared/data}/movielens-100k
rec=$build/bin/lepton-recommend
if [ -f "$ml/ua_train.csv" ]; then
  data=$ml/ua_train.csv; cols=(--user-col user_id --item-col item_id --weight-col rating)
else
  data=$root/data/shop/train.csv; cols=(--user-col user_id --item-col item_id --type-col type)
fi
OMP_WAIT_POLICY=passive LEPTON_PROGRESS=0 "$rec" train --data "$data" "${cols[@]}" --model als \
  --factors 64 --iterations 15 --solver cg --threads "$threads" --seed 1 \
  --out "$tmp/m.lpm" >/dev/null
# the trained users and items, in file order (column 1 and 2, header skipped)
tail -n +2 "$data" | cut -d, -f1 | awk '!s[$0]++' >"$tmp/users"
tail -n +2 "$data" | cut -d, -f2 | awk '!s[$0]++' >"$tmp/items"
mapfile -t items <"$tmp/items"
head -n "$fold_users" "$tmp/users" >"$tmp/fold"
for i in $(seq "$new_users"); do echo "bench-new-$i"; done >"$tmp/new"
# one JSON batch of 3 events per fold-in user
{
  printf '{"events":['
  sep=
  while read -r u; do
    for j in 0 1 2; do
      it=${items[$(( (${#u} * 7 + j * 31 + RANDOM) % ${#items[@]} ))]}
      printf '%s{"user":"%s","item":"%s","weight":4}' "$sep" "$u" "$it"; sep=,
    done
  done < <(cat "$tmp/fold" "$tmp/new")
  printf ']}'
} >"$tmp/events.json"
users_lua=$(wrk_lua_list "$tmp/users" "$tmp/new")
{ cat <<LUA
local users = {$users_lua}
math.randomseed(7)
request = function()
  return wrk.format("GET", "/v1/recommend?user=" .. users[math.random(#users)] .. "&k=10")
end
LUA
  wrk_done_lua; } >"$tmp/get.lua"
items_lua=$(wrk_lua_list "$tmp/items")
{ cat <<LUA
local users = {$users_lua}
local items = {$items_lua}
math.randomseed(11)
wrk.method = "POST"
wrk.path = "/v1/events"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format(nil, nil, nil, string.format('{"user":"%s","item":"%s","weight":1}',
    users[math.random(#users)], items[math.random(#items)]))
end
delay = function() return $(( events_per_s > 0 ? 1000 / events_per_s : 0 )) end
LUA
  wrk_done_lua; } >"$tmp/events.lua"
wrk_ceiling_lua
wrk_header
echo "# data: $data ($(wc -l <"$tmp/users") users), $(wc -l <"$tmp/fold") known + $(wc -l <"$tmp/new") new users with 3 new events each"
echo "# wrk -t$wrk_t -c32 -d${duration}s, server pool $threads threads, $events_per_s events/s beside the load; columns: req/s p50_us p99_us non2xx requests server_cpu_us_per_request"
# recommend only: post the events (fold-in users), keep a new user's list as a sample, and start
# the events' wrk beside the load
wrk_before_load() {
  case $1 in recommend*) ;; *) return 0 ;; esac
  curl -sf -o /dev/null -H 'Content-Type: application/json' --data-binary @"$tmp/events.json" \
    "http://127.0.0.1:$2/v1/events" || { echo "POST /v1/events failed" >&2; cat "$tmp/$1.err" >&2; exit 1; }
  curl -s "http://127.0.0.1:$2/v1/recommend?user=bench-new-1&k=3" >"$tmp/sample"
  if [ "$events_per_s" -gt 0 ]; then
    ("${wrk_pin_wrk[@]}" wrk -t1 -c1 -d"$((duration + ${WARMUP:-0}))s" -s "$tmp/events.lua" "http://127.0.0.1:$2" | grep '^RESULT' \
      >"$tmp/$1.events") &
  fi
}
events_line() {
  [ "$events_per_s" -gt 0 ] || return 0
  wait
  awk -v n="$1" '{ printf "# %s: %d events posted beside the load (%.1f/s), %d non-2xx\n", n, $6, $2, $5 }' "$tmp/$1.events"
}
WRK_PERF_NAME=recommend
wrk_run ceiling 18751 post.lua "$build/bench/serve_ceiling" 18751 "$threads"
if [ -n "${BASELINE:-}" ]; then
  wrk_run recommend-baseline 18754 get.lua "$BASELINE" serve --model "$tmp/m.lpm" --port 18754 --db "$tmp/rec0.db" --threads "$threads"
  events_line recommend-baseline
fi
wrk_run recommend 18752 get.lua "$rec" serve --model "$tmp/m.lpm" --port 18752 --db "$tmp/rec.db" --threads "$threads"
events_line recommend
echo "# a new user's list after 3 events: $(head -c 300 "$tmp/sample")"
if [ -z "${SKIP_NOCACHE:-}" ]; then
  wrk_run recommend-nocache 18753 get.lua "$rec" serve --model "$tmp/m.lpm" --port 18753 --db "$tmp/rec2.db" --threads "$threads" --user-cache-mb 0
  events_line recommend-nocache
fi
[ -n "${BASELINE:-}" ] && wrk_ratio recommend-baseline
wrk_ratio recommend
[ -z "${SKIP_NOCACHE:-}" ] && wrk_ratio recommend-nocache
exit 0
