#!/usr/bin/env bash
# LoRA against full fine-tuning of the same nn: the trainer's peak allocation (trainable
# vector's gradients and AdamW state, activations, batch buffers; the frozen base and the data
# are not counted: lp_finetune_stats.peak_bytes), trainable parameters, training time, and the
# output file size. Base: a 512-512 MLP trained on the first 2000 rows of data/customers.csv;
# new data: the last 1000 rows (800 train / 200 validation, seeded). One thread each.
#   usage: bench/finetune_memory.sh [build dir]     (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
data=$root/data/customers.csv
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cores=$(nproc) # before OMP_NUM_THREADS, which nproc honours
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive LEPTON_LOG=error
echo "machine: $cores cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
head -2001 "$data" >"$dir/base.csv"
{ head -1 "$data"; tail -n +2002 "$data"; } >"$dir/new.csv"
"$build/bin/lepton" train --data "$dir/base.csv" --label churned --model nn --drop customer_id \
  --param hidden=512,512 --param epochs=5 --out "$dir/base.lpm" >/dev/null 2>&1
echo "base model: $(wc -c <"$dir/base.lpm") bytes"
for m in lora full; do
  out=$dir/$m.$([ $m = lora ] && echo lpa || echo lpm)
  "$build/bin/lepton" finetune --base "$dir/base.lpm" --data "$dir/new.csv" --drop customer_id \
    --method $m --rank 8 --targets 0,1 --epochs 5 --json --out "$out" >"$dir/$m.json"
  echo "$m: $(cat "$dir/$m.json")"
done
peak() { sed -E 's/.*"trainer_peak_bytes":([0-9.e+]+).*/\1/' "$dir/$1.json"; }
secs() { sed -E 's/.*"train_seconds":([0-9.e+-]+).*/\1/' "$dir/$1.json"; }
awk -v l="$(peak lora)" -v f="$(peak full)" -v ls="$(secs lora)" -v fs="$(secs full)" \
  'BEGIN { printf "peak bytes lora / full: %.3f; training time lora / full: %.3f\n", l / f, ls / fs }'
