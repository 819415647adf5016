#!/usr/bin/env bash
# Few-shot intent adaptation on CLINC150 (shared/data/clinc150): the base intent model
# (lepton-customer-service train: TF-IDF + multinomial logistic, OOS class) is trained without
# 10 of the 150 intents (every 15th of intents.tsv: one per domain); those are then added from
# the first 10 training examples each as a tenant LoRA adapter (finetune), against retraining
# from scratch on the base's data plus the same 100 rows. Reported: in-scope accuracy on the
# 10 new intents' test rows and on the other 140 intents' test rows (+ OOS recall on the OOS
# test rows), adapter vs base size, adapter training vs retraining wall time.
#   usage: bench/cs_fewshot.sh [build dir] [rank ...]    (default: build, ranks 8 16)
# Skips (exit 0 with a note) when the data is absent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shift || true
ranks=${*:-8 16}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}/clinc150
[ -d "$data" ] || data=/work/shared/data/clinc150
if [ ! -f "$data/train.tsv" ]; then
  echo "skip: no CLINC150 data at $data"
  exit 0
fi
cs=$build/bin/lepton-customer-service
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMP_WAIT_POLICY=passive LEPTON_LOG=error
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "load $(cut -d' ' -f1 /proc/loadavg)"
awk -F'\t' 'NR > 1 && $1 != "oos" && (n++ % 15) == 0 && k < 10 { print $1; k++ }' \
  "$data/intents.tsv" >"$dir/new.txt"
new=$(paste -sd, "$dir/new.txt")
echo "new intents: $new"
# label<TAB>text files: base (without the new intents), all, and the 10-shot rows
split() { # $1 split, $2 keep: base|all
  awk -F'\t' -v keep="$2" -v nf="$dir/new.txt" '
    BEGIN { while ((getline l < nf) > 0) isnew[l] = 1; print "label\ttext" }
    NR > 1 && (keep == "all" || !($1 in isnew)) { print $1 "\t" $3 }' "$data/$1.tsv"
}
for s in train val test; do
  split $s base >"$dir/base_$s.tsv"
  split $s all >"$dir/all_$s.tsv"
done
awk -F'\t' -v nf="$dir/new.txt" '
  BEGIN { while ((getline l < nf) > 0) isnew[l] = 1; print "label\ttext" }
  NR > 1 && ($1 in isnew) && c[$1]++ < 10 { print $1 "\t" $3 }' "$data/train.tsv" >"$dir/few.tsv"
{ cat "$dir/base_train.tsv"; tail -n +2 "$dir/few.tsv"; } >"$dir/retrain.tsv"
now() { date +%s.%N; }
evalm() { # $1 model, $2 adapter or "", -> "new_acc rest_acc oos_recall"
  local ad=()
  [ -n "$2" ] && ad=(--adapter "$2")
  local a b
  a=$("$cs" eval --model "$1" "${ad[@]}" --data "$dir/all_test.tsv" --only "$new" --json)
  b=$("$cs" eval --model "$1" "${ad[@]}" --data "$dir/base_test.tsv" --json)
  jq -rn --argjson a "$a" --argjson b "$b" \
    '"\($a.in_scope_accuracy) \($b.in_scope_accuracy) \($b.oos_recall)"'
}
t0=$(now)
"$cs" train --data "$dir/base_train.tsv" --valid "$dir/base_val.tsv" --out "$dir/base.lpm" \
  >/dev/null 2>&1
t1=$(now)
"$cs" train --data "$dir/retrain.tsv" --valid "$dir/base_val.tsv" --out "$dir/retrain.lpm" \
  >/dev/null 2>&1
t2=$(now)
base_bytes=$(wc -c <"$dir/base.lpm")
printf "base: train %.1f s, %d bytes, accuracy new/rest/oos-recall: %s\n" \
  "$(echo "$t1 - $t0" | bc)" "$base_bytes" "$(evalm "$dir/base.lpm" "")"
rt=$(echo "$t2 - $t1" | bc)
printf "retrain from scratch: %.1f s, accuracy new/rest/oos-recall: %s\n" "$rt" \
  "$(evalm "$dir/retrain.lpm" "")"
for r in $ranks; do
  t3=$(now)
  j=$("$cs" finetune --model "$dir/base.lpm" --data "$dir/few.tsv" --rank "$r" \
    --out "$dir/t$r.lpa")
  t4=$(now)
  at=$(echo "$t4 - $t3" | bc)
  bytes=$(wc -c <"$dir/t$r.lpa")
  printf "adapter rank %s: %s params / %s base params, %d bytes (%.2f%% of the base file), " \
    "$r" "$(jq .adapter_params <<<"$j")" "$(jq .base_params <<<"$j")" "$bytes" \
    "$(echo "100 * $bytes / $base_bytes" | bc -l)"
  printf "wall %.2f s (train loop %.2f s; %.1f%% of retraining), accuracy new/rest/oos-recall: %s\n" \
    "$at" "$(jq .train_seconds <<<"$j")" "$(echo "100 * $at / $rt" | bc -l)" \
    "$(evalm "$dir/base.lpm" "$dir/t$r.lpa")"
done
