#!/usr/bin/env bash
# cs_encoder.sh - CLINC150 intents and out-of-scope with the MiniLM sentence encoder
# (`train --encoder`, head on frozen embeddings ensembled with TF-IDF) against the TF-IDF model
# alone, both protocols of cs_bench.sh (A: OOS rows in training; B: none, threshold on in-scope
# validation), in one run on the same splits. Train time includes embedding the training and
# validation texts. Peers (fastText, scikit-learn) are in cs_bench.sh.
# Usage: bench/cs_encoder.sh [BUILD_DIR] [ENCODER.lpm]
#   ENCODER defaults to BUILD_DIR/encoder/minilm.lpm (scripts/setup installs it there).
#   CS_BENCH_SKIP_TFIDF=1 skips the TF-IDF-only rows; CS_PROTOCOLS (default "A B") picks the
#   protocols; CS_FINETUNE=lora|full fine-tunes the encoder first (`--finetune`), with
#   CS_FT_EPOCHS / CS_FT_STEPS passed as --ft-epochs / --ft-steps; CS_REFIT=1 adds --refit and
#   CS_OOS_MAX_LOSS=F --oos-max-loss F to every model (issue 12's CLINC row: CS_FINETUNE=full
#   CS_REFIT=1 CS_OOS_MAX_LOSS=0.0025 CS_PROTOCOLS=A CS_BENCH_SKIP_TFIDF=1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
enc=${2:-$build/encoder/minilm.lpm}
bin="$build/bin/lepton-customer-service"
data=${LEPTON_SHARED_DATA:-$root/../shared/data}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive LEPTON_LOG=info
now() { date +%s.%N; }
[ -s "$enc" ] || { echo "no encoder at $enc (run scripts/setup or lepton encoder install)"; exit 1; }

echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"
c=$data/clinc150
awk -F'\t' 'NR == 1 || $1 != "oos"' "$c/train.tsv" >"$work/train_B.tsv"
awk -F'\t' 'NR == 1 || $1 != "oos"' "$c/val.tsv" >"$work/val_B.tsv"
ft=(); [ -n "${CS_FINETUNE:-}" ] && ft=(--finetune "$CS_FINETUNE")
[ -n "${CS_FT_EPOCHS:-}" ] && ft+=(--ft-epochs "$CS_FT_EPOCHS")
[ -n "${CS_FT_STEPS:-}" ] && ft+=(--ft-steps "$CS_FT_STEPS")
common=()
[ -n "${CS_REFIT:-}" ] && common+=(--refit)
[ -n "${CS_OOS_MAX_LOSS:-}" ] && common+=(--oos-max-loss "$CS_OOS_MAX_LOSS")
for proto in ${CS_PROTOCOLS:-A B}; do
  if [ $proto = A ]; then tr=$c/train.tsv; va=$c/val.tsv; else tr=$work/train_B.tsv; va=$work/val_B.tsv; fi
  for model in encoder tfidf; do
    [ "$model" = tfidf ] && [ -n "${CS_BENCH_SKIP_TFIDF:-}" ] && continue
    extra=(); [ "$model" = encoder ] && extra=(--encoder "$enc" "${ft[@]}")
    t0=$(now)
    "$bin" train --data "$tr" --valid "$va" "${extra[@]}" "${common[@]}" --out "$work/m_$proto.lpm" \
      2>"$work/train_${proto}_$model.log"
    t1=$(now)
    grep -h "validation in-scope\|TF-IDF weight\|embedded\|fine-tun\|finetune\|refit" \
      "$work/train_${proto}_$model.log" || true
    tail -1 "$work/train_${proto}_$model.log"
    t2=$(now)
    ev=$("$bin" eval --model "$work/m_$proto.lpm" --data "$c/test.tsv" --json 2>/dev/null)
    t3=$(now)
    printf '{"tool":"lepton %s%s","protocol":"%s","train_s":%.2f,"eval_s":%.2f,"load":"%s","eval":%s}\n' \
      "$model" "${CS_FINETUNE:+ --finetune $CS_FINETUNE}${CS_REFIT:+ --refit}" "$proto" "$(echo "$t1 - $t0" | bc)" \
      "$(echo "$t3 - $t2" | bc)" \
      "$(cut -d' ' -f1-3 /proc/loadavg)" "$ev"
  done
done
