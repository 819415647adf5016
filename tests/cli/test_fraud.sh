#!/usr/bin/env bash
# test_fraud.sh - lepton-fraud end to end on the project's simulator data
# (data/fraud/transactions.csv, 50 days): train on the first 40 days, eval the last 10 in time
# order with the first 40 as history (the JSON keys and a quality floor a broken feature path
# would miss), backtest a rule file, retrain from a model's settings; usage errors exit 2,
# bad data and bad rules exit 1 with one line naming the problem. Then the same data reshaped
# as unseen data sets come: no id column, ids numbered per file, a short span, hour steps,
# epoch milliseconds, text labels, text feature columns (low-cardinality ones as features, one
# carrying the fraud signal), columns called amount, hour or time, wide tables.
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
"$bin" train --help >"$dir/help.out" 2>/dev/null; rc=$?
check "train --help: the usage on stdout, exit 0" test "$rc" -eq 0 -a -s "$dir/help.out"

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
# --model-kind auto: both trained, the better validation AUPRC kept: the gbdt on the velocity
# features here, the logistic where fraud shifts 8 gaussian columns a little (a linear boundary)
out=$("$bin" train --data "$dir/train.csv" "${common[@]}" --model-kind auto --out "$dir/au.lpm" \
      2>&1); rc=$?
check "auto: train exit 0" test "$rc" -eq 0
check "auto: keeps the gbdt on velocity features" grep -q "model-kind auto: validation AUPRC gbdt [0-9.]*, logistic [0-9.]*: keeping the gbdt" <<<"$out"
awk 'function g() { return sqrt(-2 * log(1 - rand())) * cos(6.283185307 * rand()) }
     BEGIN { srand(3); printf "y"; for (j = 0; j < 20; j++) printf ",f%d", j; print ""
             for (i = 0; i < 6000; i++) { y = (i % 20 == 0); printf "%d", y
               for (j = 0; j < 20; j++) printf ",%.3f", g() + 0.7 * y * (j < 8); print "" } }' \
  >"$dir/lin.csv"
out=$("$bin" train --data "$dir/lin.csv" --label y --model-kind auto --out "$dir/lin.lpm" 2>&1)
check "auto: keeps the logistic on a linear boundary" grep -q "keeping the logistic" <<<"$out"
out=$("$bin" eval --model "$dir/lin.lpm" --data "$dir/lin.csv" --json 2>/dev/null); rc=$?
check "auto: the kept model evaluates" test "$rc" -eq 0 -a -n "$(num auprc "$out")"
"$bin" retrain --model "$dir/lin.lpm" --data "$dir/lin.csv" --out "$dir/lin2.lpm" >/dev/null 2>&1
out2=$("$bin" eval --model "$dir/lin2.lpm" --data "$dir/lin.csv" --json 2>/dev/null)
check "retrain keeps the logistic kind (the same model again)" \
  test "$(num auprc "$out2")" = "$(num auprc "$out")"

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

# ---- data shaped unlike the simulator's (issue 6, unseen data sets) ----
ntest=$(($(wc -l <"$dir/test.csv") - 1))
# no --id-col: the rows' own names must not collide between history and test
"$bin" train --data "$dir/train.csv" --label tx_fraud --time-col tx_datetime \
  --entity-cols customer_id,terminal_id --amount-col tx_amount \
  --drop-cols transaction_id,tx_fraud_scenario --param n_rounds=40 --threads 2 \
  --out "$dir/noid.lpm" >/dev/null 2>&1
out=$("$bin" eval --model "$dir/noid.lpm" --data "$dir/test.csv" --history "$dir/train.csv" \
      --json 2>/dev/null); rc=$?
check "no id column: eval exit 0" test "$rc" -eq 0
check "no id column: every test row scored" test "$(num n "$out")" = "$ntest"
# ids numbered per file (both from 0): scored as distinct transactions, counted and warned
awk -F, -v OFS=, 'NR == 1 { print; next } { $1 = NR - 2; print }' "$dir/test.csv" \
  >"$dir/test0.csv"
out=$("$bin" eval --model "$dir/m.lpm" --data "$dir/test0.csv" --history "$dir/train.csv" \
      --json 2>"$dir/err"); rc=$?
check "per-file ids: eval exit 0" test "$rc" -eq 0
check "per-file ids: every test row scored" test "$(num n "$out")" = "$ntest"
check "per-file ids: counted" test "$(num ids_also_in_history "$out")" = "$ntest"
check "per-file ids: warned" grep -q "ids numbered per file" "$dir/err"
# a duplicate inside the test file stays skipped, and says so
tail -n 1 "$dir/test0.csv" >>"$dir/test0.csv"
out=$("$bin" eval --model "$dir/m.lpm" --data "$dir/test0.csv" --history "$dir/train.csv" \
      --json 2>"$dir/err")
check "duplicate test id skipped" test "$(num duplicate_id "$out")" = 1
check "duplicate test id: n" test "$(num n "$out")" = "$ntest"
check "duplicate test id warned" grep -q "appears earlier in the test data" "$dir/err"
# the same transactions as history and test: skipped, and the error names why
out=$("$bin" eval --model "$dir/m.lpm" --data "$dir/test.csv" --history "$dir/test.csv" \
      --json 2>&1); rc=$?
check "overlapping files exit 1" test "$rc" -eq 1
check "overlapping files message" grep -q "already in the history" <<<"$out"

# tabular data with a numeric time and no entities: TIME_EXPR of the row index r, then
# amount and label; train_tab FILE COLUMN [options] trains on it quietly
tab() { awk -F, -v OFS=, -v c="$1" -v e="$2" 'NR == 1 { print c ",Amount,Class"; next }
        { r = NR - 2; print (e == "sec" ? r * 9 : int(r / 30)), $5, $6 }' "$dir/train.csv"; }
train_tab() { local f=$1 c=$2; shift 2
  "$bin" train --data "$f" --label Class --time-col "$c" --amount-col Amount \
    --param n_rounds=20 --out "$dir/tab.lpm" "$@" 2>&1; }
# a short span (2 days of seconds, creditcard.csv-like): the last 20% of rows validate
tab Time sec >"$dir/cc.csv"
out=$(train_tab "$dir/cc.csv" Time); rc=$?
check "short span: train exit 0" test "$rc" -eq 0
check "short span: says how it validates" \
  grep -q "lepton-fraud train: validation: the last 20% of rows in time order" <<<"$out"
# the same file without its header line: columns by position (--label c3 --time-col c1)
tail -n +2 "$dir/cc.csv" >"$dir/cc.data"
out=$(train_tab "$dir/cc.data" c1 --label c3 --amount-col c2); rc=$?
check "no header line: train exit 0" test "$rc" -eq 0
check "no header line: said so" grep -q "no header line" <<<"$out"
out=$("$bin" eval --model "$dir/tab.lpm" --data "$dir/cc.data" --json 2>/dev/null); rc=$?
check "no header line: eval reads it as train did" test "$rc" -eq 0 -a "$(num n "$out")" -gt 0
# hour steps (PaySim 'step'): named as a likely unit mistake, and --time-unit h reads them
tab step hour >"$dir/step.csv"
out=$(train_tab "$dir/step.csv" step); rc=$?
check "hour steps: train exit 0" test "$rc" -eq 0
check "hour steps: unit named" grep -q "is it in hours or days? see --time-unit" <<<"$out"
out=$(train_tab "$dir/step.csv" step --time-unit h); rc=$?
check "--time-unit h: train exit 0" test "$rc" -eq 0
check "--time-unit h: validates by days" test -z "$(grep -e "last 20%" -e "--time-unit" <<<"$out")"
out=$("$bin" train --data "$dir/step.csv" --label Class --time-col step --time-unit week \
      --out "$dir/st.lpm" 2>&1); rc=$?
check "bad --time-unit exit 2" test "$rc" -eq 2
# epoch milliseconds: detected, stored in the model, applied at eval
ms() { awk -F, -v OFS=, 'NR == 1 { $2 = "ts_ms"; print; next }
       { $2 = sprintf("%.0f", (1735689600 + (NR - 2) * 200) * 1000 + (FILENAME ~ /test/) * 4e9); print }' "$1"; }
ms "$dir/train.csv" >"$dir/train_ms.csv"
ms "$dir/test.csv" >"$dir/test_ms.csv"
out=$("$bin" train --data "$dir/train_ms.csv" "${common[@]}" --time-col ts_ms \
      --out "$dir/ms.lpm" 2>&1); rc=$?
check "epoch ms: train exit 0" test "$rc" -eq 0
check "epoch ms: detected" grep -q "read as epoch milliseconds" <<<"$out"
out=$("$bin" eval --model "$dir/ms.lpm" --data "$dir/test_ms.csv" --history "$dir/train_ms.csv" \
      --json 2>/dev/null); rc=$?
check "epoch ms: eval exit 0" test "$rc" -eq 0
check "epoch ms: every test row scored" test "$(num n "$out")" = "$ntest"
out=$("$bin" train --data "$dir/train_ms.csv" "${common[@]}" --time-col ts_ms --time-unit s \
      --out "$dir/x.lpm" 2>&1); rc=$?
check "epoch ms read as seconds: exit 1" test "$rc" -eq 1
check "epoch ms read as seconds: the message asks" grep -q "is it in milliseconds? see --time-unit" <<<"$out"

# string labels: fraud/legit recognized (also at eval), A/B needs --positive-label
awk -F, -v OFS=, 'NR > 1 { $6 = $6 == 1 ? "fraud" : "legit" } { print }' "$dir/train.csv" \
  >"$dir/strl_tr.csv"
awk -F, -v OFS=, 'NR > 1 { $6 = $6 == 1 ? "Fraud" : "Legit" } { print }' "$dir/test.csv" \
  >"$dir/strl_te.csv"
out=$("$bin" train --data "$dir/strl_tr.csv" "${common[@]}" --out "$dir/sl.lpm" 2>&1); rc=$?
check "string label: train exit 0" test "$rc" -eq 0
check "string label: the positive value named" grep -q "the value 'fraud' means fraud" <<<"$out"
out=$("$bin" eval --model "$dir/sl.lpm" --data "$dir/strl_tr.csv" --json 2>/dev/null)
check "string label: eval counts the frauds" test "$(num n_fraud "$out")" = \
  "$(awk -F, '$6 == "fraud"' "$dir/strl_tr.csv" | wc -l)"
awk -F, -v OFS=, 'NR > 1 { $6 = $6 == 1 ? "B" : "A" } { print }' "$dir/train.csv" >"$dir/ab.csv"
out=$("$bin" train --data "$dir/ab.csv" "${common[@]}" --out "$dir/x.lpm" 2>&1); rc=$?
check "ambiguous string label exit 1" test "$rc" -eq 1
check "ambiguous string label message" grep -q "values 'A' and 'B': which one means fraud? pass --positive-label" <<<"$out"
out=$("$bin" train --data "$dir/ab.csv" "${common[@]}" --positive-label B --out "$dir/ab.lpm" \
      2>&1); rc=$?
check "--positive-label B: train exit 0" test "$rc" -eq 0

# text columns: one of few values is a feature (named in a note), one of many is left out
awk -F, -v OFS=, 'NR == 1 { print $0, "channel", "merchant"; next }
  { print $0, NR % 3 ? "web" : "pos", "m" NR % 40 }' "$dir/train.csv" >"$dir/chan.csv"
out=$("$bin" train --data "$dir/chan.csv" "${common[@]}" --out "$dir/x.lpm" 2>&1); rc=$?
check "text column: train exit 0" test "$rc" -eq 0
check "text column of 2 values: a feature" grep -q "lepton-fraud train: 1 text column fed to the model as the index of the value in its list.*'channel' (2 values)" <<<"$out"
check "text column of 40 values: named as left out" grep -q "lepton-fraud train: 1 column left out of the model.*'merchant' (text, 40 values; at most 32 make a feature)" <<<"$out"

# a text column that carries the fraud signal (a merchant category, as in the Sparkov data):
# 60% of the frauds and 3% of the genuine transactions are "shopping_net", the rest spread over
# 7 other categories; the test period adds a category never seen in training and empty cells
# (both scored as missing)
with_cat() { awk -F, -v OFS=, -v seed="$2" -v unseen="$3" 'BEGIN { srand(seed)
    split("entertainment food_dining gas_transport grocery_pos health_fitness home travel", c, " ") }
  NR == 1 { print $0, "category"; next }
  { u = rand(); k = 1 + int(rand() * 7); v = u < ($6 == 1 ? 0.6 : 0.03) ? "shopping_net" : c[k]
    if (unseen && NR % 50 == 0) v = "crypto_atm"; if (unseen && NR % 50 == 1) v = ""
    print $0, v }' "$1"; }
with_cat "$dir/train.csv" 3 0 >"$dir/cat_tr.csv"
with_cat "$dir/test.csv" 4 1 >"$dir/cat_te.csv"
out=$("$bin" train --data "$dir/cat_tr.csv" "${common[@]}" --out "$dir/cat.lpm" 2>&1); rc=$?
check "category: train exit 0" test "$rc" -eq 0
check "category: a feature" grep -q "'category' (8 values)" <<<"$out"
"$bin" train --data "$dir/cat_tr.csv" "${common[@]}" --drop-cols tx_fraud_scenario,category \
  --out "$dir/nocat.lpm" >/dev/null 2>&1
with=$("$bin" eval --model "$dir/cat.lpm" --data "$dir/cat_te.csv" --history "$dir/cat_tr.csv" \
       --json 2>/dev/null); rc=$?
check "category: eval exit 0 (unseen and empty values)" test "$rc" -eq 0
check "category: every test row scored" test "$(num n "$with")" = "$ntest"
without=$("$bin" eval --model "$dir/nocat.lpm" --data "$dir/cat_te.csv" \
          --history "$dir/cat_tr.csv" --json 2>/dev/null)
a1=$(num auprc "$with"); a0=$(num auprc "$without")
echo "category: test AUPRC $a1 with the text feature, $a0 without"
check "category: AUPRC with it ($a1) > without ($a0) + 0.05" \
  awk -v a="$a1" -v b="$a0" 'BEGIN { exit !(a > b + 0.05) }'
printf '[{"name": "net", "when": "category == 6 and amount > 50", "action": "review"}]' \
  >"$dir/cat_rules.json"
out=$("$bin" backtest --model "$dir/cat.lpm" --rules "$dir/cat_rules.json" \
      --data "$dir/cat_te.csv" 2>/dev/null); rc=$?
check "category: backtest exit 0" test "$rc" -eq 0
check "category: backtest rule hits" grep -q '"name":"net","action":"review","hits":[1-9]' <<<"$out"
# eval's data without the column: refused, naming it
cut -d, -f1-7 "$dir/cat_te.csv" >"$dir/cat_none.csv"
out=$("$bin" eval --model "$dir/cat.lpm" --data "$dir/cat_none.csv" --json 2>&1); rc=$?
check "category column missing at eval: exit 1" test "$rc" -eq 1
check "category column missing at eval: named" grep -q "category" <<<"$out"

# a column called "amount" (PaySim) or "amt" (Sparkov) is the amount without --amount-col; a
# column named like a derived feature (hour) is refused, naming --drop-cols
awk -F, -v OFS=, 'NR == 1 { print "step,amount,isFraud"; next } { print int((NR - 2) / 30), $5, $6 }' \
  "$dir/train.csv" >"$dir/ps.csv"
out=$("$bin" train --data "$dir/ps.csv" --label isFraud --param n_rounds=20 --out "$dir/ps.lpm" 2>&1)
rc=$?
check "column amount: train exit 0" test "$rc" -eq 0
check "column amount: taken as the amount" \
  grep -q "the column 'amount' is the transaction amount (as --amount-col amount)" <<<"$out"
out=$("$bin" eval --model "$dir/ps.lpm" --data "$dir/ps.csv" --json 2>/dev/null); rc=$?
check "column amount: eval exit 0" test "$rc" -eq 0 -a "$(num n "$out")" -gt 0
# the one date-time column is the time without --time-col; without --entity-cols a note says
# what they would add
out=$("$bin" train --data "$dir/train.csv" --label tx_fraud --id-col transaction_id \
      --drop-cols tx_fraud_scenario --param n_rounds=5 --out "$dir/tg.lpm" 2>&1); rc=$?
check "date-time column: train exit 0" test "$rc" -eq 0
check "date-time column: taken as the time" \
  grep -q "the column 'tx_datetime' is the transaction time (as --time-col tx_datetime)" <<<"$out"
check "no --entity-cols: said what they add" grep -q "no --entity-cols: no velocity" <<<"$out"
sed '1s/step/hour/' "$dir/ps.csv" >"$dir/hour.csv"
out=$("$bin" train --data "$dir/hour.csv" --label isFraud --out "$dir/h.lpm" 2>&1); rc=$?
check "column hour: exit 1" test "$rc" -eq 1
check "column hour: named with the fix" grep -q "column 'hour' has the name of a feature.*--drop-cols hour" <<<"$out"
out=$("$bin" train --data "$dir/hour.csv" --label isFraud --drop-cols hour --param n_rounds=5 \
      --out "$dir/h.lpm" 2>&1); rc=$?
check "column hour dropped: train exit 0" test "$rc" -eq 0
# a numeric column "time" that is not --time-col (creditcard.csv's seconds since the first row)
# is a feature: the service reads a request's "time" as that, not as a clock to check
if command -v curl >/dev/null; then
  sed '1s/step/time/' "$dir/ps.csv" >"$dir/tf.csv"
  "$bin" train --data "$dir/tf.csv" --label isFraud --param n_rounds=5 --out "$dir/tf.lpm" \
    >/dev/null 2>&1
  LEPTON_LOG=info "$bin" serve --model "$dir/tf.lpm" --port 0 --db "$dir/tf.db" >/dev/null \
    2>"$dir/tf.err" &
  pid=$!
  for _ in $(seq 300); do grep -q "listening on http" "$dir/tf.err" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$dir/tf.err")
  out=$(curl -s -X POST "http://127.0.0.1:$port/v1/score" \
        -d '{"transaction_id":"t1","time":4102444800000,"amount":12.5}')
  check "feature time: scored, not refused as a future clock" grep -q '"score":' <<<"$out"
  kill "$pid"; wait "$pid" 2>/dev/null
fi

# wide tables: 70 numeric columns train; over the limit the error counts them
wide() { awk -v m="$1" 'BEGIN { srand(1); printf "y"; for (j = 0; j < m; j++) printf ",f%d", j
         print ""; for (i = 0; i < 600; i++) { y = i % 10 == 0; printf "%d", y
         for (j = 0; j < m; j++) printf ",%.3f", rand() + y * (j < 3); print "" } }'; }
wide 70 >"$dir/wide.csv"
out=$("$bin" train --data "$dir/wide.csv" --label y --param n_rounds=10 --out "$dir/w.lpm" 2>&1)
rc=$?
check "70 numeric columns: train exit 0" test "$rc" -eq 0
wide 520 >"$dir/wide.csv"
out=$("$bin" train --data "$dir/wide.csv" --label y --out "$dir/x.lpm" 2>&1); rc=$?
check "520 numeric columns exit 1" test "$rc" -eq 1
check "520 numeric columns message" grep -q "520 numeric feature columns, at most 512: leave 8 of them out with --drop-cols" <<<"$out"

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
