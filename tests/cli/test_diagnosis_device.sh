#!/usr/bin/env bash
# test_diagnosis_device.sh - `lepton-diagnosis train --device auto|cpu|cuda` on a tiny demo
# image set: cpu trains and saves; auto says which table it picked; cuda trains when auto
# picked cuda and otherwise fails with one line saying why (no GPU, or a build without CUDA)
# and writes no model; an unknown device is refused naming the choices.
set -u
bin="${LEPTON_BIN:?}/lepton-diagnosis"
gen="${LEPTON_BIN:?}/lepton-gen-diagnosis"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { local name=$1; shift; if "$@" >/dev/null; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi; }
one_line() { test "$(printf '%s' "$1" | wc -l)" -eq 0 && test -n "$1"; }

"$gen" "$dir/demo" 8 >/dev/null || { echo "FAIL gen"; exit 1; }
tr=(train --images "$dir/demo/images")
export DX_EPOCHS=1 DX_ARCH="conv4bn,pool,fc8"

"$bin" "${tr[@]}" --device cpu --out "$dir/cpu.lpm" >/dev/null 2>&1; rc=$?
check "--device cpu trains (exit $rc)" test "$rc" -eq 0
check "--device cpu saved" test -s "$dir/cpu.lpm"

out=$("$bin" "${tr[@]}" --device auto --out "$dir/auto.lpm" 2>&1); rc=$?
check "--device auto trains (exit $rc)" test "$rc" -eq 0
picked=$(sed -nE 's/.*--device auto: training on ([a-z]+).*/\1/p' <<<"$out")
check "--device auto says what it picked ('$picked')" test "$picked" = cpu -o "$picked" = cuda

err=$("$bin" "${tr[@]}" --device cuda --out "$dir/cuda.lpm" 2>&1 >/dev/null); rc=$?
if [ "$picked" = cuda ]; then
  check "--device cuda trains on the GPU (exit $rc)" test "$rc" -eq 0
else
  check "--device cuda without a GPU fails (exit $rc)" test "$rc" -ne 0 -a "$rc" -lt 128
  check "--device cuda error is one line" one_line "$err"
  check "--device cuda error says why: $err" grep -qE "no CUDA (device|backend)" <<<"$err"
  check "--device cuda wrote no model" test ! -e "$dir/cuda.lpm"
fi

err=$("$bin" "${tr[@]}" --device tpu --out "$dir/x.lpm" 2>&1 >/dev/null); rc=$?
check "--device tpu fails (exit $rc)" test "$rc" -ne 0 -a "$rc" -lt 128
check "--device tpu names the choices" grep -q "expected auto, cpu or cuda" <<<"$err"
test "$fails" -eq 0
