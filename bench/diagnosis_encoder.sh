#!/usr/bin/env bash
# diagnosis_encoder.sh - symptom2disease text model with the MiniLM sentence encoder
# (`train --text --encoder`: head on frozen embeddings ensembled with TF-IDF) against the
# TF-IDF model alone, same split, one run. Train time includes embedding the texts. The peers
# (scikit-learn, fastText) are in diagnosis_bench.sh.
# Usage: bench/diagnosis_encoder.sh [BUILD_DIR] [ENCODER.lpm]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
enc=${2:-$build/encoder/minilm.lpm}
bin="$build/bin/lepton-diagnosis"
data=${LEPTON_SHARED_DATA:-$root/../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=passive LEPTON_LOG=info
now() { date +%s.%N; }
[ -s "$enc" ] || { echo "no encoder at $enc (run scripts/setup or lepton encoder install)"; exit 1; }
s=$data/symptom2disease
echo "== symptom2disease, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for model in tfidf encoder; do
  extra=(); [ "$model" = encoder ] && extra=(--encoder "$enc")
  t0=$(now)
  "$bin" train --text "$s/train.tsv" --label-col label "${extra[@]}" --out "$tmp/$model.lpm" \
    >"$tmp/$model.train" 2>"$tmp/$model.log"
  t1=$(now)
  grep -h "TF-IDF weight" "$tmp/$model.log" || true
  printf '{"tool":"lepton %s","train_s":%.2f,"load":"%s","eval":%s}\n' "$model" \
    "$(echo "$t1 - $t0" | bc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$("$bin" eval --model "$tmp/$model.lpm" --text "$s/test.tsv" --json 2>/dev/null)"
done
