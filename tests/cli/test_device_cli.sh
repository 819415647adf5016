#!/usr/bin/env bash
# test_device_cli.sh - `lepton train --device cuda|cpu|auto`: cpu trains an nn; auto says which
# table it picked; cuda trains when auto picked cuda and otherwise fails with one clear line
# (no GPU, or a build without CUDA); a bad name, --device cuda for a cpu-only family, and a
# --device that contradicts --param device= are one-line usage errors, never a crash.
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
head -801 "$data" >"$dir/train.csv"
nn=(train --data "$dir/train.csv" --label churned --model nn --drop customer_id
    --param epochs=2 --param hidden=16)

out=$("$bin" "${nn[@]}" --device cpu --out "$dir/cpu.lpm" 2>&1); rc=$?
check "--device cpu trains (exit $rc)" test "$rc" -eq 0
check "--device cpu saved" test -s "$dir/cpu.lpm"

out=$("$bin" "${nn[@]}" --device auto --out "$dir/auto.lpm" 2>&1); rc=$?
check "--device auto trains (exit $rc)" test "$rc" -eq 0
picked=$(sed -nE 's/.*--device auto: training on ([a-z]+).*/\1/p' <<<"$out")
check "--device auto says what it picked ('$picked')" test "$picked" = cpu -o "$picked" = cuda

err=$("$bin" "${nn[@]}" --device cuda --out "$dir/cuda.lpm" 2>&1 >/dev/null); rc=$?
if [ "$picked" = cuda ]; then
  check "--device cuda trains on the GPU (exit $rc)" test "$rc" -eq 0
else
  check "--device cuda without a GPU fails (exit $rc)" test "$rc" -ne 0 -a "$rc" -lt 128
  check "--device cuda error is one line" one_line "$err"
  check "--device cuda error says why: $err" grep -qE "no CUDA (device|backend)" <<<"$err"
  check "--device cuda wrote no model" test ! -e "$dir/cuda.lpm"
fi

err=$("$bin" "${nn[@]}" --device tpu --out "$dir/x.lpm" 2>&1 >/dev/null); rc=$?
check "--device tpu is a usage error (exit $rc)" test "$rc" -eq 2
check "--device tpu names the choices" grep -q "expected cuda, cpu or auto" <<<"$err"
err=$("$bin" train --data "$dir/train.csv" --label churned --model gbdt --device cuda \
  --out "$dir/x.lpm" 2>&1 >/dev/null); rc=$?
check "--device cuda --model gbdt fails (exit $rc)" test "$rc" -ne 0 -a "$rc" -lt 128
check "--device cuda --model gbdt says nn only" grep -q "only --model nn" <<<"$err"
err=$("$bin" "${nn[@]}" --param device=cpu --device cuda --out "$dir/x.lpm" 2>&1 >/dev/null)
rc=$?
check "--device contradicting --param device fails (exit $rc)" test "$rc" -eq 2
"$bin" "${nn[@]}" --param device=cpu --out "$dir/p.lpm" >/dev/null 2>&1; rc=$?
check "--param device=cpu still works (exit $rc)" test "$rc" -eq 0
test "$fails" -eq 0
