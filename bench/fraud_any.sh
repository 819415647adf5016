#!/bin/sh
# lepton-fraud against XGBoost on any labelled transaction file pair, side by side in one run
# (issue 6: "labelled risk data you have not seen, against XGBoost"): lepton-fraud train on
# TRAIN with only the options given (its defaults otherwise), eval on TEST; the peer
# (bench/fraud_xgboost_any.py) on the same raw columns. Prints one JSON line each, with the
# train wall time.
#   usage: bench/fraud_any.sh BUILD_DIR TRAIN TEST LABEL [lepton-fraud train options...]
#   DROP=a,b  columns the peer leaves out too (pass --drop-cols a,b to lepton-fraud yourself)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 4 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
build=$1 train=$2 test=$3 label=$4
shift 4
export OMP_WAIT_POLICY=passive
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
t0=$(date +%s.%N)
"$build/bin/lepton-fraud" train --data "$train" --label "$label" --threads 2 "$@" \
    --out "$out/m.lpm" 2>"$out/train.log" || { cat "$out/train.log" >&2; exit 1; }
t1=$(date +%s.%N)
grep -v '^{' "$out/train.log" >&2 || true
printf 'lepton-fraud (train %.2f s): ' "$(echo "$t1 - $t0" | bc)"
"$build/bin/lepton-fraud" eval --model "$out/m.lpm" --data "$test" --json
printf 'peer: '
/usr/bin/python3 "$here/fraud_xgboost_any.py" "$train" "$test" "$label" "${DROP:-}" 2
