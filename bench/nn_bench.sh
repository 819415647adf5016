#!/usr/bin/env bash
# Fashion-MNIST MLP 784-512-512-10, batch 256, Adam: lepton (bench/nn_bench.c) and PyTorch
# (bench/nn_torch.py) in ONE run, both at the same thread count, then the epoch-time ratio.
# usage: bench/nn_bench.sh [EPOCHS [THREADS]]   (defaults 3 and 2). Skips (exit 0 with a
# message) when the Debian package dataset-fashion-mnist is not installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
epochs=${1:-3}
threads=${2:-2}
data=${LEPTON_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
  echo "skip: Fashion-MNIST not found in $data (apt-get install dataset-fashion-mnist)"
  exit 0
fi
build=$root/build-bench
"$root/scripts/build" "$build" -DLEPTON_CUDA=OFF >/dev/null # a static lib without the CUDA runtime
cc -std=c11 -O2 -D_GNU_SOURCE -I"$root/libcore/include" -I"$root/libcore/src" \
  "$root/bench/nn_bench.c" -o "$build/nn_bench" "$build/liblepton.a" -fopenmp \
  $(pkg-config --libs openblas lapacke libpcre2-8 libmicrohttpd libcjson sqlite3 zlib libpng \
    libjpeg) -lpthread -lm

# nn_bench starts as the lepton programs do (lp_process_tune in base.h): on a CPU that Debian's
# OpenBLAS 0.3.21 does not recognise it picks the AVX-512/AVX2 kernel (OPENBLAS_CORETYPE), and it
# lets OpenBLAS's idle workers sleep (OPENBLAS_THREAD_TIMEOUT=4); a value the caller exports
# wins. Debian's PyTorch does its matrix products in the same OpenBLAS (libblas.so.3, BLAS_INFO
# generic), so the peer runs with the same two settings: the core lepton's run reports, and the
# timeout.
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads OMP_WAIT_POLICY=passive LEPTON_PROGRESS=0
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== lepton ($threads threads)"
"$build/nn_bench" "$data" "$epochs" | tee "$build/nn_lepton.log"
core=$(sed -n 's/^openblas core \([A-Za-z0-9_]*\),.*/\1/p' "$build/nn_lepton.log")
echo "== pytorch ($threads threads, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$core}, OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-4})"
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$core} OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-4} \
  /usr/bin/python3 "$root/bench/nn_torch.py" "$data" "$epochs" "$threads" | tee "$build/nn_torch.log"
ours=$(sed -n 's/^RESULT lepton first_epoch_s=\([0-9.]*\) mean_epoch_s=\([0-9.]*\).*/\2/p' \
  "$build/nn_lepton.log")
theirs=$(sed -n 's/^RESULT torch first_epoch_s=\([0-9.]*\) mean_epoch_s=\([0-9.]*\).*/\2/p' \
  "$build/nn_torch.log")
awk -v a="$ours" -v b="$theirs" \
  'BEGIN { printf "== mean epoch: lepton %.3f s, torch %.3f s, ratio lepton/torch %.2fx\n", a, b, a / b }'
