#!/usr/bin/env bash
# test_serve_adapters.sh - `lepton serve --adapter NAME=FILE.lpa` over real loopback HTTP: two
# LoRA adapters on an nn base, picked per request ("adapter"), the base with "adapter": null,
# GET /v1/adapters, the default swapped by POST /v1/adapters/default (auth-protected) and
# applied to requests without "adapter", kept across a reload; an unknown adapter is a 400
# naming it; an adapter for another model or a malformed --adapter stops the start with one
# line naming it.
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

head -2001 "$data" >"$dir/base.csv"
{ head -1 "$data"; tail -n +2002 "$data"; } >"$dir/new.csv"
for s in 1 2; do
  "$bin" train --data "$dir/base.csv" --label churned --model nn --drop customer_id \
    --param hidden=16 --param epochs=10 --seed $s --out "$dir/nn$s.lpm" >/dev/null 2>&1
done
"$bin" finetune --base "$dir/nn1.lpm" --data "$dir/new.csv" --drop customer_id --method lora \
  --rank 2 --epochs 5 --out "$dir/a.lpa" >/dev/null
"$bin" finetune --base "$dir/nn1.lpm" --data "$dir/new.csv" --drop customer_id --method lora \
  --rank 2 --targets 0 --epochs 20 --lr 0.05 --seed 7 --out "$dir/b.lpa" >/dev/null
"$bin" finetune --base "$dir/nn2.lpm" --data "$dir/new.csv" --drop customer_id --method lora \
  --rank 2 --epochs 5 --out "$dir/other.lpa" >/dev/null
check "models and adapters made" test -s "$dir/a.lpa" -a -s "$dir/b.lpa" -a -s "$dir/other.lpa"
echo "k3y-for-tests" >"$dir/keys"

"$bin" serve --model "$dir/nn1.lpm" --port 0 --api-key-file "$dir/keys" \
  --adapter "a=$dir/a.lpa" --adapter "b=$dir/b.lpa" >"$dir/serve.out" 2>"$dir/serve.err" &
pid=$!
for _ in $(seq 300); do grep -q "on http" "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -E 's/.*:([0-9]+)$/\1/' "$dir/serve.out")
url="http://127.0.0.1:$port"
check "serve started" test -n "$port"
code() { curl -s -o "$dir/body" -w '%{http_code}' "$@"; }
auth=(-H "Authorization: Bearer k3y-for-tests")
"$bin" ingest "$dir/new.csv" --db "$dir/rows.db" --table c >/dev/null
json_row=$("$bin" query --db "$dir/rows.db" --json --sql "SELECT * FROM c LIMIT 1" |
  sed -E 's/^\{(.*)\}$/\1/')
body() { printf '{"rows":[{%s}]%s}' "$json_row" "$1"; }
probs() { sed -E 's/.*"probabilities":(\{[^}]*\}).*/\1/' "$dir/body"; }

check "adapters listed" test "$(code "$url/v1/adapters")" = 200
check "both adapters with no default" \
  grep -q '"default":null,"adapters":\[{"name":"a","rank":2,.*{"name":"b","rank":2' "$dir/body"

check "base predict" test "$(code -X POST "$url/v1/predict" --data "$(body '')")" = 200
check "base reply has no adapter" test -z "$(grep -o '"adapter"' "$dir/body")"
p_base=$(probs)
# a finite input whose scaled value no float holds: a 400 naming the column, not a 200 whose
# probabilities came out of infinities
huge_row=$(printf '%s' "$json_row" | sed -E 's/"age":[^,]*/"age":1e45/')
check "out-of-range input 400" \
  test "$(code -X POST "$url/v1/predict" --data "{\"rows\":[{$huge_row}]}")" = 400
check "the 400 names the column" grep -q "column 'age'.*beyond what a float holds" "$dir/body"
check "adapter a" test "$(code -X POST "$url/v1/predict" --data "$(body ',"adapter":"a"')")" = 200
check "adapter a named in the reply" grep -q '"adapter":"a"' "$dir/body"
p_a=$(probs)
check "adapter b" test "$(code -X POST "$url/v1/predict" --data "$(body ',"adapter":"b"')")" = 200
p_b=$(probs)
check "adapters change the probabilities" test "$p_a" != "$p_base" -a "$p_b" != "$p_base" \
  -a "$p_a" != "$p_b"
check "explain with an adapter refused" \
  test "$(code -X POST "$url/v1/predict?explain=true" --data "$(body ',"adapter":"a"')")" = 422
check "the refusal says why" grep -q "explanations cover the base model" "$dir/body"
check "unknown adapter 400" \
  test "$(code -X POST "$url/v1/predict" --data "$(body ',"adapter":"zz"')")" = 400
check "unknown adapter named" grep -q "'zz' is not a loaded adapter" "$dir/body"

check "default needs the key" \
  test "$(code -X POST "$url/v1/adapters/default" --data '{"name":"b"}')" = 401
check "default set to b" test "$(code -X POST "${auth[@]}" "$url/v1/adapters/default" \
  --data '{"name":"b"}')" = 200
check "default reply" grep -q '"default":"b"' "$dir/body"
code -X POST "$url/v1/predict" --data "$(body '')" >/dev/null
check "no adapter field: the default b" grep -q '"adapter":"b"' "$dir/body"
check "default b predicts as b" test "$(probs)" = "$p_b"
code -X POST "$url/v1/predict" --data "$(body ',"adapter":null')" >/dev/null
check "adapter null: the base" test "$(probs)" = "$p_base"
check "unknown default 400" test "$(code -X POST "${auth[@]}" "$url/v1/adapters/default" \
  --data '{"name":"nope"}')" = 400
check "reload" test "$(code -X POST "${auth[@]}" "$url/v1/admin/reload")" = 200
code -X POST "$url/v1/predict" --data "$(body '')" >/dev/null
check "after reload: still the default b, same output" test "$(probs)" = "$p_b"
check "default back to the base" test "$(code -X POST "${auth[@]}" \
  "$url/v1/adapters/default" --data '{"name":null}')" = 200
code -X POST "$url/v1/predict" --data "$(body '')" >/dev/null
check "base again" test "$(probs)" = "$p_base"
kill "$pid"; wait "$pid" 2>/dev/null; pid=""

out=$("$bin" serve --model "$dir/nn1.lpm" --port 0 --adapter "x=$dir/other.lpa" 2>&1); rc=$?
check "adapter for another model refused" test "$rc" -ne 0
check "its error names the adapter and the hashes" grep -q "adapter 'x'.*sha256" <<<"$out"
out=$("$bin" serve --model "$dir/nn1.lpm" --port 0 --adapter "no-equals" 2>&1); rc=$?
check "malformed --adapter refused" test "$rc" -ne 0
check "its error names it" grep -q "'no-equals'.*NAME=FILE" <<<"$out"

[ "$fails" -eq 0 ] || { echo "serve stderr:"; tail -5 "$dir/serve.err"; echo "last body:"; cat "$dir/body"; }
exit $((fails > 0))
