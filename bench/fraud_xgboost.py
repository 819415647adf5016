#!/usr/bin/python3
"""Peer for the lepton-fraud benchmark: XGBoost (hist, 2 threads) on the Fraud Detection
Handbook's baseline features, computed in pandas exactly as the book's chapter 3.4 does:
  - TX_AMOUNT, TX_DURING_WEEKEND, TX_DURING_NIGHT (hour <= 6);
  - customer spending: number of transactions and mean amount over 1, 7 and 30 days
    (rolling time windows over the customer's transactions, the current one included);
  - terminal risk: number of transactions and fraud share over 1, 7 and 30 days ending 7 days
    before the transaction (the delay before labels are known), missing -> 0.
Features of test rows use train rows as history (never later rows). Trains on all train rows,
scores the test rows, prints one JSON object with AUPRC (average precision), AUROC and times.

usage: OMP_WAIT_POLICY=passive /usr/bin/python3 bench/fraud_xgboost.py DATA_DIR [threads]
"""
import json
import os
import sys
import time

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score

data = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2

t0 = time.time()
tr = pd.read_csv(os.path.join(data, "train.csv.gz"), parse_dates=["tx_datetime"])
te = pd.read_csv(os.path.join(data, "test.csv.gz"), parse_dates=["tx_datetime"])
tr["split"] = 0
te["split"] = 1
df = pd.concat([tr, te], ignore_index=True)
df = df.sort_values(["tx_datetime", "transaction_id"], kind="mergesort").reset_index(drop=True)
t_load = time.time() - t0

t0 = time.time()
df["tx_during_weekend"] = (df.tx_datetime.dt.weekday >= 5).astype(int)
df["tx_during_night"] = (df.tx_datetime.dt.hour <= 6).astype(int)
feats = ["tx_amount", "tx_during_weekend", "tx_during_night"]


def rolled(key, col, window, how):
    r = df.groupby(key).rolling(window, on="tx_datetime")[col]
    r = getattr(r, how)()
    return r.reset_index(level=0, drop=True).sort_index()


for w in (1, 7, 30):
    s = rolled("customer_id", "tx_amount", f"{w}d", "sum")
    c = rolled("customer_id", "tx_amount", f"{w}d", "count")
    df[f"customer_nb_tx_{w}d"] = c.values
    df[f"customer_avg_amount_{w}d"] = (s / c).values
    feats += [f"customer_nb_tx_{w}d", f"customer_avg_amount_{w}d"]

delay = 7
fd = rolled("terminal_id", "tx_fraud", f"{delay}d", "sum")
nd = rolled("terminal_id", "tx_fraud", f"{delay}d", "count")
for w in (1, 7, 30):
    fw = rolled("terminal_id", "tx_fraud", f"{delay + w}d", "sum") - fd
    nw = rolled("terminal_id", "tx_fraud", f"{delay + w}d", "count") - nd
    df[f"terminal_nb_tx_{w}d"] = nw.values
    df[f"terminal_risk_{w}d"] = (fw / nw).fillna(0).values
    feats += [f"terminal_nb_tx_{w}d", f"terminal_risk_{w}d"]
df[feats] = df[feats].fillna(0)
t_feat = time.time() - t0

train = df[df.split == 0]
test = df[df.split == 1]
t0 = time.time()
model = xgb.XGBClassifier(tree_method="hist", n_estimators=300, max_depth=6, learning_rate=0.1,
                          n_jobs=threads, random_state=0)
model.fit(train[feats].to_numpy(np.float32), train.tx_fraud.to_numpy())
t_fit = time.time() - t0
t0 = time.time()
p = model.predict_proba(test[feats].to_numpy(np.float32))[:, 1]
t_pred = time.time() - t0
y = test.tx_fraud.to_numpy()
print(json.dumps({
    "tool": f"xgboost {xgb.__version__} hist (handbook baseline features, pandas {pd.__version__})",
    "n": int(len(y)), "auprc": round(float(average_precision_score(y, p)), 4),
    "auroc": round(float(roc_auc_score(y, p)), 4), "features": len(feats),
    "load_s": round(t_load, 1), "features_s": round(t_feat, 1), "fit_s": round(t_fit, 1),
    "predict_s": round(t_pred, 2), "threads": threads}))
