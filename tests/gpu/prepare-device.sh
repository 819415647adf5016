#!/usr/bin/env bash
# prepare-device.sh - build with CUDA HERE and fill the git-ignored .device/ folder that one
# call of the device tool carries (the device machine cannot build: no headers, no
# libmicrohttpd/cJSON; see /work/shared/DEVICE.md):
#   .device/tests/  the GPU test executables      .device/bench/  the GPU benchmarks
#   .device/bin/    lepton and the apps           .device/lib/    run-time libraries the device
#                                                                 machine lacks
#   .device/data/   CLINC150's train.tsv and val.tsv for the encoder benchmarks (from
#                   ../shared/data when there: ../shared does not travel)
# Executables are copied without debug info. Libraries the device image already has (glibc,
# libstdc++, libgomp, OpenBLAS, zlib, libpng, libjpeg, SQLite, PCRE2, cuBLAS, the driver) stay
# behind; libcuBLASLt alone is 500 MB. The folder must stay well under the 64 MiB a call carries.
#
# usage: tests/gpu/prepare-device.sh [BUILD_DIR]      (default: build, the normal build)
# then:  run(command="bash tests/gpu/run-device.sh", carry=[".device"], timeout_s=540)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
dev=$root/.device
cmake -S "$root" -B "$build" -DLEPTON_CUDA=ON -DLEPTON_WERROR=ON >"$build.configure.log" 2>&1 \
  || { cat "$build.configure.log"; exit 1; }
tests=(test_cuda_backend test_cuda_parity test_cuda_transformer test_cuda_grad test_cuda_nn_grad
       test_cuda_nn test_cuda_fault test_cuda_encoder test_cuda_batchnorm test_cuda_cnn
       test_cuda_mf test_encoder_train_cuda)
benches=(mlp_bench gemm_bench mf_bench)
# the encoder benchmarks (bench/*.c, run with the cuda table there)
enc_benches=(encoder_bench encoder_lora_step)
# the apps whose --device flags the CLI tests exercise, and their demo-data generators
apps=(lepton-diagnosis lepton-gen-diagnosis lepton-recommend lepton-gen-shop)
# and lepton-customer-service, for CLINC150 training time with --device cuda (run-device.sh)
apps+=(lepton-customer-service)
cmake --build "$build" -j2 --target "${tests[@]}" bench_gpu_mlp_bench bench_gpu_gemm_bench \
  bench_gpu_mf_bench bench_encoder_bench bench_encoder_lora_step lepton_cli "${apps[@]}" 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true
rm -rf "$dev"
mkdir -p "$dev/tests" "$dev/bench" "$dev/bin" "$dev/lib" "$dev/data"
exes=()
for t in "${tests[@]}"; do cp "$build/tests/$t" "$dev/tests/"; exes+=("$dev/tests/$t"); done
for b in "${benches[@]}"; do cp "$build/bench/gpu/$b" "$dev/bench/"; exes+=("$dev/bench/$b"); done
for b in "${enc_benches[@]}"; do cp "$build/bench/$b" "$dev/bench/"; exes+=("$dev/bench/$b"); done
clinc=${LEPTON_SHARED_DATA:-$root/../shared/data}/clinc150/train.tsv
if [ -f "$clinc" ]; then
  cp "$clinc" "$dev/data/clinc_train.tsv"
  cp "$(dirname "$clinc")/val.tsv" "$dev/data/clinc_val.tsv"
else
  echo "prepare-device: $clinc not found: the encoder benchmarks will be skipped there" >&2; fi
for a in lepton "${apps[@]}"; do cp "$build/bin/$a" "$dev/bin/"; exes+=("$dev/bin/$a"); done
strip --strip-debug "${exes[@]}"
# Run-time libraries: every dependency not in the device image, plus the two DEVICE.md names.
have=(libc libm libdl libpthread librt ld-linux-x86-64 libgcc_s 'libstdc\+\+' libgomp libopenblas
      liblapack libblas libz libpng16 libjpeg libsqlite3 libpcre2-8 libcuda libcublas libcublasLt
      'libnvidia.*')
present="^($(IFS='|'; echo "${have[*]}"))\.so"
for e in "${exes[@]}"; do ldd "$e"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
  sort -u | while read -r name path; do
    if ! grep -qE "$present" <<<"$name"; then cp -L "$path" "$dev/lib/$name"; fi
  done
for l in libmicrohttpd.so.12 libcjson.so.1; do
  cp -L "/usr/lib/x86_64-linux-gnu/$l" "$dev/lib/"
done
size=$(du -sk "$dev" | cut -f1)
echo "prepared $dev: $((size / 1024)) MiB"
ls "$dev/lib"
if [ "$size" -gt $((48 * 1024)) ]; then
  echo "prepare-device: $dev is over 48 MiB; the device call carries at most 64 MiB" >&2
  exit 1
fi
