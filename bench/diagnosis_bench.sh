#!/usr/bin/env bash
# diagnosis_bench.sh - lepton-diagnosis against peers in ONE run: PneumoniaMNIST (official
# train/val/test IDX, 28 px) vs the same CNN in PyTorch CPU (2 threads) and the published
# MedMNIST v2 ResNet-18 (28) baseline (ACC 0.854, AUC 0.944); symptom2disease TF-IDF + logistic
# (lepton) vs scikit-learn; breast-cancer-wisconsin logistic. Both tools get 2 threads.
# usage: bench/diagnosis_bench.sh [BUILD_DIR=build] [EPOCHS=12]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${1:-$root/build}/bin/lepton-diagnosis"
epochs=${2:-12}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}
py=/usr/bin/python3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 LEPTON_PROGRESS=0
p=$data/pneumoniamnist
echo "== PneumoniaMNIST (28 px), $epochs epochs, 2 threads"
t0=$(date +%s.%N)
DX_EPOCHS=$epochs DX_THREADS=2 "$bin" train --images "$p/train-images-idx3-ubyte" \
  --labels "$p/train-labels-idx1-ubyte" --valid "$p/val-images-idx3-ubyte" \
  --valid-labels "$p/val-labels-idx1-ubyte" --out "$tmp/pn.lpm" | head -1
t1=$(date +%s.%N)
printf 'lepton train seconds: %.1f\n' "$(echo "$t1 - $t0" | bc)"
echo -n "lepton test: "
"$bin" eval --model "$tmp/pn.lpm" --images "$p/test-images-idx3-ubyte" \
  --labels "$p/test-labels-idx1-ubyte" --json
echo -n "pytorch: "
$py "$root/bench/diagnosis_torch.py" "$p" "$epochs"
echo "MedMNIST v2 ResNet-18 (28): accuracy 0.854, auroc 0.944 (published)"
s=$data/symptom2disease
echo "== symptom2disease"
"$bin" train --text "$s/train.tsv" --label-col label --out "$tmp/s.lpm" >/dev/null
echo -n "lepton test: "; "$bin" eval --model "$tmp/s.lpm" --text "$s/test.tsv" --json
echo -n "scikit-learn TF-IDF + LogisticRegression: "
$py - "$s" <<'PY'
import sys, pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
tr = pd.read_csv(sys.argv[1] + "/train.tsv", sep="\t"); te = pd.read_csv(sys.argv[1] + "/test.tsv", sep="\t")
v = TfidfVectorizer(); m = LogisticRegression(max_iter=2000).fit(v.fit_transform(tr.text), tr.label)
print('{"accuracy": %.6f}' % (m.predict(v.transform(te.text)) == te.label).mean())
PY
b=$data/breast-cancer-wisconsin
echo "== breast-cancer-wisconsin"
label=$(head -1 "$b/train.csv" | tr , '\n' | tail -1)
"$bin" train --tabular "$b/train.csv" --label "$label" --out "$tmp/b.lpm" >/dev/null
echo -n "lepton test: "; "$bin" eval --model "$tmp/b.lpm" --tabular "$b/test.csv" --json
