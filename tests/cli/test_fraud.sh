#!/usr/bin/env bash
# test_fraud.sh - lepton-fraud end to end on the project's simulator data
# (data/fraud/transactions.csv, 50 days): train on the first 40 days, eval the last 10 in time
# order with the first 40 as history (the JSON keys and a quality floor a broken feature path
# would miss), backtest a rule file, retrain from a model's settings; usage errors exit 2,
# bad data and bad rules exit 1 with one line naming the problem.
set -u
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}/lepton-fraud"
data="${LEPTON_SOURCE_DIR:?}/data/fraud/transactions.csv"
[ -f "$data" ] || { echo "no $data"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
num() { # num KEY JSON -> the number after "KEY":
  printf '%s' "$2" | sed -n "s/.*\"$1\":\([-0-9.e]*\).*/\1/p"
}

awk -F, 'NR == 1 || $2 < "2025-02-10"' "$data" >"$dir/train.csv"
awk -F, 'NR == 1 || $2 >= "2025-02-10"' "$data" >"$dir/test.csv"
cols=(--label tx_fraud --time-col tx_datetime --entity-cols customer_id,terminal_id
      --amount-col tx_amount --id-col transaction_id --drop-cols tx_fraud_scenario --threads 2)
common=("${cols[@]}" --param n_rounds=80)

out=$("$bin" train --data "$dir/train.csv" "${common[@]}" --review-rate 2% \
      --out "$dir/m.lpm" 2>&1); rc=$?
check "train exit 0" test "$rc" -eq 0
check "train wrote the model" test -s "$dir/m.lpm"

out=$("$bin" eval --model "$dir/m.lpm" --data "$dir/test.csv" --history "$dir/train.csv" \
      --json 2>/dev/null); rc=$?
check "eval exit 0" test "$rc" -eq 0
for k in n auprc auroc recall_at_1pct_fpr precision_at_1pct_alerts approve review decline; do
  check "eval has $k" test -n "$(num "$k" "$out")"
done
n=$(num n "$out")
check "eval scored every test row" test "$n" -eq $(($(wc -l <"$dir/test.csv") - 1))
auroc=$(num auroc "$out"); auprc=$(num auprc "$out")
check "eval auroc > 0.8 ($auroc)" awk -v a="$auroc" 'BEGIN { exit !(a > 0.8) }'
check "eval auprc > 0.3 ($auprc)" awk -v a="$auprc" 'BEGIN { exit !(a > 0.3) }'

# the logistic alternative (standardized features, its own calibration)
"$bin" train --data "$dir/train.csv" "${cols[@]}" --model-kind logistic --out "$dir/l.lpm" \
  >/dev/null 2>&1
out=$("$bin" eval --model "$dir/l.lpm" --data "$dir/test.csv" --history "$dir/train.csv" \
      --json 2>/dev/null); rc=$?
auroc=$(num auroc "$out")
check "logistic eval auroc > 0.75 ($auroc)" awk -v a="$auroc" 'BEGIN { exit !(a > 0.75) }'

cat >"$dir/rules.json" <<'RULES'
[{"name": "big_amount", "when": "amount > 220", "action": "block"},
 {"name": "burst", "when": "customer_id:count_1h >= 3 and amount > 2 * customer_id:mean_30d",
  "action": "review"}]
RULES
out=$("$bin" backtest --model "$dir/m.lpm" --rules "$dir/rules.json" --data "$dir/test.csv" \
      2>/dev/null); rc=$?
check "backtest exit 0" test "$rc" -eq 0
check "backtest per rule" grep -q '"name":"big_amount","action":"block","hits":' <<<"$out"
check "backtest precision of the amount rule is 1" grep -q \
  '"name":"big_amount","action":"block","hits":[1-9][0-9]*,"frauds_hit":[0-9]*,"precision":1,' \
  <<<"$out"
check "backtest changes" grep -q '"approve_to_decline":' <<<"$out"

printf '[{"name": "typo", "when": "amount > 5 and amout < 2", "action": "review"}]' \
  >"$dir/bad.json"
out=$("$bin" backtest --model "$dir/m.lpm" --rules "$dir/bad.json" --data "$dir/test.csv" 2>&1)
rc=$?
check "bad rule exit 1" test "$rc" -eq 1
check "bad rule message" grep -q "rule 0 'typo': column 16: unknown feature 'amout'" <<<"$out"

out=$("$bin" retrain --model "$dir/m.lpm" --data "$dir/train.csv" --drop-cols tx_fraud_scenario \
      --param n_rounds=20 --out "$dir/m2.lpm" 2>&1); rc=$?
check "retrain exit 0" test "$rc" -eq 0
check "retrain wrote the model" test -s "$dir/m2.lpm"

out=$("$bin" train --data "$dir/train.csv" --label nope --out "$dir/x.lpm" 2>&1); rc=$?
check "missing label exit 1" test "$rc" -eq 1
check "missing label message" grep -q "nope" <<<"$out"
out=$("$bin" train --data "$dir/train.csv" "${common[@]}" --review-rate 150% \
      --out "$dir/x.lpm" 2>&1); rc=$?
check "bad review rate exit 2" test "$rc" -eq 2
out=$("$bin" eval --model "$dir/missing.lpm" --data "$dir/test.csv" 2>&1); rc=$?
check "missing model exit 1" test "$rc" -eq 1
out=$("$bin" frobnicate 2>&1); rc=$?
check "unknown command exit 2" test "$rc" -eq 2
out=$("$bin" eval --model "$dir/m.lpm" --dta x 2>&1); rc=$?
check "unknown option exit 2" test "$rc" -eq 2

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
