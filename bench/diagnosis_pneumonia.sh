#!/usr/bin/env bash
# diagnosis_pneumonia.sh - the PneumoniaMNIST part of diagnosis_bench.sh over several seeds, with
# an optional "before" build and the PyTorch peer (bench/diagnosis_torch.py, the same CNN) in the
# same run. Every lepton run uses the DEFAULT settings of
#   lepton-diagnosis train --images ... --labels ... --valid ... --valid-labels ...
# (only DX_SEED and DX_THREADS=2 set), timed by /usr/bin/time (user + sys CPU and wall), then
# `eval` on the official test split. One line per run: tool, seed, CPU s, wall s, load average
# at its start, the validation calibration (T, ECE before -> after) and the test JSON.
# The before build runs once, with the first seed (builds before DX_SEED train with seed 42).
# usage: bench/diagnosis_pneumonia.sh [BUILD_DIR=build] [BEFORE_BUILD_DIR] (env: SEEDS="42 7 1",
#        TORCH=1 runs the peer with the first seed, TORCH=all with each, TORCH=0 never; EPOCHS=12
#        for the peer; LEPTON_SHARED_DATA)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
after="${1:-$root/build}/bin/lepton-diagnosis"
before=${2:+$2/bin/lepton-diagnosis}
seeds=${SEEDS:-42 7 1}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}
p=$data/pneumoniamnist
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 LEPTON_PROGRESS=0
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
  "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"

run() { # NAME BINARY SEED
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  DX_SEED=$3 DX_THREADS=2 /usr/bin/time -f '%U %S %e' -o "$tmp/time" "$2" train \
    --images "$p/train-images-idx3-ubyte" --labels "$p/train-labels-idx1-ubyte" \
    --valid "$p/val-images-idx3-ubyte" --valid-labels "$p/val-labels-idx1-ubyte" \
    --out "$tmp/m.lpm" >"$tmp/train"
  local cal test
  cal=$(sed -n 2p "$tmp/train" | $py -c 'import json,sys; c=json.load(sys.stdin)["calibration"]; print("T %.3f val ECE %.4f -> %.4f" % (c["temperature"], c["ece_before"], c["ece_after"]))')
  test=$("$2" eval --model "$tmp/m.lpm" --images "$p/test-images-idx3-ubyte" \
    --labels "$p/test-labels-idx1-ubyte" --json)
  read -r u s e <"$tmp/time"
  printf '%s seed %s: cpu %.1f s, wall %.1f s, load %s, %s, test %s\n' "$1" "$3" \
    "$(echo "$u + $s" | bc)" "$e" "$load" "$cal" "$test"
}

for seed in $seeds; do
  run after "$after" "$seed"
  # a build before DX_SEED existed always trains with seed 42: run it once
  if [ -n "$before" ] && [ "$seed" = "${seeds%% *}" ]; then run before "$before" "$seed"; fi
  if [ "${TORCH:-1}" = all ] || { [ "${TORCH:-1}" = 1 ] && [ "$seed" = "${seeds%% *}" ]; }; then
    echo "pytorch seed $seed (load $(cut -d' ' -f1 /proc/loadavg)): $($py "$root/bench/diagnosis_torch.py" "$p" "${EPOCHS:-12}" "$seed")"
  fi
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
