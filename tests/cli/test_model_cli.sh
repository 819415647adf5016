#!/usr/bin/env bash
# test_model_cli.sh - `lepton train|eval|predict|tune|pipeline|registry` end to end on the
# project's customer table, and every bad input of the Models issue: a missing label column, a
# non-numeric label for regression, one class only, an empty training file, a parameter out of
# range, truncated / corrupted / future-version model files. Each must be one line and a
# non-zero exit, never a crash.
set -u
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}/lepton"
data="${LEPTON_SOURCE_DIR:?}/data/customers.csv"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
one_line() { test "$(printf '%s' "$1" | wc -l)" -eq 0 && test -n "$1"; }
crashed() { test "$1" -ge 128; } # killed by a signal

head -2001 "$data" >"$dir/train.csv"
{ head -1 "$data"; tail -n +2002 "$data"; } >"$dir/test.csv"

out=$("$bin" train --data "$dir/train.csv" --label churned --model gbdt --drop customer_id \
  --param n_rounds=50 --out "$dir/m.lpm" --register churn --registry "$dir/reg.db" 2>&1); rc=$?
check "train gbdt exit 0" test "$rc" -eq 0
check "train registers" grep -q "registered churn version 1" <<<"$out"
out=$("$bin" eval --model "$dir/m.lpm" --data "$dir/test.csv" --json); rc=$?
check "eval exit 0" test "$rc" -eq 0
for key in accuracy macro_f1 auroc auprc logloss; do
  check "eval has $key" grep -q "\"$key\":0\.[0-9]" <<<"$out"
done
auroc=$(sed -E 's/.*"auroc":([0-9.]+).*/\1/' <<<"$out")
check "eval auroc > 0.75 (the label is learnable)" awk -v a="$auroc" 'BEGIN{exit !(a > 0.75)}'
# base_score: XGBoost's start (0.5) is accepted and changes the model; a start that is not a
# probability is refused naming the parameter
"$bin" train --data "$dir/train.csv" --label churned --model gbdt --drop customer_id \
  --param n_rounds=50 --param base_score=0.5 --out "$dir/m05.lpm" >/dev/null 2>&1; rc=$?
check "train gbdt base_score=0.5 exit 0" test "$rc" -eq 0
"$bin" predict --model "$dir/m.lpm" --data "$dir/test.csv" -o "$dir/p_default.csv" >/dev/null 2>&1
"$bin" predict --model "$dir/m05.lpm" --data "$dir/test.csv" -o "$dir/p_05.csv" >/dev/null 2>&1
check "base_score changes the model" bash -c "! cmp -s '$dir/p_default.csv' '$dir/p_05.csv'"
out=$("$bin" train --data "$dir/train.csv" --label churned --model gbdt --drop customer_id \
  --param base_score=1.5 --out "$dir/bad.lpm" 2>&1); rc=$?
check "base_score 1.5 refused" test "$rc" -ne 0
check "the refusal names base_score" grep -q "base_score" <<<"$out"

"$bin" predict --model "$dir/m.lpm" --data "$dir/test.csv" -o "$dir/p.csv" --keep customer_id \
  >/dev/null; rc=$?
check "predict exit 0" test "$rc" -eq 0
check "predict header" test "$(head -1 "$dir/p.csv")" = "customer_id,prediction,proba_0,proba_1"
check "predict rows" test "$(wc -l <"$dir/p.csv")" -eq "$(wc -l <"$dir/test.csv")"

out=$("$bin" train --data "$dir/train.csv" --label monthly_spend --model linear \
  --drop customer_id,churned --out "$dir/lin.lpm" --json); rc=$?
check "train linear exit 0" test "$rc" -eq 0
check "linear reports r2" grep -q '"r2"' <<<"$out"
"$bin" train --data "$dir/train.csv" --label plan --model logistic --drop customer_id \
  --out "$dir/plan.lpm" >/dev/null; rc=$?
check "train multiclass logistic" test "$rc" -eq 0

out=$("$bin" train --data "$dir/train.csv" --label churned --model nn --drop customer_id \
  --param hidden=16 --param epochs=10 --out "$dir/nn.lpm" --json); rc=$?
check "train nn exit 0" test "$rc" -eq 0
check "nn reports auroc" grep -q '"auroc":0\.[5-9]' <<<"$out"
out=$("$bin" tune --data "$dir/train.csv" --label churned --model logistic --budget 2s \
  --drop customer_id --out "$dir/t.lpm" --json); rc=$?
check "tune exit 0" test "$rc" -eq 0
check "tune reports trials" grep -q '"trials":[1-9]' <<<"$out"
check "tune trial log" test -s "$dir/t.lpm.trials.db"
out=$("$bin" tune --data "$dir/train.csv" --label churned --model logistic --budget 1e308h \
  --out "$dir/t2.lpm" 2>&1); rc=$?
check "tune --budget 1e308h (infinite seconds) is a usage error naming the flag (exit $rc)" \
  test "$rc" -eq 2 -a -n "$(grep -- "--budget '1e308h': expected a duration" <<<"$out")"

out=$("$bin" pipeline --data "$dir/train.csv" --label churned --model logistic --budget 2s \
  --out "$dir/pipe.lpm" --registry "$dir/reg.db" 2>&1); rc=$?
check "pipeline exit 0" test "$rc" -eq 0
check "pipeline drops the id" grep -q "leaving out 'customer_id'" <<<"$out"
check "pipeline report" grep -q '"test_metrics"' "$dir/pipe.lpm.report.json"
out=$("$bin" registry list --db "$dir/reg.db"); rc=$?
check "registry lists both" test "$(grep -c staging <<<"$out")" -eq 2
"$bin" registry promote --db "$dir/reg.db" --name churn --version 1 >/dev/null
check "registry promote" grep -q '"stage":.*"production"' <<<"$("$bin" registry show --db "$dir/reg.db" --name churn)"

# ---- bad input: one line, non-zero exit, no crash ----
bad() { # bad NAME EXPECTED-SUBSTRING COMMAND...
  local name=$1 want=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  check "$name: non-zero exit" test "$rc" -ne 0
  check "$name: no crash" test "$rc" -lt 128
  check "$name: one line" one_line "$err"
  check "$name: says '$want'" grep -q -- "$want" <<<"$err"
}
bad "missing label" "no column 'nope'" \
  "$bin" train --data "$dir/train.csv" --label nope --out "$dir/x.lpm"
bad "non-numeric regression label" "not a number" \
  "$bin" train --data "$dir/train.csv" --label plan --model linear --out "$dir/x.lpm"
printf 'x,y\n1,a\n2,a\n3,a\n4,a\n' >"$dir/one.csv"
bad "one class" "only one class" \
  "$bin" train --data "$dir/one.csv" --label y --model logistic --out "$dir/x.lpm"
: >"$dir/empty.csv"
bad "empty file" "empty" "$bin" train --data "$dir/empty.csv" --label y --out "$dir/x.lpm"
printf 'x,y\n' >"$dir/header.csv"
bad "header only" "rows" "$bin" train --data "$dir/header.csv" --label y --out "$dir/x.lpm"
bad "param out of range" "max_depth=-3" \
  "$bin" train --data "$dir/train.csv" --label churned --param max_depth=-3 --out "$dir/x.lpm"
bad "unknown param" "unknown parameter 'depth'" \
  "$bin" train --data "$dir/train.csv" --label churned --param depth=3 --out "$dir/x.lpm"
bad "unknown model" "unknown model 'svm'" \
  "$bin" train --data "$dir/train.csv" --label churned --model svm --out "$dir/x.lpm"

size=$(stat -c %s "$dir/m.lpm")
head -c $((size / 2)) "$dir/m.lpm" >"$dir/trunc.lpm"
bad "truncated model" "trunc.lpm" "$bin" eval --model "$dir/trunc.lpm" --data "$dir/test.csv"
cp "$dir/m.lpm" "$dir/corrupt.lpm"
printf '\x00\x00\x00\x00' | dd of="$dir/corrupt.lpm" bs=1 seek=$((size / 3)) conv=notrunc 2>/dev/null
bad "corrupted model" "corrupt" "$bin" eval --model "$dir/corrupt.lpm" --data "$dir/test.csv"
cp "$dir/m.lpm" "$dir/future.lpm"
printf '\x07' | dd of="$dir/future.lpm" bs=1 seek=8 conv=notrunc 2>/dev/null
bad "future-version model" "corrupted\|version" \
  "$bin" eval --model "$dir/future.lpm" --data "$dir/test.csv"
printf 'not a model at all' >"$dir/text.lpm"
bad "not a model file" "not a Lepton model file" \
  "$bin" predict --model "$dir/text.lpm" --data "$dir/test.csv" -o "$dir/p2.csv"

# a class named None is a class (a numeric label's NA would stay missing)
awk 'BEGIN { srand(5); print "x,y"; for (i = 0; i < 120; i++) { a = rand();
  printf "%.4f,%s\n", a, (a > 0.66 ? "None" : (a > 0.33 ? "A" : "B")) } }' >"$dir/none.csv"
out=$("$bin" train --data "$dir/none.csv" --label y --param n_rounds=20 --out "$dir/none.lpm" 2>&1)
check "label None: trains three classes" grep -q "multiclass" <<<"$out"
check "label None: says so" grep -q "'None' read as class names" <<<"$out"
out=$("$bin" eval --model "$dir/none.lpm" --data "$dir/none.csv" --json 2>/dev/null)
check "label None: eval counts every row" grep -q '"n":120' <<<"$out"
out=$("$bin" train --data "$dir/none.csv" --label y --missing None --out "$dir/none2.lpm" 2>&1)
check "label None: --missing None keeps it missing" grep -q "binary" <<<"$out"

# a file without a header line (UCI's .data files): --label by position, and eval and
# predict read such files the same way
tail -n +2 "$dir/none.csv" | awk -F, '{ printf "%s,%d,%s\n", $1, NR % 7, $2 }' >"$dir/none.data"
out=$("$bin" train --data "$dir/none.data" --label c3 --param n_rounds=20 --out "$dir/nh.lpm" 2>&1)
check "no header line: train by position" grep -q "columns named c1..c3" <<<"$out"
out=$("$bin" eval --model "$dir/nh.lpm" --data "$dir/none.data" --json 2>/dev/null)
check "no header line: eval" grep -q '"n":120' <<<"$out"
"$bin" predict --model "$dir/nh.lpm" --data "$dir/none.data" -o "$dir/nh.csv" >/dev/null 2>&1
check "no header line: predict" test "$(wc -l <"$dir/nh.csv")" -eq 121

# an identifier column (customer_id: a distinct value on every row) is left out with a note
# unless --keep-ids; predict then needs no such column
out=$("$bin" train --data "$dir/train.csv" --label churned --model gbdt --param n_rounds=20 \
  --out "$dir/ids.lpm" 2>&1 >/dev/null)
check "train leaves an identifier out, saying so" grep -q "left out 'customer_id'" <<<"$out"
cut -d, -f2- "$dir/test.csv" >"$dir/test_noid.csv"
"$bin" predict --model "$dir/ids.lpm" --data "$dir/test_noid.csv" -o "$dir/noid.csv" \
  >/dev/null 2>&1
check "predict without the identifier column" test "$(wc -l <"$dir/noid.csv")" -gt 1
out=$("$bin" train --data "$dir/train.csv" --label churned --model gbdt --param n_rounds=20 \
  --keep-ids --out "$dir/keep.lpm" 2>&1 >/dev/null)
check "--keep-ids keeps it" test -z "$(grep "left out" <<<"$out")"

echo "$fails failed"
test "$fails" -eq 0
