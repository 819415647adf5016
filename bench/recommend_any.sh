#!/usr/bin/env bash
# lepton-recommend against the `implicit` library on any interaction file pair, side by side in
# one run (issue 7: "interaction data sets you have not seen (explicit ratings and implicit play
# counts), against peers side by side"). lepton-recommend train with its defaults (--model
# auto: ALS, BPR or item-kNN, chosen on each user's held-out interactions; --weight-transform
# auto), once without weights (every interaction counts 1) and, when WEIGHT is given, once with
# --weight-col WEIGHT, then each of ALS, BPR and item-kNN forced; eval on TEST with every test
# row relevant and with weight >= MIN_WEIGHT relevant. The peers (bench/recommend_peers_any.py: implicit's ALS raw and BM25-weighted, BPR, cosine and
# BM25 item-item, the library's defaults) on the same files, in a venv under bench/out/.
# Prints a markdown table of precision@10 and NDCG@10 and the training seconds. "all": eval
# with --weight-col none (every training row is history, every test row relevant, as for the
# peers); "weight >=": eval with --weight-col WEIGHT --min-weight MIN_WEIGHT (rows of weight 0
# are then no interaction, in the history too).
#   usage: bench/recommend_any.sh BUILD TRAIN TEST USER_COL ITEM_COL [WEIGHT_COL [MIN_WEIGHT]]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 5 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
build=$1 train=$2 test=$3 ucol=$4 icol=$5 wcol=${6:-} minw=${7:-0}
venv="$root/bench/out/venv"
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q implicit || echo "note: pip install implicit failed" >&2
fi
export OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1 LEPTON_LOG=warn
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rec=$build/bin/lepton-recommend
cols=(--user-col "$ucol" --item-col "$icol")
jnum() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" <<<"$2"; }
echo "| model | train s | P@10 all | NDCG@10 all | P@10 weight >= $minw | NDCG@10 weight >= $minw |"
echo "|---|---:|---:|---:|---:|---:|"
lepton() { # name, train flags...
  local name=$1 t0 t1 a p
  shift
  t0=$(date +%s.%N)
  local kind
  kind=$("$rec" train --data "$train" "${cols[@]}" --threads 2 "$@" --out "$tmp/m.lpm" |
         sed -n 's/^trained \([a-z]*\) .*/\1/p')
  t1=$(date +%s.%N)
  name=${name/KIND/$kind}
  a=$("$rec" eval --model "$tmp/m.lpm" --train "$train" --test "$test" "${cols[@]}" \
      --weight-col none --json)
  if [ -n "$wcol" ]; then
    p=$("$rec" eval --model "$tmp/m.lpm" --train "$train" --test "$test" "${cols[@]}" \
        --weight-col "$wcol" --min-weight "$minw" --json)
  else p=$a; fi
  printf '| lepton %s | %.2f | %.4f | %.4f | %.4f | %.4f |\n' "$name" "$(echo "$t1 - $t0" | bc)" \
    "$(jnum precision_at_k "$a")" "$(jnum ndcg_at_k "$a")" "$(jnum precision_at_k "$p")" \
    "$(jnum ndcg_at_k "$p")"
}
lepton "default (auto: KIND), no weights" --weight-col none
if [ -n "$wcol" ]; then
  lepton "default (auto: KIND), --weight-col" --weight-col "$wcol"
  lepton "als, --weight-col" --weight-col "$wcol" --model als
  lepton "bpr, --weight-col" --weight-col "$wcol" --model bpr
  lepton "itemknn, --weight-col" --weight-col "$wcol" --model itemknn
else
  lepton "als, no weights" --weight-col none --model als
  lepton "bpr, no weights" --weight-col none --model bpr
  lepton "itemknn, no weights" --weight-col none --model itemknn
fi
"$venv/bin/python" -W ignore "$root/bench/recommend_peers_any.py" "$train" "$test" "$ucol" \
    "$icol" "${wcol:--}" "$minw" 2 | while read -r l; do
  printf '| %s | %s | %s | %s | %s | %s |\n' "$(sed -n 's/.*"model": "\([^"]*\)".*/\1/p' <<<"$l")" \
    "$(sed -n 's/.*"train_s": \([0-9.e-]*\).*/\1/p' <<<"$l")" \
    "$(sed -n 's/.*"p10_all": \([0-9.e-]*\).*/\1/p' <<<"$l")" \
    "$(sed -n 's/.*"ndcg10_all": \([0-9.e-]*\).*/\1/p' <<<"$l")" \
    "$(sed -n 's/.*"p10_pos": \([0-9.e-]*\).*/\1/p' <<<"$l")" \
    "$(sed -n 's/.*"ndcg10_pos": \([0-9.e-]*\).*/\1/p' <<<"$l")"
done
