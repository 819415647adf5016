#!/usr/bin/env bash
# test_recommend_device.sh - `lepton-recommend train --device cpu|cuda|auto [--deterministic]`
# on a tiny generated shop: cpu trains als and bpr; auto says which table it picked; cuda trains
# when auto picked cuda and otherwise fails with one line saying why and writes no model; a bad
# device and --device cuda for itemknn are usage errors (exit 2), never a crash.
set -u
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}"
rec="$bin/lepton-recommend"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { local name=$1; shift; if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi; }
one_line() { test "$(printf '%s' "$1" | wc -l)" -eq 0 && test -n "$1"; }

"$bin/lepton-gen-shop" --out "$dir/shop" --seed 5 --users 60 --items 40 >/dev/null
tr=(train --data "$dir/shop/train.csv" --type-col type --factors 8 --iterations 3)

for m in als bpr; do
  "$rec" "${tr[@]}" --model $m --device cpu --deterministic --out "$dir/$m.lpm" >/dev/null 2>&1
  rc=$?
  check "--device cpu trains $m (exit $rc)" test "$rc" -eq 0 -a -s "$dir/$m.lpm"
done

out=$("$rec" "${tr[@]}" --model als --device auto --out "$dir/auto.lpm" 2>&1); rc=$?
check "--device auto trains (exit $rc)" test "$rc" -eq 0
picked=$(sed -nE 's/.*--device auto: training on ([a-z]+).*/\1/p' <<<"$out")
check "--device auto says what it picked ('$picked')" test "$picked" = cpu -o "$picked" = cuda

err=$("$rec" "${tr[@]}" --model bpr --device cuda --out "$dir/cuda.lpm" 2>&1 >/dev/null); rc=$?
if [ "$picked" = cuda ]; then
  check "--device cuda trains on the GPU (exit $rc)" test "$rc" -eq 0
else
  check "--device cuda without a GPU fails (exit $rc)" test "$rc" -ne 0 -a "$rc" -lt 128
  check "--device cuda error is one line" one_line "$err"
  check "--device cuda error says why: $err" grep -qE "no CUDA (device|backend)" <<<"$err"
  check "--device cuda wrote no model" test ! -e "$dir/cuda.lpm"
fi

err=$("$rec" "${tr[@]}" --device tpu --out "$dir/x.lpm" 2>&1 >/dev/null); rc=$?
check "--device tpu is a usage error (exit $rc)" test "$rc" -eq 2
check "--device tpu names the choices" grep -q "not cpu, cuda or auto" <<<"$err"
err=$("$rec" "${tr[@]}" --model itemknn --device cuda --out "$dir/x.lpm" 2>&1 >/dev/null); rc=$?
check "--device cuda --model itemknn is a usage error (exit $rc)" test "$rc" -eq 2
check "--device cuda --model itemknn says als and bpr only" grep -q "only als and bpr" <<<"$err"
test "$fails" -eq 0
