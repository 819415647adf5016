#!/bin/sh
# TreeSHAP throughput: lepton's lp_explainer against XGBoost 1.7's pred_contribs on the same
# seeded synthetic data (bench/treeshap_xgboost.py writes it) and the same model shape (100
# trees, at most 64 leaves, 30 features). Prints both JSON lines; the ratio goes to RESULTS.md.
#   usage: bench/treeshap_bench.sh [BUILD_DIR] [threads] [max_depth=6] [n_explain=20000]
# max_depth 6 gives balanced 64-leaf trees; 0 lets lossguide grow them as deep as it likes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
threads=${2:-2}
depth=${3:-6}
nex=${4:-20000}
export OMP_WAIT_POLICY=passive
out=$here/out
mkdir -p "$out"
printf 'peer: '
/usr/bin/python3 "$here/treeshap_xgboost.py" "$out" "$threads" "$depth" 20000 "$nex"
printf 'lepton: '
"$build/bench/treeshap_bench" "$out" "$threads" "$depth"
