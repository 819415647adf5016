#!/usr/bin/python3
"""Benchmark lp_gbdt (bench/gbdt_bench.c) against XGBoost hist on the same synthetic data.

Writes a seeded binary classification set once (1,000,000 train + 200,000 test rows, 20
float32 features, ~2% missing in five of them, label drawn from a logistic model with
interactions and thresholds) as raw float32 files under bench/out/, trains XGBoost
(tree_method=hist, grow_policy=lossguide, same parameters as the C side) and runs the C
benchmark binary on the same files. Prints one JSON line per tool and a summary.

usage: OMP_WAIT_POLICY=passive /usr/bin/python3 bench/gbdt_xgboost.py BUILD_DIR [threads]
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "out")
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "build")
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
N_TRAIN, N_TEST, D, SEED = 1_000_000, 200_000, 20, 20240601
ROUNDS, LEAVES, DEPTH = 100, 31, 8


def make_data():
    rng = np.random.default_rng(SEED)
    n = N_TRAIN + N_TEST
    X = rng.standard_normal((n, D), dtype=np.float32)
    X[:, 5] = rng.exponential(1.0, n).astype(np.float32)
    X[:, 6] = rng.integers(0, 10, n).astype(np.float32)
    f = (1.2 * X[:, 0] - 0.8 * X[:, 1] + np.where(X[:, 2] > 0.5, 1.0, -0.5) * X[:, 3]
         + 0.6 * np.sin(2.0 * X[:, 4]) + 0.3 * np.log1p(X[:, 5]) - 0.2 * (X[:, 6] % 3)
         + 0.5 * X[:, 7] * X[:, 8] + 0.25 * X[:, 9] ** 2 - 0.25)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-f))).astype(np.float32)
    for j in (1, 3, 10, 11, 12):
        X[rng.random(n) < 0.02, j] = np.nan
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def ensure_data():
    meta = os.path.join(out, "gbdt_meta.txt")
    if os.path.exists(meta):
        return
    os.makedirs(out, exist_ok=True)
    Xtr, ytr, Xte, yte = make_data()
    for name, a in (("train_X", Xtr), ("train_y", ytr), ("test_X", Xte), ("test_y", yte)):
        np.ascontiguousarray(a, dtype="<f4").tofile(os.path.join(out, "gbdt_%s.f32" % name))
    with open(meta, "w") as f:
        f.write("%d %d %d\n" % (N_TRAIN, N_TEST, D))


def load(name, shape):
    return np.fromfile(os.path.join(out, "gbdt_%s.f32" % name), dtype="<f4").reshape(shape)


def run_xgboost():
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score
    Xtr, ytr = load("train_X", (N_TRAIN, D)), load("train_y", (N_TRAIN,))
    Xte, yte = load("test_X", (N_TEST, D)), load("test_y", (N_TEST,))
    t0 = time.perf_counter()
    dtr = xgb.DMatrix(Xtr, label=ytr, missing=np.nan, nthread=threads)
    dmatrix_s = time.perf_counter() - t0
    params = dict(objective="binary:logistic", tree_method="hist", grow_policy="lossguide",
                  max_leaves=LEAVES, max_depth=DEPTH, eta=0.1, reg_lambda=1.0,
                  min_child_weight=1.0, max_bin=255, nthread=threads, seed=1,
                  eval_metric="auc")
    t0 = time.perf_counter()
    bst = xgb.train(params, dtr, num_boost_round=ROUNDS)
    fit_s = time.perf_counter() - t0
    dte = xgb.DMatrix(Xte, missing=np.nan, nthread=threads)
    t0 = time.perf_counter()
    p = bst.predict(dte)
    pred_s = time.perf_counter() - t0
    return dict(tool="xgboost", version=xgb.__version__, threads=threads, rounds=ROUNDS,
                max_leaves=LEAVES, max_depth=DEPTH, n_train=N_TRAIN, d=D,
                dmatrix_s=round(dmatrix_s, 3), fit_s=round(fit_s, 3),
                fit_plus_dmatrix_s=round(fit_s + dmatrix_s, 3), predict_batch_s=round(pred_s, 3),
                test_auc=round(float(roc_auc_score(yte, p)), 5))


def run_lepton():
    exe = os.path.join(build, "bench", "gbdt_bench")
    res = subprocess.run([exe, out, str(threads), str(ROUNDS), str(LEAVES), str(DEPTH)],
                         check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    ensure_data()
    lp = run_lepton()
    xg = run_xgboost()
    print(json.dumps(lp))
    print(json.dumps(xg))
    print("fit time lepton/xgboost (xgboost incl. DMatrix): %.2f  (train only: %.2f); "
          "AUC lepton %.5f xgboost %.5f (diff %+.5f); lepton single-row median %.2f us"
          % (lp["fit_s"] / xg["fit_plus_dmatrix_s"], lp["fit_s"] / xg["fit_s"], lp["test_auc"],
             xg["test_auc"], lp["test_auc"] - xg["test_auc"], lp["row_latency_median_us"]))


if __name__ == "__main__":
    main()
