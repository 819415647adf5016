#!/usr/bin/env bash
# run-device.sh - ONE call of the device tool: the GPU tests and the GPU benchmarks (Lepton and
# PyTorch side by side on the same GPU), from executables built here by prepare-device.sh.
#   here:   tests/gpu/prepare-device.sh
#   device: run(command="bash tests/gpu/run-device.sh", carry=[".device"], timeout_s=540)
# Writes under $OUT (or .device/out): gpu.txt, tests.log, bench.log, summary.txt; prints the
# summary table last. Meant to finish in about 6 minutes (each step has its own timeout).
# For a partial rerun inside the same lease, RUN_TESTS=0, RUN_BENCH=0 or RUN_ENCODER=0 leave out
# the GPU tests, the training/recommender benchmarks or the encoder benchmarks.
# Exit status: the number of failed tests (benchmarks never fail the run). Where nvidia-smi
# exists a skipped GPU test counts as failed: there it means the device was not usable.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
dev=$root/.device
out=${OUT:-$dev/out}
mkdir -p "$out"
export LD_LIBRARY_PATH="$dev/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_WAIT_POLICY=passive LEPTON_LOG=warn LEPTON_PROGRESS=0 CMOCKA_MESSAGE_OUTPUT=stdout
export LEPTON_FIXTURES=$root/tests/fixtures LEPTON_SOURCE_DIR=$root LEPTON_BIN=$dev/bin
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
summary=$out/summary.txt
tlog=$out/tests.log
blog=$out/bench.log
: >"$summary"
: >"$tlog"
: >"$blog"
if [ ! -d "$dev/tests" ]; then
  echo "run-device: $dev/tests missing: run tests/gpu/prepare-device.sh first"
  exit 1
fi

gpu_here=0
if command -v nvidia-smi >/dev/null; then
  gpu_here=1
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
    >"$out/gpu.txt" 2>&1
else
  echo "no nvidia-smi on this machine" >"$out/gpu.txt"
fi
echo "== $(tail -1 "$out/gpu.txt")" | tee -a "$summary"
missing=$(ldd "$dev"/tests/* "$dev"/bench/* "$dev/bin/lepton" | grep "not found" | sort -u)
[ -n "$missing" ] && echo "missing libraries: $missing" | tee -a "$summary"

# ---- tests ----
failed=0
run_test() { # run_test NAME TIMEOUT CMD...
  local name=$1 limit=$2; shift 2
  local t0 rc secs
  t0=$(date +%s.%N)
  echo "===== $name" >>"$tlog"
  timeout "$limit" "$@" >>"$tlog" 2>&1
  rc=$?
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  case $rc in
    0) st=PASS ;;
    77) if [ "$gpu_here" = 1 ]; then # a skip on the GPU machine means the device was unusable
          st="FAIL (skipped)"; failed=$((failed + 1))
        else
          st=SKIP
        fi ;;
    124) st="FAIL (timeout ${limit}s)"; failed=$((failed + 1)) ;;
    *) st="FAIL (exit $rc)"; failed=$((failed + 1)) ;;
  esac
  printf "test  %-22s %-18s %6.1f s\n" "$name" "$st" "$secs" | tee -a "$summary"
}
if [ "${RUN_TESTS:-1}" = 1 ]; then
for t in test_cuda_backend test_cuda_parity test_cuda_transformer test_cuda_grad test_cuda_nn_grad test_cuda_nn \
    test_cuda_fault test_cuda_encoder test_cuda_batchnorm test_cuda_cnn test_cuda_mf \
    test_encoder_train_cuda; do
  run_test "$t" 150 "$dev/tests/$t"
done
run_test cli_test_device_cli 120 bash "$root/tests/cli/test_device_cli.sh"
run_test cli_test_diagnosis_device 120 bash "$root/tests/cli/test_diagnosis_device.sh"
run_test cli_test_recommend_device 120 bash "$root/tests/cli/test_recommend_device.sh"
fi

# ---- benchmarks: Lepton then PyTorch, same model, same GPU ----
bench() { # bench CMD...   (appends RESULT lines to bench.log)
  echo "\$ $*" >>"$blog"
  timeout 90 "$@" >>"$blog" 2>&1 || echo "(exit $?)" >>"$blog"
}
if [ "${RUN_BENCH:-1}" = 1 ]; then
for batch in 256 4096; do
  steps=20
  [ "$batch" = 4096 ] && steps=5
  bench "$dev/bench/mlp_bench" cuda mlp "$batch" "$steps" 15
  bench "$py" "$root/bench/gpu/mlp_torch.py" mlp "$batch" "$steps" 15 host
  bench "$py" "$root/bench/gpu/mlp_torch.py" mlp "$batch" "$steps" 15 resident
done
bench "$dev/bench/mlp_bench" cuda softmax 256 50 15
bench "$py" "$root/bench/gpu/mlp_torch.py" softmax 256 50 15 host
bench "$py" "$root/bench/gpu/mlp_torch.py" softmax 256 50 15 resident
bench "$dev/bench/mlp_bench" cpu mlp 256 5 3
bench "$dev/bench/gemm_bench" cuda 4096 10
bench "$dev/bench/gemm_bench" cuda-tf32 4096 10
bench "$py" "$root/bench/gpu/mlp_torch.py" gemm 4096 fp32 10
bench "$py" "$root/bench/gpu/mlp_torch.py" gemm 4096 tf32 10
# CNN conv32-conv64-fc128 on 1x28x28, batch 256
bench "$dev/bench/mlp_bench" cuda cnn 256 10 10
bench "$py" "$root/bench/gpu/mlp_torch.py" cnn 256 10 10 host
bench "$py" "$root/bench/gpu/mlp_torch.py" cnn 256 10 10 resident
# recommender on an ML-1M-shaped table (mf_bench writes it; the peer reads the same file)
mfdata=$out/ml1m-shape.bin
bench "$dev/bench/mf_bench" cuda als 64 10 "$mfdata"
bench "$dev/bench/mf_bench" cuda bpr 64 5
bench "$dev/bench/mf_bench" cuda bpr-det 64 5
bench "$py" "$root/bench/gpu/mf_torch.py" als "$mfdata" 64 10
bench "$py" "$root/bench/gpu/mf_torch.py" bpr "$mfdata" 64 5 8192
bench "$py" "$root/bench/gpu/mf_torch.py" bpr "$mfdata" 64 5 65536
rm -f "$mfdata" # 8 MB: keep $OUT small
fi
# the MiniLM sentence encoder (issue 12) on a MiniLM-shaped BERT with random weights (the real
# 90 MB do not travel; speed does not depend on the values): embeddings at batch 64 with the
# CUDA-against-CPU parity of 512 of them, and one LoRA step at batch 32 (rank 8, all six
# projections, CLINC150's 151 classes), each beside PyTorch (+ PEFT) on the same GPU
clinc=$dev/data/clinc_train.tsv
mdir=/tmp/lepton-minilm-random
if [ "${RUN_ENCODER:-1}" != 1 ]; then
  :
elif [ -f "$clinc" ]; then
  bench "$py" "$root/bench/gpu/minilm_random.py" "$mdir"
  bench "$dev/bench/encoder_bench" "$mdir" "$clinc" 4096 64 cuda
  bench "$py" "$root/bench/gpu/encoder_torch_gpu.py" embed "$mdir" "$clinc" 4096 64
  bench "$dev/bench/encoder_lora_step" "$mdir" "$clinc" 32 3 23 cuda
  bench "$py" "$root/bench/gpu/encoder_torch_gpu.py" lora "$mdir" "$clinc" 32 20
else
  echo "(no $clinc: encoder benchmarks skipped)" >>"$blog"
fi

{
  echo
  echo "benchmarks (median of timed repeats after warm-up):"
  echo "  samples/s of training steps, TFLOP/s of sgemm"
  printf "%-16s %-6s %-8s %6s %14s %12s\n" peer table model batch samples/s ms/step
  awk '$1 == "RESULT" && $3 != "gemm" && $4 !~ /^(bpr|als)/ && $6 ~ /^samples_per_s=/ {
         split($6, a, "="); split($7, b, "=");
         printf "%-16s %-6s %-8s %6s %14s %12s\n", $2, $3, $4, $5, a[2], b[2] }' "$blog"
  printf "%-16s %-10s %6s %10s\n" peer gemm n TFLOP/s
  awk '$1 == "RESULT" && $3 == "gemm" { split($6, a, "=");
         printf "%-16s %-10s %6s %10s\n", $2, $4, $5, a[2] }' "$blog"
  echo "recommender, 64 factors, ML-1M-shaped table: BPR triples/s per epoch, ALS user half-step ms"
  printf "%-16s %-6s %-14s %8s %14s %10s\n" peer table mode factors triples/s ms
  awk '$1 == "RESULT" && $4 ~ /^(bpr|als)/ {
         t = "-"; m = "-";
         for (f = 6; f <= NF; f++) { split($f, a, "=");
           if (a[1] == "triples_per_s") t = a[2]; if (a[1] == "ms") m = a[2] }
         printf "%-16s %-6s %-14s %8s %14s %10s\n", $2, $3, $4, $5, t, m }' "$blog"
  echo "encoder, MiniLM shape with random weights: sentences/s at batch 64, LoRA step at batch 32"
  grep -E '^RESULT (lepton-[a-z]+|torch-(cuda|cpu)|parity-[a-z]+|torch-peft-[a-z]+) ' "$blog" | cut -c8- \
    | cut -c1-110
  echo "failed tests: $failed"
} | tee -a "$summary"
# Last, as it is the longest step and the table above is already written: CLINC150 intent
# training with the encoder fine-tuned on the GPU (LoRA, the default three epochs, random
# weights: the time is what counts, the accuracy means nothing), TF-IDF and head on the CPU.
if [ "${RUN_ENCODER:-1}" = 1 ] && [ -s "$mdir/encoder.lpm" ] && [ -f "$dev/data/clinc_val.tsv" ]; then
  t0=$(date +%s.%N)
  echo "\$ lepton-customer-service train ... --finetune lora --device cuda" >>"$blog"
  timeout 240 "$dev/bin/lepton-customer-service" train --data "$clinc" \
    --valid "$dev/data/clinc_val.tsv" --encoder "$mdir/encoder.lpm" --finetune lora \
    --device cuda --out /tmp/lepton-cs-gpu.lpm >>"$blog" 2>&1
  rc=$?
  awk -v a="$t0" -v b="$(date +%s.%N)" -v rc="$rc" 'BEGIN {
    printf "RESULT lepton-cuda clinc150_lora_train_s=%.1f exit=%d (3 epochs, random weights)\n",
      b - a, rc }' | tee -a "$blog" "$summary"
fi
exit "$failed"
