#!/usr/bin/python3
"""lp_gbdt against XGBoost hist on fraud-sim-handbook with the same features.

The features are the Fraud Detection Handbook's baseline (Le Borgne et al. 2022, chapter 3.4),
computed once in pandas over train + test in time order: the amount, weekend and night flags,
per customer the number and mean amount of transactions over 1, 7 and 30 days, and per terminal
the number of transactions and the fraud rate over 1, 7 and 30 days seen with a 7-day delay
(only frauds known a week ago count). Train = days 0-145, test = days 146-182 (the shared
split). Both tools read the same float32 matrices (written under bench/out/fraud/), train 100
rounds, 31 leaves, depth 8, learning rate 0.1, lambda 1, min_child_weight 1, 2 threads; the C
side is bench/gbdt_bench.c. Prints one JSON line per tool and the ratios.

Starting score: XGBoost 1.7 starts every ensemble from base_score = 0.5 (margin 0), Lepton by
default from the training positive rate's log-odds. Both sides get the same start, 0.5 (XGBoost's
default) unless BASE_SCORE=p in the environment sets another probability; BASE_SCORE=own leaves
each tool its own default (the comparison before the start was matched).

PEER=0 runs Lepton alone. VALID=1 never touches the test days: it fits on the first 80% of the training rows (time order)
and scores the last 20% (written once under bench/out/fraud_valid/), for choosing settings.

usage: OMP_WAIT_POLICY=passive /usr/bin/python3 bench/gbdt_fraud.py BUILD_DIR [threads]
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "out", "fraud")
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "build")
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
shared = os.environ.get("LEPTON_SHARED_DATA", os.path.join(here, "..", "..", "shared", "data"))
src = os.path.join(shared, "fraud-sim-handbook")
ROUNDS, LEAVES, DEPTH = 100, 31, 8
DELAY = 7


def customer_features(df):
    df = df.sort_values("tx_datetime")
    df.index = df.tx_datetime
    for w in (1, 7, 30):
        s = df["tx_amount"].rolling(f"{w}d")
        df[f"c_nb_{w}d"] = s.count()
        df[f"c_avg_{w}d"] = s.sum() / s.count()
    df.reset_index(drop=True, inplace=True)
    return df


def terminal_features(df):
    df = df.sort_values("tx_datetime")
    df.index = df.tx_datetime
    d_nb = df["tx_fraud"].rolling(f"{DELAY}d").count()
    d_fr = df["tx_fraud"].rolling(f"{DELAY}d").sum()
    for w in (1, 7, 30):
        nb = df["tx_fraud"].rolling(f"{DELAY + w}d").count()
        fr = df["tx_fraud"].rolling(f"{DELAY + w}d").sum()
        n = nb - d_nb
        df[f"t_nb_{w}d"] = n
        df[f"t_risk_{w}d"] = ((fr - d_fr) / n.where(n > 0)).fillna(0)
    df.reset_index(drop=True, inplace=True)
    return df


def ensure_data():
    meta = os.path.join(out, "gbdt_meta.txt")
    if os.path.exists(meta):
        return
    if not os.path.exists(os.path.join(src, "train.csv.gz")):
        print(f"skip: {src} not found", file=sys.stderr)
        sys.exit(77)
    t0 = time.time()
    tr = pd.read_csv(os.path.join(src, "train.csv.gz"), parse_dates=["tx_datetime"])
    te = pd.read_csv(os.path.join(src, "test.csv.gz"), parse_dates=["tx_datetime"])
    n_train = len(tr)
    df = pd.concat([tr, te], ignore_index=True)
    df["weekend"] = (df.tx_datetime.dt.weekday >= 5).astype(np.float32)
    df["night"] = (df.tx_datetime.dt.hour <= 6).astype(np.float32)
    df = df.groupby("customer_id", group_keys=False).apply(customer_features)
    df = df.groupby("terminal_id", group_keys=False).apply(terminal_features)
    df = df.sort_values("transaction_id").reset_index(drop=True)
    cols = ["tx_amount", "weekend", "night"] + [f"c_{k}_{w}d" for w in (1, 7, 30) for k in ("nb", "avg")] \
        + [f"t_{k}_{w}d" for w in (1, 7, 30) for k in ("nb", "risk")]
    X = df[cols].to_numpy(dtype=np.float32)
    y = df["tx_fraud"].to_numpy(dtype=np.float32)
    os.makedirs(out, exist_ok=True)
    for name, a in (("train_X", X[:n_train]), ("train_y", y[:n_train]), ("test_X", X[n_train:]),
                    ("test_y", y[n_train:])):
        np.ascontiguousarray(a, dtype="<f4").tofile(os.path.join(out, "gbdt_%s.f32" % name))
    with open(meta, "w") as f:
        f.write("%d %d %d\n" % (n_train, len(df) - n_train, X.shape[1]))
    print(f"# features computed in pandas in {time.time() - t0:.1f} s: {', '.join(cols)}",
          file=sys.stderr)


def read(name, shape):
    return np.fromfile(os.path.join(out, "gbdt_%s.f32" % name), dtype="<f4").reshape(shape)


def valid_split(n_train, d):
    """Train rows split 80/20 in time order into bench/out/fraud_valid (the test days unread)."""
    vdir = os.path.join(here, "out", "fraud_valid")
    Xtr, ytr = read("train_X", (n_train, d)), read("train_y", (n_train,))
    k = n_train * 4 // 5
    if not os.path.exists(os.path.join(vdir, "gbdt_meta.txt")):
        os.makedirs(vdir, exist_ok=True)
        for name, a in (("train_X", Xtr[:k]), ("train_y", ytr[:k]), ("test_X", Xtr[k:]),
                        ("test_y", ytr[k:])):
            np.ascontiguousarray(a, dtype="<f4").tofile(os.path.join(vdir, "gbdt_%s.f32" % name))
        with open(os.path.join(vdir, "gbdt_meta.txt"), "w") as f:
            f.write("%d %d %d\n" % (k, n_train - k, d))
    return vdir, Xtr[:k], ytr[:k], Xtr[k:], ytr[k:]


def main():
    global out
    ensure_data()
    n_train, n_test, d = map(int, open(os.path.join(out, "gbdt_meta.txt")).read().split())
    if os.environ.get("VALID") == "1":
        out, Xtr, ytr, Xte, yte = valid_split(n_train, d)
    else:
        Xtr, ytr = read("train_X", (n_train, d)), read("train_y", (n_train,))
        Xte, yte = read("test_X", (n_test, d)), read("test_y", (n_test,))
    import xgboost as xgb
    from sklearn.metrics import average_precision_score, roc_auc_score
    base = os.environ.setdefault("BASE_SCORE", "0.5")  # the environment reaches gbdt_bench
    if base == "own":
        del os.environ["BASE_SCORE"]
    if os.environ.get("PEER") == "0":  # Lepton only (experiments); no ratio printed
        res = subprocess.run([os.path.join(build, "bench", "gbdt_bench"), out, str(threads),
                              str(ROUNDS), str(LEAVES), str(DEPTH)], check=True,
                             capture_output=True, text=True)
        print(res.stdout.strip().splitlines()[-1])
        return
    dtr = xgb.DMatrix(Xtr, label=ytr, nthread=threads)
    params = {"objective": "binary:logistic", "tree_method": "hist", "grow_policy": "lossguide",
              "max_leaves": LEAVES, "max_depth": DEPTH, "eta": 0.1, "lambda": 1.0,
              "min_child_weight": 1.0, "max_bin": 256, "nthread": threads, "seed": 1}
    if base != "own":
        params["base_score"] = float(base)
    t0 = time.time()
    bst = xgb.train(params, dtr, num_boost_round=ROUNDS)
    fit_s = time.time() - t0
    p = bst.predict(xgb.DMatrix(Xte, nthread=threads))
    peer = {"tool": "xgboost " + xgb.__version__, "threads": threads, "fit_s": round(fit_s, 3),
            "base_score": params.get("base_score", "own (0.5)"),
            "test_auc": round(float(roc_auc_score(yte, p)), 5),
            "test_auprc": round(float(average_precision_score(yte, p)), 5)}
    print(json.dumps(peer))
    res = subprocess.run([os.path.join(build, "bench", "gbdt_bench"), out, str(threads),
                          str(ROUNDS), str(LEAVES), str(DEPTH)], check=True, capture_output=True,
                         text=True)
    ours = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(ours))
    print("time ratio lepton/xgboost: %.3f   AUPRC lepton - xgboost: %+.4f" %
          (ours["fit_s"] / peer["fit_s"], ours["test_auprc"] - peer["test_auprc"]))


if __name__ == "__main__":
    main()
