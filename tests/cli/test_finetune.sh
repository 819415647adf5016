#!/usr/bin/env bash
# test_finetune.sh - `lepton finetune` end to end on the project's customer table: a base nn,
# logistic and gbdt trained on the first 2000 rows are adapted to the last 1000 with each
# method that applies (lora, head, full, warm, boost); the report names base and tuned metrics
# on the validation split; the adapter file is small. Bad input: a column the base never saw,
# a label value it never saw, a method of another family, a rank larger than a layer, missing
# options: one line each and a non-zero exit, never a crash.
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
jnum() { # jnum JSON OBJECT KEY: the number of KEY inside the object OBJECT
  printf '%s' "$1" | sed -n "s/.*\"$2\":{[^}]*\"$3\":\([^,}]*\).*/\1/p"
}

head -2001 "$data" >"$dir/base.csv"
{ head -1 "$data"; tail -n +2002 "$data"; } >"$dir/new.csv"
"$bin" train --data "$dir/base.csv" --label churned --model nn --drop customer_id \
  --param hidden=16 --param epochs=10 --out "$dir/nn.lpm" 2>/dev/null
"$bin" train --data "$dir/base.csv" --label churned --model logistic --drop customer_id \
  --out "$dir/lg.lpm" 2>/dev/null
"$bin" train --data "$dir/base.csv" --label churned --model gbdt --drop customer_id \
  --param n_rounds=20 --out "$dir/gb.lpm" 2>/dev/null
check "base models trained" test -s "$dir/nn.lpm" -a -s "$dir/lg.lpm" -a -s "$dir/gb.lpm"

out=$("$bin" finetune --base "$dir/nn.lpm" --data "$dir/new.csv" --drop customer_id \
  --method lora --rank 2 --epochs 5 --json --out "$dir/a.lpa"); rc=$?
check "lora exit 0" test "$rc" -eq 0
check "lora wrote the adapter" test -s "$dir/a.lpa"
check "lora adapter smaller than the base" \
  test "$(wc -c <"$dir/a.lpa")" -lt "$(wc -c <"$dir/nn.lpm")"
check "lora reports base accuracy" test -n "$(jnum "$out" base accuracy)"
check "lora reports tuned accuracy" test -n "$(jnum "$out" tuned accuracy)"
check "lora reports tuned logloss" test -n "$(jnum "$out" tuned logloss)"
check "lora split 800/200" grep -q '"train_rows":800,"valid_rows":200' <<<"$out"
check "lora trains only the adapter: r (d + 16) + r (16 + 2), r = 2, 33 design columns" \
  grep -q "\"trainable\":134," <<<"$out"
out2=$("$bin" finetune --base "$dir/nn.lpm" --data "$dir/new.csv" --drop customer_id \
  --method lora --rank 2 --epochs 5 --json --out "$dir/b.lpa")
check "lora is reproducible with the seed" cmp -s "$dir/a.lpa" "$dir/b.lpa"

for m in head full; do
  out=$("$bin" finetune --base "$dir/nn.lpm" --data "$dir/new.csv" --drop customer_id \
    --method $m --epochs 5 --out "$dir/$m.lpm"); rc=$?
  check "$m exit 0" test "$rc" -eq 0
  check "$m text report names base and tuned" \
    bash -c 'grep -q "^base .*accuracy" <<<"$1" && grep -q "^tuned .*accuracy" <<<"$1"' _ "$out"
  ev=$("$bin" eval --model "$dir/$m.lpm" --data "$dir/new.csv" --json); rc=$?
  check "$m model evaluates" test "$rc" -eq 0
done
out=$("$bin" finetune --base "$dir/lg.lpm" --data "$dir/new.csv" --drop customer_id \
  --method warm --lambda 0.1 --json --out "$dir/w.lpm"); rc=$?
check "warm exit 0" test "$rc" -eq 0
check "warm reports tuned logloss" test -n "$(jnum "$out" tuned logloss)"
out=$("$bin" finetune --base "$dir/gb.lpm" --data "$dir/new.csv" --drop customer_id \
  --method boost --rounds 5 --json --out "$dir/g.lpm" 2>/dev/null); rc=$?
check "boost exit 0" test "$rc" -eq 0
check "boost model is larger (more trees)" \
  test "$(wc -c <"$dir/g.lpm")" -gt "$(wc -c <"$dir/gb.lpm")"

# bad input
err=$("$bin" finetune --base "$dir/nn.lpm" --data "$dir/new.csv" --method lora --rank 2 \
  --out "$dir/x.lpa" 2>&1); rc=$?
check "new column: exit 2" test "$rc" -eq 2
check "new column: named, one line ($err)" \
  bash -c 'grep -q "customer_id" <<<"$1" && test "$(printf "%s" "$1" | wc -l)" -eq 0' _ "$err"
awk -F, 'NR == 5 { $NF = "maybe" } { print }' OFS=, "$dir/new.csv" >"$dir/label.csv"
err=$("$bin" finetune --base "$dir/nn.lpm" --data "$dir/label.csv" --drop customer_id \
  --method lora --rank 2 --out "$dir/x.lpa" 2>&1); rc=$?
check "unseen label: non-zero exit" test "$rc" -ne 0 -a "$rc" -lt 128
check "unseen label: named ($err)" grep -q "'maybe'" <<<"$err"
err=$("$bin" finetune --base "$dir/nn.lpm" --data "$dir/new.csv" --drop customer_id \
  --method boost --out "$dir/x.lpm" 2>&1); rc=$?
check "boost on nn: non-zero exit" test "$rc" -ne 0 -a "$rc" -lt 128
check "boost on nn: one line naming the family ($err)" \
  bash -c 'grep -q "nn model" <<<"$1" && test "$(printf "%s" "$1" | wc -l)" -eq 0' _ "$err"
err=$("$bin" finetune --base "$dir/gb.lpm" --data "$dir/new.csv" --drop customer_id \
  --method lora --out "$dir/x.lpa" 2>&1); rc=$?
check "lora on gbdt: refused ($err)" bash -c '[ "$0" -ne 0 ] && grep -q "gbdt" <<<"$1"' "$rc" "$err"
err=$("$bin" finetune --base "$dir/nn.lpm" --data "$dir/new.csv" --drop customer_id \
  --method lora --rank 3 --out "$dir/x.lpa" 2>&1); rc=$?
check "rank too large: refused naming the rank ($err)" \
  bash -c '[ "$0" -ne 0 ] && grep -q "rank 3" <<<"$1"' "$rc" "$err"
"$bin" finetune --base "$dir/nn.lpm" --data "$dir/new.csv" 2>/dev/null; rc=$?
check "missing options: exit 2" test "$rc" -eq 2
"$bin" finetune --base "$dir/nn.lpm" --data "$dir/new.csv" --method magic --out "$dir/x" \
  2>/dev/null; rc=$?
check "bad method: exit 2" test "$rc" -eq 2
check "no output written on errors" test ! -e "$dir/x.lpa" -a ! -e "$dir/x.lpm"

# ---- a new class: rows of the new data with many support tickets get the label "many"
awk -F, 'NR > 1 && $(NF - 5) > 3 { sub(/,[01]$/, ",many") } { print }' "$dir/new.csv" \
  >"$dir/newc.csv"
check "new-class rows made" test "$(grep -c ',many$' "$dir/newc.csv")" -gt 10
err=$("$bin" finetune --base "$dir/nn.lpm" --data "$dir/newc.csv" --drop customer_id \
  --method lora --rank 2 --out "$dir/c.lpa" 2>&1); rc=$?
check "unseen label without --new-classes: refused naming it" \
  bash -c '[ "$0" -ne 0 ] && grep -q "'"'"'many'"'"'" <<<"$1"' "$rc" "$err"
out=$("$bin" finetune --base "$dir/nn.lpm" --data "$dir/newc.csv" --drop customer_id \
  --method lora --rank 2 --epochs 30 --new-classes --json --out "$dir/c.lpa"); rc=$?
check "--new-classes exit 0" test "$rc" -eq 0
check "--new-classes writes a version 2 adapter" \
  test "$(od -An -tu4 -j4 -N4 "$dir/c.lpa" | tr -d ' ')" = 2
check "--new-classes: the tuned model beats the base, which never predicts the new class" \
  awk -v b="$(jnum "$out" base accuracy)" -v t="$(jnum "$out" tuned accuracy)" \
  'BEGIN { exit !(t > b) }'
err=$("$bin" finetune --base "$dir/nn.lpm" --data "$dir/newc.csv" --drop customer_id \
  --method head --new-classes --out "$dir/x.lpm" 2>&1); rc=$?
check "--new-classes with head: refused" \
  bash -c '[ "$0" -ne 0 ] && grep -q "lora only" <<<"$1"' "$rc" "$err"

echo "$fails failure(s)"
test "$fails" -eq 0
