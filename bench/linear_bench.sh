#!/usr/bin/env bash
# Logistic regression (multinomial, L2, lbfgs) on CLINC150 TF-IDF: Lepton vs scikit-learn, in
# one run. bench/linear_sklearn.py builds the TF-IDF CSR (TfidfVectorizer defaults, all 151
# labels incl. "oos"), writes it to bench/out/ and times scikit-learn; bench/linear_bench.c
# reads the same CSR and times Lepton with the same C, tol and max_iter. Both single-threaded
# (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1, Lepton threads=1) so the ratio compares
# algorithms, not core counts, on a shared machine.
#   usage: bench/linear_bench.sh [build dir]     (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}/clinc150
out=$root/bench/out
C=10 TOL=1e-4 MAX_ITER=1000
mkdir -p "$out"
cores=$(nproc)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive LEPTON_LOG=error
cmake --build "$build" --target bench_linear_bench -j2 >/dev/null
echo "machine: $cores cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "settings: C=$C tol=$TOL max_iter=$MAX_ITER, 1 thread each"
/usr/bin/python3 "$root/bench/linear_sklearn.py" "$data" "$out" "$C" "$TOL" "$MAX_ITER"
lp=$("$build/bench/linear_bench" "$out" "$C" "$TOL" "$MAX_ITER" 1)
echo "$lp"
read -r sk_s sk_cpu sk_acc sk_it <"$out/sklearn_logistic.txt"
lp_s=$(echo "$lp" | sed -E 's/.*fit ([0-9.]+) s.*/\1/')
lp_cpu=$(echo "$lp" | sed -E 's/.*\(([0-9.]+) s CPU\).*/\1/')
awk -v a="$sk_s" -v b="$lp_s" -v c="$sk_cpu" -v d="$lp_cpu" \
  'BEGIN { printf "fit time ratio sklearn / lepton: %.2f wall, %.2f CPU\n", a / b, c / d }'
