#!/usr/bin/env bash
# diagnosis_tabular.sh - lepton-diagnosis's tabular model (dx_tabular.c) on
# breast-cancer-wisconsin over several seeds (the seed sets the cross-validation folds, so the C
# chosen and the temperature), side by side with scikit-learn's LogisticRegressionCV over the
# same C grid (5 folds, accuracy), uncalibrated and with a temperature fitted on its own
# out-of-fold decision values. For each lepton run it also prints the ECE noise floor of the
# test split: the ECE a perfectly calibrated model with the same test probabilities would
# show, from 2,000 label draws y ~ Bernoulli(p) (mean and 90th percentile), since 113 test
# rows cannot measure calibration finer than that.
# usage: bench/diagnosis_tabular.sh [BUILD_DIR=build]   env: SEEDS ("42 1 2 3 4"),
# LEPTON_SHARED_DATA
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}/breast-cancer-wisconsin
py=/usr/bin/python3
if [ ! -f "$data/train.csv" ]; then echo "breast-cancer-wisconsin not found under $data: skipped"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
label=$(head -1 "$data/train.csv" | tr , '\n' | tail -1)
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "| tool | seed | C | T | out-of-fold ECE before -> after | test accuracy | test AUROC | test ECE | ECE floor mean / p90 | abstained |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for s in ${SEEDS:-42 1 2 3 4}; do
  line=$(DX_SEED=$s "$build/bin/lepton-diagnosis" train --tabular "$data/train.csv" --label "$label" \
    --out "$tmp/b.lpm")
  ev=$("$build/bin/lepton-diagnosis" eval --model "$tmp/b.lpm" --tabular "$data/test.csv" --json)
  "$build/bin/lepton" predict --model "$tmp/b.lpm" --data "$data/test.csv" -o "$tmp/p.csv" >/dev/null
  $py - "$s" "$line" "$ev" "$tmp/p.csv" "$data/test.csv" "$label" "$root/bench" <<'PY'
import sys, re, json, numpy as np, pandas as pd
sys.path.insert(0, sys.argv[7])
from dx_ece import ece
seed, line, ev, pred, test, label = sys.argv[1:7]
C = float(re.search(r"C = ([0-9.e+-]+)", line).group(1))
T = float(re.search(r"temperature ([0-9.]+)", line).group(1))
b, a = re.search(r"ECE ([0-9.]+) -> ([0-9.]+)", line).groups()
ev = json.loads(ev)
p = pd.read_csv(pred).filter(like="proba_").to_numpy()
p = p ** (1 / T); p /= p.sum(1, keepdims=True)  # the temperature eval applies
rng = np.random.default_rng(0)
fl = [ece(p, (rng.random(len(p)) < p[:, 1]).astype(int)) for _ in range(2000)]
print("| lepton | %s | %g | %.3f | %s -> %s | %.4f | %.4f | %.4f | %.3f / %.3f | %d |" % (
    seed, C, T, b, a, ev["accuracy"], ev["auroc"], ev["ece"], np.mean(fl), np.percentile(fl, 90),
    ev["abstained"]))
PY
done
$py - "$data" "$label" "$root/bench" <<'PY'
import sys, numpy as np, pandas as pd
sys.path.insert(0, sys.argv[3])
from dx_ece import ece
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
d, y = sys.argv[1:3]
tr, te = pd.read_csv(d + "/train.csv"), pd.read_csv(d + "/test.csv")
X = [c for c in tr.columns if c not in (y, "row")]
G = [0.01, 0.03, 0.1, 0.3, 1, 3, 10]
cv = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=G, cv=5, max_iter=5000)).fit(tr[X], tr[y])
C = float(cv[-1].C_[0])
m = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))
z = cross_val_predict(m, tr[X], tr[y], cv=KFold(5, shuffle=True, random_state=0), method="decision_function")
yt = tr[y].to_numpy()
T = minimize_scalar(lambda t: np.mean(np.logaddexp(0, -(2 * yt - 1) * z / t)), bounds=(0.1, 10), method="bounded").x
m.fit(tr[X], tr[y]); zt = m.decision_function(te[X]); yy = te[y].to_numpy()
for name, t in (("scikit-learn LogisticRegressionCV", 1.0), ("scikit-learn, temperature on out-of-fold", T)):
    p1 = 1 / (1 + np.exp(-zt / t)); p = np.c_[1 - p1, p1]
    print("| %s | - | %g | %.3f | - | %.4f | %.4f | %.4f | - | - |" % (
        name, C, t, ((p1 > 0.5) == yy).mean(), roc_auc_score(yy, p1), ece(p, yy)))
PY
