#!/usr/bin/env bash
# test_explain.sh - `lepton explain` end to end on the project's customer table for a gbdt, a
# logistic and an nn model: the JSON keys of every row, completeness (base_value + the sum of
# contributions = raw_score: 1e-6 for TreeSHAP, the linear method and KernelSHAP, which are exact
# up to double rounding of float parameters; 0.05 for integrated gradients with 64 trapezoid
# steps on a ReLU net, whose path integral is only approximated), the predicted class named for
# multiclass, --global with its SVG chart and permutation importance; `lepton eval --attack`;
# `lepton train --adversarial`; `lepton serve` with POST /v1/predict?explain=true; and the bad
# inputs: an unknown method, a method that does not apply to the family, rows missing a column,
# an attack on a tree model - each one line on stderr and a non-zero exit, never a crash.
# No jq: the JSON (one array, one row object per element, as cJSON prints it unformatted) is
# checked with sed and awk.
set -u
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}/lepton"
data="${LEPTON_SOURCE_DIR:?}/data/customers.csv"
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fails=0
check() { # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
one_line() { test "$(printf '%s' "$1" | wc -l)" -eq 0 && test -n "$1"; }
crashed() { test "$1" -ge 128; }

head -1201 "$data" >"$dir/train.csv"
{ head -1; tail -n 20; } <"$data" >"$dir/rows.csv"
{ head -1 "$data"; tail -n +2001 "$data"; } >"$dir/test.csv"

"$bin" train --data "$dir/train.csv" --label churned --model gbdt --drop customer_id \
  --param n_rounds=30 --out "$dir/gbdt.lpm" >/dev/null || { echo "FAIL train gbdt"; exit 1; }
"$bin" train --data "$dir/train.csv" --label churned --model logistic --drop customer_id \
  --out "$dir/logistic.lpm" >/dev/null || { echo "FAIL train logistic"; exit 1; }
"$bin" train --data "$dir/train.csv" --label churned --model nn --drop customer_id \
  --param epochs=15 --param hidden=16 --out "$dir/nn.lpm" >/dev/null || { echo "FAIL train nn"; exit 1; }
"$bin" train --data "$dir/train.csv" --label plan --model gbdt --drop customer_id,churned \
  --param n_rounds=10 --out "$dir/multi.lpm" >/dev/null || { echo "FAIL train multi"; exit 1; }

# one row object per line
rows_of() { sed -e 's/^\[//' -e 's/\]$//' -e 's/},{"method"/}\n{"method"/g' "$1"; }
# the largest |base_value + sum(contributions) - raw_score| over the rows of a JSON array
max_gap() {
  rows_of "$1" | awk '{
    b = $0; sub(/.*"base_value":/, "", b); sub(/,.*/, "", b)
    r = $0; sub(/.*"raw_score":/, "", r); sub(/,.*/, "", r)
    c = $0; sub(/.*"contributions":\{/, "", c); sub(/\}.*/, "", c)
    n = split(c, kv, ",")
    s = 0
    for (i = 1; i <= n; i++) { m = split(kv[i], p, ":"); s += p[m] }
    g = b + s - r; if (g < 0) g = -g
    if (g > mx) mx = g
  } END { printf "%.3g\n", mx + 0 }'
}
lt() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a < b)}'; }

for spec in "gbdt auto treeshap 1e-6" "logistic auto linear 1e-6" "nn auto ig 0.05" \
            "logistic kernelshap kernelshap 1e-6" "gbdt kernelshap kernelshap 1e-6"; do
  set -- $spec
  out="$dir/$1.$2.json"
  "$bin" explain --model "$dir/$1.lpm" --data "$dir/rows.csv" --method "$2" --json \
    --background 10 >"$out" 2>"$dir/err"; rc=$?
  check "$1 $2: exit 0" test "$rc" -eq 0
  check "$1 $2: 20 rows" test "$(rows_of "$out" | wc -l)" -eq 20
  for key in '"method":"'"$3"'"' '"class":"1"' '"base_value":' '"raw_score":' \
             '"contributions":{"signup_date":' '"feedback":' '"row":19'; do
    check "$1 $2: has $key" grep -qF "$key" "$out"
  done
  gap=$(max_gap "$out")
  check "$1 $2: base + sum = raw within $4 (max gap $gap)" lt "$gap" "$4"
done
# a raw column the model never sees (dropped at training) is not a feature; one it has gets a value
check "dropped column is not a feature" bash -c "! grep -q customer_id '$dir/gbdt.auto.json'"

# multiclass: the predicted class is named and explained
"$bin" explain --model "$dir/multi.lpm" --data "$dir/rows.csv" --json >"$dir/multi.json"; rc=$?
check "multiclass: exit 0" test "$rc" -eq 0
"$bin" predict --model "$dir/multi.lpm" --data "$dir/rows.csv" -o "$dir/multi_pred.csv" >/dev/null
check "multiclass: each row explains its predicted class" test \
  "$(rows_of "$dir/multi.json" | sed -E 's/.*"class":"([a-z]+)".*/\1/' | paste -sd,)" = \
  "$(tail -n +2 "$dir/multi_pred.csv" | cut -d, -f1 | paste -sd,)"
gap=$(max_gap "$dir/multi.json")
check "multiclass: completeness (gap $gap)" lt "$gap" 1e-6

# text output and --top
out=$("$bin" explain --model "$dir/gbdt.lpm" --data "$dir/rows.csv" --top 3)
check "text: row header" grep -q "^row 0  class 1  base" <<<"$out"
check "text: 3 contributions per row" test "$(grep -c '^  ' <<<"$out")" -eq 60

# --global: mean |SHAP| and permutation importance, SVG
"$bin" explain --model "$dir/gbdt.lpm" --data "$dir/test.csv" --global --svg "$dir/g.svg" \
  --top 5 >"$dir/g.txt"; rc=$?
check "global: exit 0" test "$rc" -eq 0
check "global: 5 features" test "$(grep -c '^  ' "$dir/g.txt")" -eq 5
check "global: svg has 5 bars" test "$(grep -c '<rect class="bar"' "$dir/g.svg")" -eq 5
check "global: svg is an svg" grep -q '^<svg xmlns="http://www.w3.org/2000/svg"' "$dir/g.svg"
out=$("$bin" explain --model "$dir/gbdt.lpm" --data "$dir/test.csv" --global \
  --importance permutation --repeats 2 --json)
check "permutation: json" grep -q '^{"method":"permutation","metric":"accuracy","importance":{' <<<"$out"

# ---- bad input
out=$("$bin" explain --model "$dir/gbdt.lpm" --data "$dir/rows.csv" --method shapley 2>&1); rc=$?
check "unknown method: exit 2, one line" bash -c "test $rc -eq 2"
check "unknown method: names the choices" grep -q "'shapley': expected auto, linear, treeshap" <<<"$out"
one_line "$out" || { echo "FAIL unknown method: not one line"; fails=$((fails + 1)); }
out=$("$bin" explain --model "$dir/nn.lpm" --data "$dir/rows.csv" --method treeshap 2>&1); rc=$?
check "treeshap on nn: non-zero exit" bash -c "test $rc -ne 0 && test $rc -lt 128"
check "treeshap on nn: says why" grep -q "method treeshap needs a gbdt model, this one is nn" <<<"$out"
one_line "$out" || { echo "FAIL treeshap on nn: not one line"; fails=$((fails + 1)); }
out=$("$bin" explain --model "$dir/gbdt.lpm" --data "$dir/rows.csv" --method ig 2>&1); rc=$?
check "ig on gbdt: refused" bash -c "test $rc -ne 0 && test $rc -lt 128"
cut -d, -f1-5 "$dir/rows.csv" >"$dir/short.csv"
out=$("$bin" explain --model "$dir/gbdt.lpm" --data "$dir/short.csv" 2>&1); rc=$?
check "missing column: non-zero exit" bash -c "test $rc -ne 0 && test $rc -lt 128"
check "missing column: named" grep -q "monthly_spend" <<<"$out"
one_line "$out" || { echo "FAIL missing column: not one line"; fails=$((fails + 1)); }

# ---- robustness
out=$("$bin" eval --model "$dir/nn.lpm" --data "$dir/test.csv" --attack fgsm --eps 0.2 --json); rc=$?
check "attack: exit 0" test "$rc" -eq 0
clean=$(sed -E 's/.*"clean_accuracy":([0-9.e-]+).*/\1/' <<<"$out")
adv=$(sed -E 's/.*"adversarial_accuracy":([0-9.e-]+).*/\1/' <<<"$out")
check "attack: adversarial accuracy $adv < clean $clean" lt "$adv" "$clean"
out=$("$bin" eval --model "$dir/gbdt.lpm" --data "$dir/test.csv" --attack fgsm 2>&1); rc=$?
check "attack on gbdt: refused with a reason" grep -q "needs a differentiable model (nn)" <<<"$out"
check "attack on gbdt: non-zero exit" bash -c "test $rc -ne 0 && test $rc -lt 128"
out=$("$bin" eval --model "$dir/nn.lpm" --data "$dir/test.csv" --attack bim 2>&1); rc=$?
check "unknown attack: refused" grep -q "expected fgsm or pgd" <<<"$out"
out=$("$bin" train --data "$dir/train.csv" --label churned --model gbdt --adversarial 0.1 \
  --out "$dir/x.lpm" 2>&1); rc=$?
check "--adversarial on gbdt: refused" grep -q "needs --model nn" <<<"$out"
"$bin" train --data "$dir/train.csv" --label churned --model nn --drop customer_id \
  --param epochs=3 --param hidden=16 --adversarial 0.1 --adversarial-method pgd --pgd-steps 3 \
  --out "$dir/adv.lpm" >/dev/null 2>&1; rc=$?
check "--adversarial pgd on nn: trains" test "$rc" -eq 0

# ---- serve: POST /v1/predict?explain=true
if command -v curl >/dev/null; then
  "$bin" serve --model "$dir/gbdt.lpm" --port 0 >"$dir/serve.out" 2>"$dir/serve.err" &
  pid=$!
  for _ in $(seq 300); do grep -q "on http" "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -E 's/.*:([0-9]+)$/\1/' "$dir/serve.out")
  url="http://127.0.0.1:$port"
  body='{"rows":[{"signup_date":"2022-10-16","age":67,"country":"BE","plan":"basic","monthly_spend":10.74,"income":null,"support_tickets":0,"last_login_days":11,"newsletter":"yes","currency":"EUR","feedback":"support answered quickly"}]}'
  c=$(curl -s -o "$dir/body" -w '%{http_code}' -X POST "$url/v1/predict?explain=true" --data-binary "$body")
  check "serve explain: 200" test "$c" = 200
  check "serve explain: explanation keys" \
    grep -q '"explanation":{"method":"treeshap","class":"1","base_value":[-0-9.e]*,"raw_score":[-0-9.e]*,"contributions":{' "$dir/body"
  ncontrib=$(sed -E 's/.*"contributions":\{([^}]*)\}.*/\1/' "$dir/body" | awk -F, '{print NF}')
  check "serve explain: top 5 contributions" test "$ncontrib" -eq 5
  c=$(curl -s -o "$dir/body" -w '%{http_code}' -X POST "$url/v1/predict" --data-binary "$body")
  check "serve without explain: no explanation" bash -c "test $c = 200 && ! grep -q explanation '$dir/body'"
  c=$(curl -s -o "$dir/body" -w '%{http_code}' -X POST "$url/v1/predict?explain=maybe" --data-binary "$body")
  check "serve explain=maybe: 400" test "$c" = 400
  kill "$pid"; wait "$pid" 2>/dev/null; pid=""
else
  echo "skip serve checks: curl not installed"
fi

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all explain CLI checks passed"
