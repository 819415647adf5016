#!/usr/bin/env bash
# recommend_bench.sh - the mf family against peers on MovieLens-100k (ua_train -> ua_test), in
# ONE run: lepton's ALS (Cholesky and CG), BPR, item-kNN and popularity (bench/recommend_bench.c)
# and implicit's ALS (Cholesky and CG), BPR and CosineRecommender plus a NumPy item-kNN
# (bench/recommend_peers.py, in a venv under bench/out/ with `pip install implicit`).
# Every model gets the same data (weights = ratings), the same hyper-parameters and 2 threads;
# BLAS thread pools are pinned to 1 (implicit asks for that). Prints a markdown table with
# precision@10 and NDCG@10 for "all test ratings relevant" and "rating >= 4 relevant" and the
# training seconds; the JSON lines are kept in bench/out/recommend.jsonl.
# Skips (exit 0) when the shared data is absent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data="${LEPTON_SHARED_DATA:-$root/../shared/data}/movielens-100k"
if [ ! -f "$data/ua_train.csv" ]; then
  echo "skip: $data/ua_train.csv not found"
  exit 0
fi
build="${BUILD:-$root/build}"
threads="${THREADS:-2}"
cmake --build "$build" --target bench_recommend_bench lepton-recommend -j2 >/dev/null
venv="$root/bench/out/venv"
mkdir -p "$root/bench/out"
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q implicit || echo "note: pip install implicit failed; implicit peers skipped"
fi
export OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1 LEPTON_LOG=warn MF_REPEATS="${MF_REPEATS:-3}"
# ALS hyper-parameters for the quality rows: chosen by `lepton-recommend tune` on a validation
# split carved from ua_train only (each user's last 5 ratings by time), never on ua_test.
tuned=$("$build/bin/lepton-recommend" tune --data "$data/ua_train.csv" --weight-col rating \
  --time-col timestamp --model als --solver cg --threads "$threads" --trials 18 --holdout 5 \
  --out "$root/bench/out/ml_tuned.lpm")
echo "tune: $tuned"
jnum() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" <<<"$tuned"; }
export MF_FACTORS=$(jnum factors) MF_ITERS=$(jnum iterations) MF_REG=$(jnum regularization) \
  MF_ALPHA=$(jnum alpha)
out="$root/bench/out/recommend.jsonl"
: >"$out"
"$build/bench/recommend_bench" "$data/ua_train.csv" "$data/ua_test.csv" "$threads" 4 | tee -a "$out"
"$venv/bin/python" -W ignore "$root/bench/recommend_peers.py" "$data/ua_train.csv" \
  "$data/ua_test.csv" "$threads" 4 | tee -a "$out"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n| model | P@10 all | NDCG@10 all | P@10 r>=4 | NDCG@10 r>=4 | train s |")
print("|---|---:|---:|---:|---:|---:|")
for r in rows:
    if "skipped" in r:
        print("| %s | skipped: %s |||||" % (r["model"], r["skipped"]))
        continue
    print("| %s | %.4f | %.4f | %.4f | %.4f | %.2f |" % (r["model"], r["p10_all"], r["ndcg10_all"],
          r["p10_pos"], r["ndcg10_pos"], r["train_s"]))
PY
