#!/usr/bin/python3
"""treeshap_xgboost.py - the peer side of bench/treeshap_bench.sh: writes the seeded synthetic
data both tools use (raw little-endian float32 under OUT/, so both read identical bytes), then
fits XGBoost 1.7 with the same model shape (100 trees of at most 64 leaves, lossguide, hist,
255 bins, lr 0.1, lambda 1) and times pred_contribs (its exact TreeSHAP, Lundberg et al. 2020)
on the explain rows with nthread threads. Prints one JSON line.

usage: treeshap_xgboost.py OUT [threads=2] [max_depth=6] [n_train=20000] [n_explain=20000] [d=30]
(max_depth 0 = unlimited: lossguide trees of 64 leaves grow much deeper)
"""
import json
import os
import sys
import time

import numpy as np
import xgboost as xgb


def make(n, d, rng):
    X = rng.uniform(-1.0, 1.0, size=(n, d)).astype(np.float32)
    # a nonlinear label with interactions, so trees use many features and fill 64 leaves
    s = (np.sin(3 * X[:, 0]) + X[:, 1] * X[:, 2] * 2 + np.abs(X[:, 3]) - X[:, 4] ** 2
         + 0.5 * X[:, 5:15].sum(axis=1) * X[:, 15] + 0.3 * rng.normal(size=n))
    y = (s > np.median(s)).astype(np.float32)
    return X, y


def main():
    out = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    depth = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    ntr = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
    nex = int(sys.argv[5]) if len(sys.argv) > 5 else 20000
    d = int(sys.argv[6]) if len(sys.argv) > 6 else 30
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20260)
    Xtr, ytr = make(ntr, d, rng)
    Xex, _ = make(nex, d, rng)
    Xtr.tofile(os.path.join(out, "ts_train_X.f32"))
    ytr.tofile(os.path.join(out, "ts_train_y.f32"))
    Xex.tofile(os.path.join(out, "ts_explain_X.f32"))
    with open(os.path.join(out, "ts_meta.txt"), "w") as f:
        f.write(f"{ntr} {nex} {d}\n")
    params = {"objective": "binary:logistic", "tree_method": "hist", "grow_policy": "lossguide",
              "max_leaves": 64, "max_depth": depth, "max_bin": 255, "eta": 0.1, "lambda": 1.0,
              "min_child_weight": 1.0, "nthread": threads, "seed": 1}
    bst = xgb.train(params, xgb.DMatrix(Xtr, label=ytr, nthread=threads), num_boost_round=100)
    dex = xgb.DMatrix(Xex, nthread=threads)
    leaves = [t.count("leaf=") for t in bst.get_dump()]
    best = None
    for _ in range(3):
        t0 = time.perf_counter()
        phi = bst.predict(dex, pred_contribs=True)
        dt = time.perf_counter() - t0
        best = dt if best is None or dt < best else best
    margin = bst.predict(dex, output_margin=True)
    gap = float(np.max(np.abs(phi.sum(axis=1) - margin)))
    # single-row calls (the request path), 500 rows one at a time
    one = [xgb.DMatrix(Xex[i:i + 1], nthread=1) for i in range(500)]
    bst.set_param({"nthread": 1})
    t0 = time.perf_counter()
    for m in one:
        bst.predict(m, pred_contribs=True)
    row_us = (time.perf_counter() - t0) / 500 * 1e6
    print(json.dumps({"tool": "xgboost " + xgb.__version__, "threads": threads, "trees": 100,
                      "max_depth": depth,
                      "max_leaves_seen": max(leaves), "mean_leaves": float(np.mean(leaves)),
                      "rows": nex, "d": d, "rows_per_s": nex / best,
                      "single_row_us": row_us, "completeness_gap": gap}))


if __name__ == "__main__":
    main()
