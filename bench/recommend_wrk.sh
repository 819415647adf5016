#!/usr/bin/env bash
# `lepton-recommend serve` under load: GET /v1/recommend?user=U&k=10 with wrk on loopback,
# 32 connections, against the bare libmicrohttpd + cJSON ceiling server (bench/serve_ceiling.c,
# which parses a body and answers a fixed reply; it is sent the 2-byte body "{}", since a GET
# without a body gets its 400), in one run. The model: ALS (64 factors, 15 iterations, CG) trained
# on movielens-100k ua_train when ../shared/data has it, else on data/shop/train.csv. Before the
# load, NEW_USERS users that the model has never seen and FOLD_USERS known users get 3 new events
# each through POST /v1/events, so their lists go through fold-in (one least-squares solve per
# request); every request picks a user at random from the trained users, the known users with new
# events and the new users. Reports requests/s, p50/p99, non-2xx count, requests and the server's
# CPU time per request, then the throughput ratio to the ceiling.
# usage: bench/recommend_wrk.sh [BUILD_DIR]   env: DURATION (10), THREADS (server pool, nproc),
#   FOLD_USERS (100), NEW_USERS (50), PERF (a file: `perf record -g` the recommend server
#   during its load into it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
duration=${DURATION:-10}
threads=${THREADS:-$(nproc)}
fold_users=${FOLD_USERS:-100}
new_users=${NEW_USERS:-50}
ml=${LEPTON_SHARED_DATA:-$root/../shared/data}/movielens-100k
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 77; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
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
users_lua=$(awk '{ printf "%s\"%s\"", (NR > 1 ? "," : ""), $0 }' "$tmp/users" "$tmp/new")
. "$root/bench/wrk_common.sh"
{ cat <<LUA
local users = {$users_lua}
math.randomseed(7)
request = function()
  return wrk.format("GET", "/v1/recommend?user=" .. users[math.random(#users)] .. "&k=10")
end
LUA
  wrk_done_lua; } >"$tmp/get.lua"
wrk_ceiling_lua
wrk_header
echo "# data: $data ($(wc -l <"$tmp/users") users), $(wc -l <"$tmp/fold") known + $(wc -l <"$tmp/new") new users with 3 new events each"
echo "# wrk -t2 -c32 -d${duration}s, server pool $threads threads; columns: req/s p50_us p99_us non2xx requests server_cpu_us_per_request"
# recommend only: post the events (fold-in users) and keep a new user's list as a sample
wrk_before_load() {
  [ "$1" = recommend ] || return 0
  curl -sf -o /dev/null -H 'Content-Type: application/json' --data-binary @"$tmp/events.json" \
    "http://127.0.0.1:$2/v1/events" || { echo "POST /v1/events failed" >&2; cat "$tmp/$1.err" >&2; exit 1; }
  curl -s "http://127.0.0.1:$2/v1/recommend?user=bench-new-1&k=3" >"$tmp/sample"
}
WRK_PERF_NAME=recommend
wrk_run ceiling 18751 post.lua "$build/bench/serve_ceiling" 18751 "$threads"
wrk_run recommend 18752 get.lua "$rec" serve --model "$tmp/m.lpm" --port 18752 --db "$tmp/rec.db" --threads "$threads"
echo "# a new user's list after 3 events: $(head -c 300 "$tmp/sample")"
wrk_ratio recommend
