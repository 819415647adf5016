#!/usr/bin/env bash
# test_serve_fast.sh - `lepton serve` predicts through the prepared predictor (rows parsed from
# JSON straight into flat arrays, no frames); `lepton predict` goes through frames. On the same
# 300 customers (dates, integers, yes/no, categories, free text, missing cells), sent one row per
# request and as one batch, the served class probabilities equal the frame path's up to the
# reply's number printing (cJSON writes 15 significant digits when they read back within one
# DBL_EPSILON, so the tolerance is 4e-16 relative). Also: the prediction log's inputs hash does
# not depend on key order or ignored fields.
set -u
bin="${LEPTON_BIN:?}/lepton"
data="${LEPTON_SOURCE_DIR:?}/data/customers.csv"
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fails=0
check() { local name=$1; shift; if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi; }

head -2001 "$data" >"$dir/train.csv"
{ head -1 "$data"; sed -n '2002,2301p' "$data"; } >"$dir/test.csv"
"$bin" train --data "$dir/train.csv" --label churned --drop customer_id --param n_rounds=40 \
  --out "$dir/m.lpm" >/dev/null || { echo "FAIL train"; exit 1; }
"$bin" predict --model "$dir/m.lpm" --data "$dir/test.csv" -o "$dir/p.csv" >/dev/null ||
  { echo "FAIL predict"; exit 1; }
"$bin" ingest "$dir/test.csv" --db "$dir/rows.db" --table t >/dev/null
"$bin" query --db "$dir/rows.db" --json --sql "SELECT * FROM t" >"$dir/rows.jsonl"
check "300 rows" test "$(wc -l <"$dir/rows.jsonl")" -eq 300

"$bin" serve --model "$dir/m.lpm" --port 0 --db "$dir/mon.db" >"$dir/serve.out" 2>"$dir/serve.err" &
pid=$!
for _ in $(seq 300); do grep -q "on http" "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -E 's/.*:([0-9]+)$/\1/' "$dir/serve.out")
url="http://127.0.0.1:$port"

# P(churned = 1) from the frame path, one per line
col=$(head -1 "$dir/p.csv" | tr ',' '\n' | grep -n '^proba_1$' | cut -d: -f1)
tail -n +2 "$dir/p.csv" | cut -d, -f"$col" >"$dir/want"
# the served ones: one request per row, then all rows in one request
: >"$dir/single"
while read -r row; do
  curl -s -X POST "$url/v1/predict" --data-binary "{\"rows\":[$row]}" |
    grep -o '"1":[-0-9.e+]*' | cut -d: -f2 >>"$dir/single"
done <"$dir/rows.jsonl"
{ printf '{"rows":['; paste -sd, "$dir/rows.jsonl"; printf ']}'; } >"$dir/batch.json"
curl -s -X POST "$url/v1/predict" --data-binary @"$dir/batch.json" | grep -o '"1":[-0-9.e+]*' |
  cut -d: -f2 >"$dir/batch"
agree() { # FILE: every line within 4e-16 relative of want
  [ "$(wc -l <"$1")" -eq 300 ] &&
    paste -d' ' "$dir/want" "$1" | awk '{ d = $1 - $2; if (d < 0) d = -d; m = $1 < 0 ? -$1 : $1;
      if (d > 4e-16 * m + 1e-300) { print "row " NR ": " $1 " vs " $2; bad = 1 } } END { exit bad }'
}
check "one row per request equals lepton predict" agree "$dir/single"
check "one batch of 300 equals lepton predict" agree "$dir/batch"

# a request of 6,000 rows (66,000 cells: more than a thread keeps between requests), then one
# row again: still the same answer
{ printf '{"rows":['; for _ in $(seq 6000); do echo '{"age":41,"plan":"pro"}'; done | paste -sd, -; printf ']}'; } >"$dir/big.json"
check "6,000 rows in one request" test "$(curl -s -X POST "$url/v1/predict" --data-binary @"$dir/big.json" |
  grep -o '"1":[-0-9.e+]*' | wc -l)" -eq 6000
first=$(head -1 "$dir/rows.jsonl")
check "one row after the big request" test "$(curl -s -X POST "$url/v1/predict" --data-binary "{\"rows\":[$first]}" |
  grep -o '"1":[-0-9.e+]*' | cut -d: -f2)" = "$(head -1 "$dir/single")"

# inputs hash: same inputs, keys reordered and an ignored key added -> same hash
r1='{"rows":[{"age":41,"plan":"basic","monthly_spend":19.5,"support_tickets":3}]}'
r2='{"rows":[{"support_tickets":3,"zzz":1,"monthly_spend":19.5,"age":41.0,"plan":"basic"}]}'
r3='{"rows":[{"age":42,"plan":"basic","monthly_spend":19.5,"support_tickets":3}]}'
for r in "$r1" "$r2" "$r3"; do
  curl -s -X POST "$url/v1/predict" --data-binary "$r" | grep -o '"id":"p-[^"]*"' | cut -d'"' -f4
done >"$dir/ids"
kill -TERM "$pid"; wait "$pid"; pid=""
hashes=()
while read -r id; do
  hashes+=("$("$bin" query --db "$dir/mon.db" --sql "SELECT inputs_hash FROM predictions WHERE id = '$id'" | tail -1)")
done <"$dir/ids"
check "inputs hash is 128-bit hex" grep -Eq '^[0-9a-f]{32}$' <<<"${hashes[0]}"
check "same inputs, same hash" test "${hashes[0]}" = "${hashes[1]}"
check "other inputs, other hash" test "${hashes[0]}" != "${hashes[2]}"

echo "$fails failed"
test "$fails" -eq 0
