#!/usr/bin/env bash
# test_serve.sh - `lepton serve` over real loopback HTTP: every route, hostile requests (each a
# 4xx and the server still serving), drift (rows like the training data: no drift; one feature
# shifted: that feature and only that input flagged), hot reload, and durability: the server is
# killed with SIGKILL while taking feedback under load, restarted, and every feedback that got a
# 2xx is in the database.
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
"$bin" ingest "$data" --db "$dir/rows.db" --table c >/dev/null
"$bin" train --data "$dir/train.csv" --label churned --drop customer_id --param n_rounds=40 \
  --out "$dir/m.lpm" >/dev/null || { echo "FAIL train"; exit 1; }
echo "k3y-for-tests" >"$dir/keys"

start() {
  "$bin" serve --model "$dir/m.lpm" --port 0 --db "$dir/mon.db" --api-key-file "$dir/keys" \
    >"$dir/serve.out" 2>"$dir/serve.err" &
  pid=$!
  for _ in $(seq 300); do grep -q "on http" "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
  grep -q "on http" "$dir/serve.out" || { echo "server did not start:"; cat "$dir/serve.err"; }
  port=$(sed -E 's/.*:([0-9]+)$/\1/' "$dir/serve.out")
  url="http://127.0.0.1:$port"
}
code() { curl -s -o "$dir/body" -w '%{http_code}' "$@"; }
# rows R1..R2 (1-based, after the header) of the table as a {"rows":[...]} body; $3 = SQL select
rows() {
  local sel=${3:-*}
  printf '{"rows":['
  "$bin" query --db "$dir/rows.db" --json \
    --sql "SELECT $sel FROM c LIMIT $(($2 - $1 + 1)) OFFSET $(($1 - 1))" | paste -sd, -
  printf ']}'
}

start
check "serve prints its port" test -n "$port"
check "healthz" test "$(code "$url/healthz")" = 200
check "model" test "$(code "$url/v1/model")" = 200
check "model has input schema" grep -q '"input_schema"' "$dir/body"

rows 2001 2001 >"$dir/one.json"
check "predict one" test "$(code -X POST "$url/v1/predict" --data-binary @"$dir/one.json")" = 200
check "prediction has id and probabilities" grep -q '"id":"p-.*"probabilities":{"0":' "$dir/body"
check "ignored fields reported" grep -q '"ignored_fields":\["customer_id","churned"\]' "$dir/body"

# ---- drift: 600 rows like the training data -> no input flagged
for s in 2001 2201 2401; do
  rows $s $((s + 199)) >"$dir/b.json"
  curl -s -o /dev/null -X POST "$url/v1/predict" --data-binary @"$dir/b.json"
done
code "$url/v1/monitor" >/dev/null
check "monitor counts rows" grep -q '"feature":"age","n":601' "$dir/body"
check "no drift on training-like rows" test "$(grep -o '"drifted":true' "$dir/body" | wc -l)" -eq 0

# ---- reload (new sketch), then monthly_spend x4: only that input flagged
check "reload needs a key" test "$(code -X POST "$url/v1/admin/reload")" = 401
check "reload" test "$(code -X POST -H 'Authorization: Bearer k3y-for-tests' "$url/v1/admin/reload")" = 200
sel="signup_date, age, country, plan, monthly_spend * 4 AS monthly_spend, income, support_tickets, last_login_days, newsletter, currency, feedback"
for s in 2001 2201 2401; do
  rows $s $((s + 199)) "$sel" >"$dir/b.json"
  curl -s -o /dev/null -X POST "$url/v1/predict" --data-binary @"$dir/b.json"
done
code "$url/v1/monitor" >/dev/null
check "shifted feature flagged" grep -q '"feature":"monthly_spend","n":600,"psi":[0-9.]*,"ks":[0-9.]*,"drifted":true' "$dir/body"
flagged=$(grep -o '"feature":"[a-z_]*","n":[0-9]*,"psi":[0-9.e-]*,"ks":[0-9.e-]*,"drifted":true' "$dir/body" | grep -v '"feature":"_score"' | wc -l)
check "only the shifted input flagged" test "$flagged" -eq 1
out=$("$bin" monitor --db "$dir/mon.db" --model "$dir/m.lpm" --json --charts "$dir/charts"); rc=$?
check "lepton monitor exit 0" test "$rc" -eq 0
check "lepton monitor: shifted feature drifted" grep -q '"feature":"monthly_spend","n":600,[^}]*"drifted":true' <<<"$out"
check "lepton monitor: chart written" grep -q '<svg' "$dir/charts/monthly_spend.svg"
out=$("$bin" monitor --db "$dir/mon.db" --model "$dir/m.lpm"); rc=$?
check "lepton monitor table" grep -q 'monthly_spend .* DRIFT' <<<"$out"
out=$("$bin" monitor --db "$dir/absent.db" --model "$dir/m.lpm" --json 2>&1); rc=$?
check "lepton monitor on a missing database: exit 1 naming it (exit $rc)" \
  test "$rc" -eq 1 -a -n "$(grep 'absent.db: cannot open' <<<"$out")"

# ---- hostile requests: 4xx, and still serving
hostile() { # NAME WANT-CODE BODY-FILE
  local c; c=$(code -X POST "$url/v1/predict" --data-binary @"$3")
  check "$1 -> $2" test "$c" = "$2"
  check "$1: error shape" grep -q '{"error":{"code":"' "$dir/body"
  check "$1: still serving" test "$(code "$url/healthz")" = 200
}
printf '{"rows":[{"age":' >"$dir/h1"; hostile "truncated JSON" 400 "$dir/h1"
printf '{"rows":"x"}' >"$dir/h2"; hostile "rows not an array" 400 "$dir/h2"
printf '{"rows":[{"age":{"a":1}}]}' >"$dir/h3"; hostile "object for a number" 400 "$dir/h3"
printf '{"rows":[{"age":"abc"}]}' >"$dir/h4"; hostile "text for a number" 400 "$dir/h4"
printf '{}' >"$dir/h5"; hostile "missing rows" 400 "$dir/h5"
printf '{"rows":[{}],"extra":1}' >"$dir/h6"; hostile "unknown field" 400 "$dir/h6"
printf '{"rows":[{"age":NaN}]}' >"$dir/h7"; hostile "NaN" 400 "$dir/h7"
printf '{"rows":[{"age":1e999}]}' >"$dir/h8"; hostile "huge number" 400 "$dir/h8"
printf '{"rows":[{"country":"\xff\xfe"}]}' >"$dir/h9"; hostile "invalid UTF-8" 400 "$dir/h9"
printf '{"rows":[]}' >"$dir/h10"; hostile "no rows" 400 "$dir/h10"
head -c 10485760 /dev/zero | tr '\0' ' ' >"$dir/h11"; hostile "10 MB body" 413 "$dir/h11"
{ printf '{"rows":'; for _ in $(seq 10000); do printf '['; done; } >"$dir/h12"; hostile "10,000 levels" 400 "$dir/h12"
check "feedback unknown id -> 404" test "$(code -X POST "$url/v1/feedback" -d '{"id":"nope","label":1}')" = 404
check "feedback without label -> 400" test "$(code -X POST "$url/v1/feedback" -d '{"id":"x"}')" = 400
check "wrong method -> 405" test "$(code -X GET "$url/v1/predict")" = 405
check "metrics has the score histogram" grep -q lepton_prediction_score_count <<<"$(curl -s "$url/metrics")"

# ---- SIGKILL under feedback load: every acknowledged label survives
rows 2001 2200 >"$dir/b.json"
curl -s -X POST "$url/v1/predict" --data-binary @"$dir/b.json" | grep -o '"id":"p-[^"]*"' |
  sed 's/"id":"//; s/"//' >"$dir/ids"
: >"$dir/acked"
(
  while read -r id; do
    c=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url/v1/feedback" -d "{\"id\":\"$id\",\"label\":1}")
    [ "$c" = 200 ] && echo "$id" >>"$dir/acked"
  done <"$dir/ids"
) &
loader=$!
sleep 0.5
kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""
wait "$loader" 2>/dev/null
n_acked=$(wc -l <"$dir/acked")
check "some feedback acknowledged before the kill" test "$n_acked" -gt 0
start
check "restarted" test "$(code "$url/healthz")" = 200
"$bin" query --db "$dir/mon.db" --sql "SELECT id FROM feedback" | tail -n +2 | sort >"$dir/stored"
missing=$(sort "$dir/acked" | comm -23 - "$dir/stored" | wc -l)
check "every acknowledged feedback survived ($n_acked)" test "$missing" -eq 0
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
check "SIGTERM stops cleanly" test "$rc" -eq 0

echo "$fails failed"
test "$fails" -eq 0
