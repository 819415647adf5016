#!/usr/bin/python3
"""Peer for bench/fraud_any.sh: XGBoost (hist, 300 rounds, depth 6, learning rate 0.1, the
settings of bench/fraud_xgboost.py) on the raw columns of any labelled transaction file pair,
chosen by lepton-fraud's own rule: numeric columns as they are, text columns of at most 32
values as the index of the value, the rest left out; the label is fraud when it is non-zero, or
one of the words lepton-fraud reads as fraud. Trains on all of TRAIN, scores TEST, prints one
JSON object (AUPRC = average precision, AUROC, the columns used, train seconds).

usage: OMP_WAIT_POLICY=passive /usr/bin/python3 bench/fraud_xgboost_any.py TRAIN TEST LABEL
       [DROP_COLS] [threads]
"""
import json
import sys
import time

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score

POS = {"1", "true", "t", "yes", "y", "fraud", "fraudulent", "positive", "pos", "chargeback",
       "bad", "is_fraud"}


def labels(s):
    if pd.api.types.is_numeric_dtype(s):
        return (s.fillna(0) != 0).astype(int).to_numpy()
    return s.astype(str).str.strip().str.lower().isin(POS).astype(int).to_numpy()


train, test, label = sys.argv[1], sys.argv[2], sys.argv[3]
drop = [c for c in (sys.argv[4] if len(sys.argv) > 4 else "").split(",") if c]
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
sep = "\t" if train.endswith((".tsv", ".tsv.gz")) else ","
tr = pd.read_csv(train, sep=sep, low_memory=False)
te = pd.read_csv(test, sep=sep, low_memory=False)
y, yt = labels(tr[label]), labels(te[label])
used, left = [], []
X, Xt = pd.DataFrame(index=tr.index), pd.DataFrame(index=te.index)
for c in tr.columns:
    if c == label or c in drop or c not in te.columns:
        continue
    if pd.api.types.is_numeric_dtype(tr[c]):
        X[c], Xt[c] = tr[c].astype(float), pd.to_numeric(te[c], errors="coerce")
        used.append(c)
    elif tr[c].nunique() <= 32:
        cats = sorted(tr[c].dropna().astype(str).unique())
        X[c] = pd.Categorical(tr[c].astype(str), categories=cats).codes.astype(float)
        Xt[c] = pd.Categorical(te[c].astype(str), categories=cats).codes.astype(float)
        X.loc[X[c] < 0, c], Xt.loc[Xt[c] < 0, c] = np.nan, np.nan
        used.append(c)
    else:
        left.append(c)
t0 = time.time()
model = xgb.XGBClassifier(tree_method="hist", n_estimators=300, max_depth=6, learning_rate=0.1,
                          n_jobs=threads)
model.fit(X, y)
t_fit = time.time() - t0
p = model.predict_proba(Xt)[:, 1]
print(json.dumps({"tool": "xgboost " + xgb.__version__, "n": int(len(yt)),
                  "n_fraud": int(yt.sum()), "auprc": average_precision_score(yt, p),
                  "auroc": roc_auc_score(yt, p), "train_s": round(t_fit, 3),
                  "features": len(used), "left_out": left}))
