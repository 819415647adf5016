#!/usr/bin/env bash
# diagnosis_bench.sh - lepton-diagnosis against peers in ONE run, every tool on 2 threads:
#  1. PneumoniaMNIST (official train / val / test IDX, 28 px): lepton's CNN vs the same CNN in
#     PyTorch CPU (bench/diagnosis_torch.py) and the published MedMNIST v2 baselines
#     (ResNet-18 at 28 px: ACC 0.854, AUC 0.944; ResNet-50 at 224 px: ACC 0.884, AUC 0.962);
#     training seconds, test accuracy, AUROC, ECE after temperature scaling.
#  2. symptom2disease (train.tsv / test.tsv): lepton's text model (TF-IDF + logistic,
#     calibrated) vs scikit-learn TfidfVectorizer + LogisticRegression (default C = 1, and
#     C = 100 as lepton uses) and the fastText CLI (supervised: its defaults, and 50 epochs at
#     lr 0.5).
#  3. breast-cancer-wisconsin (train.csv / test.csv): lepton tabular logistic (C by stratified
#     5-fold CV, temperature on the out-of-fold probabilities) vs scikit-learn.
#  4. POST /v1/diagnose latency (wrk, 1 connection, sequential requests): an image (a
#     PneumoniaMNIST test image as PNG) and a text, each with and without the explanation.
# usage: bench/diagnosis_bench.sh [BUILD_DIR=build] [EPOCHS=12]   env: DURATION (10 s per
# latency run), LEPTON_SHARED_DATA
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${1:-$root/build}/bin/lepton-diagnosis"
epochs=${2:-12}
duration=${DURATION:-10}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}
py=/usr/bin/python3
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=passive OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1 LEPTON_PROGRESS=0
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
  "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

p=$data/pneumoniamnist
echo "== PneumoniaMNIST (28 px), $epochs epochs, 2 threads"
t0=$(date +%s.%N)
DX_EPOCHS=$epochs DX_THREADS=2 "$bin" train --images "$p/train-images-idx3-ubyte" \
  --labels "$p/train-labels-idx1-ubyte" --valid "$p/val-images-idx3-ubyte" \
  --valid-labels "$p/val-labels-idx1-ubyte" --out "$tmp/pn.lpm" >"$tmp/pn.train"
t1=$(date +%s.%N)
head -1 "$tmp/pn.train"
sed -n 2p "$tmp/pn.train" | $py -c 'import json,sys; d=json.load(sys.stdin); c=d["calibration"]; print("lepton: %s; fit: %s; calibration (val): T %.3f, ECE %.4f -> %.4f" % (d["model"]["family"], d["model"].get("fit", "-"), c["temperature"], c["ece_before"], c["ece_after"]))'
printf 'lepton train seconds (wall, incl. loading and calibration): %.1f\n' "$(echo "$t1 - $t0" | bc)"
echo -n "lepton test: "
"$bin" eval --model "$tmp/pn.lpm" --images "$p/test-images-idx3-ubyte" \
  --labels "$p/test-labels-idx1-ubyte" --json
echo -n "pytorch: "
$py "$root/bench/diagnosis_torch.py" "$p" "$epochs"
echo "MedMNIST v2 (published): ResNet-18 (28) ACC 0.854 AUC 0.944; ResNet-50 (224) ACC 0.884 AUC 0.962"
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"

s=$data/symptom2disease
echo "== symptom2disease"
"$bin" train --text "$s/train.tsv" --label-col label --out "$tmp/s.lpm" >"$tmp/s.train"
sed -n 2p "$tmp/s.train" | $py -c 'import json,sys; d=json.load(sys.stdin); c=d["calibration"]; print("lepton: %s; fit: %s; calibration (val): T %.3f, ECE %.4f -> %.4f" % (d["model"]["family"], d["model"].get("fit", "-"), c["temperature"], c["ece_before"], c["ece_after"]))'
echo -n "lepton test: "; "$bin" eval --model "$tmp/s.lpm" --text "$s/test.tsv" --json
$py - "$s" <<'PY'
import sys, pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
tr = pd.read_csv(sys.argv[1] + "/train.tsv", sep="\t"); te = pd.read_csv(sys.argv[1] + "/test.tsv", sep="\t")
for C in (1.0, 100.0, 10000.0):
    v = TfidfVectorizer(); m = LogisticRegression(C=C, max_iter=5000).fit(v.fit_transform(tr.text), tr.label)
    print('scikit-learn TF-IDF + LogisticRegression(C=%g): {"accuracy": %.6f}' % (C, (m.predict(v.transform(te.text)) == te.label).mean()))
PY
if command -v fasttext >/dev/null; then
  for f in train test; do
    # lower-cased, punctuation split off the words (fastText splits on blanks only)
    tail -n +2 "$s/$f.tsv" | awk -F'\t' '{l=$2; gsub(/ /,"_",l); t=tolower($3); gsub(/[[:punct:]]/," & ",t); print "__label__" l " " t}' >"$tmp/ft.$f"
  done
  for a in "-epoch 5 -lr 0.1" "-epoch 50 -lr 0.5"; do
    fasttext supervised -input "$tmp/ft.train" -output "$tmp/ft" $a -thread 2 -seed 1 >/dev/null 2>&1
    echo "fastText supervised ($a): accuracy $(fasttext test "$tmp/ft.bin" "$tmp/ft.test" | awk '/^P@1/ {print $2}')"
  done
else
  echo "fastText: not installed (apt-get install fasttext)"
fi

b=$data/breast-cancer-wisconsin
echo "== breast-cancer-wisconsin"
label=$(head -1 "$b/train.csv" | tr , '\n' | tail -1)
echo -n "lepton: "; "$bin" train --tabular "$b/train.csv" --label "$label" --out "$tmp/b.lpm"
echo -n "lepton test: "; "$bin" eval --model "$tmp/b.lpm" --tabular "$b/test.csv" --json
echo "(more seeds, the test split's ECE noise floor and scikit-learn calibrated: bench/diagnosis_tabular.sh)"
$py - "$b" "$label" <<'PY'
import sys, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
tr = pd.read_csv(sys.argv[1] + "/train.csv"); te = pd.read_csv(sys.argv[1] + "/test.csv"); y = sys.argv[2]
X = [c for c in tr.columns if c not in (y, "row")]
m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(tr[X], tr[y])
print('scikit-learn StandardScaler + LogisticRegression: {"accuracy": %.6f}' % (m.predict(te[X]) == te[y]).mean())
PY

echo "== POST /v1/diagnose latency (wrk -t1 -c1 -d${duration}s: sequential requests, one connection)"
if ! command -v wrk >/dev/null; then echo "wrk not installed: skipped"; exit 0; fi
$py - "$p/test-images-idx3-ubyte" "$tmp/x.png" <<'PY'
import sys, struct, zlib, numpy as np
raw = open(sys.argv[1], "rb").read(); n, h, w = struct.unpack(">III", raw[4:16])
img = np.frombuffer(raw[16:16 + h * w], np.uint8).reshape(h, w)
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + \
      chunk(b"IDAT", zlib.compress(b"".join(b"\0" + r.tobytes() for r in img))) + chunk(b"IEND", b"")
open(sys.argv[2], "wb").write(png)
PY
LEPTON_LOG=warn "$bin" serve --image-model "$tmp/pn.lpm" --text-model "$tmp/s.lpm" --port 0 \
  --db "$tmp/a.db" >"$tmp/serve.out" &
pid=$!
for _ in $(seq 100); do grep -q "on http" "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -nE 's/.*on http.*:([0-9]+)$/\1/p' "$tmp/serve.out")
img=$(base64 -w0 "$tmp/x.png")
txt="I have been having a high fever, chills and a headache, and I sweat a lot at night"
bench() { # name body
  printf 'wrk.method = "POST"\nwrk.path = "/v1/diagnose"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [[%s]]\n' "$2" >"$tmp/p.lua"
  cat >>"$tmp/p.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("p50 %.0f us, p99 %.0f us, %.0f req/s, %d non-2xx of %d\n",
    latency:percentile(50), latency:percentile(99), summary.requests / (summary.duration / 1e6),
    summary.errors.status, summary.requests))
end
LUA
  echo -n "$1: "
  wrk -t1 -c1 -d"${duration}s" -s "$tmp/p.lua" "http://127.0.0.1:$port" | tail -1
}
bench "image, with explanation (IG 32 steps + heat map)" "{\"image\":\"$img\"}"
bench "image, without explanation" "{\"image\":\"$img\",\"explain\":false}"
bench "text, with explanation (token contributions)" "{\"text\":\"$txt\"}"
bench "text, without explanation" "{\"text\":\"$txt\",\"explain\":false}"
echo "audit rows written: $(sqlite3 "$tmp/a.db" 'SELECT count(*) FROM answers' 2>/dev/null || echo '?')"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
