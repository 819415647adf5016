#!/usr/bin/env bash
# cs_bench.sh - customer-service benchmarks in one run, Lepton against fastText and
# scikit-learn on the same splits (results go to bench/RESULTS.md by hand):
#   CLINC150 intents, OOS protocol A (OOS rows in training) and B (none; a threshold fitted on
#   in-scope validation rows), restaurant8k slot span micro-F1, stackfaq top-1 / MRR.
# Usage: bench/cs_bench.sh [BUILD_DIR]   (after cmake --build BUILD_DIR)
#   CS_BENCH_SECTIONS="clinc slots faq" (default all three) picks sections;
#   CS_BENCH_SLOTS_BASELINE=BINARY also trains/evaluates the slot tagger of another build of
#   lepton-customer-service (e.g. an older commit) in the same run, for before/after numbers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
bin="$build/bin/lepton-customer-service"
data=${LEPTON_SHARED_DATA:-$root/../shared/data}
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive
now() { date +%s.%N; }

sections=${CS_BENCH_SECTIONS:-clinc slots faq}
want() { case " $sections " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

echo "== machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); load: $(uptime)"
if want clinc; then
c=$data/clinc150
awk -F'\t' 'NR == 1 || $1 != "oos"' "$c/train.tsv" >"$work/train_B.tsv"
awk -F'\t' 'NR == 1 || $1 != "oos"' "$c/val.tsv" >"$work/val_B.tsv"

echo "== CLINC150 (lepton)"
for proto in A B; do
  if [ $proto = A ]; then tr=$c/train.tsv; va=$c/val.tsv; else tr=$work/train_B.tsv; va=$work/val_B.tsv; fi
  t0=$(now)
  "$bin" train --data "$tr" --valid "$va" --out "$work/clinc_$proto.lpm" 2>"$work/train_$proto.log"
  t1=$(now)
  tail -1 "$work/train_$proto.log"
  printf '{"tool":"lepton","protocol":"%s","train_s":%.2f,"eval":%s}\n' "$proto" \
    "$(echo "$t1 - $t0" | bc)" "$("$bin" eval --model "$work/clinc_$proto.lpm" --data "$c/test.tsv" --json)"
done

echo "== CLINC150 (fastText, scikit-learn)"
ft() { awk -F'\t' 'NR > 1 { print "__label__" $1 " " $3 }' "$1"; }
ft "$c/train.tsv" >"$work/train_A.txt"; ft "$work/train_B.tsv" >"$work/train_B.txt"
ft "$work/val_B.tsv" >"$work/val_B.txt"; ft "$c/test.tsv" >"$work/test.txt"
for proto in A B; do
  t0=$(now)
  fasttext supervised -input "$work/train_$proto.txt" -output "$work/ft_$proto" -wordNgrams 2 \
    -epoch 25 -lr 0.5 -thread 2 -verbose 0
  t1=$(now)
  echo "$t1 - $t0" | bc >"$work/ft_$proto.secs"
done
$py "$root/bench/cs_peers.py" clinc "$c" "$work"
fi

if want slots; then
echo "== restaurant8k slots"
r=$data/restaurant8k
slot_run() { # tool-name binary
  t0=$(now)
  "$2" train-slots --data "$r/train.tsv" --out "$work/slots.lpm" 2>/dev/null
  t1=$(now)
  printf '{"tool":"%s","train_s":%.2f,"eval":%s}\n' "$1" "$(echo "$t1 - $t0" | bc)" \
    "$("$2" eval-slots --model "$work/slots.lpm" --data "$r/test.tsv" --json)"
}
slot_run "lepton linear-chain CRF + Viterbi" "$bin"
if [ -n "${CS_BENCH_SLOTS_BASELINE:-}" ]; then
  slot_run "baseline $(basename "$CS_BENCH_SLOTS_BASELINE")" "$CS_BENCH_SLOTS_BASELINE"
fi
$py "$root/bench/cs_peers.py" slots "$r/train.tsv" "$r/test.tsv"
fi

if want faq; then
echo "== stackfaq"
s=$data/stackfaq
# FAQ entries: question plus the first answer
awk -F'\t' 'NR == FNR { if (FNR > 1 && $2 == 1) a[$1] = $3; next }
            FNR == 1 { print "id\tquestion\tanswer"; next } { print $1 "\t" $2 "\t" a[$1] }' \
  "$s/answers.tsv" "$s/faqs.tsv" >"$work/faq.tsv"
printf '{"tool":"lepton bm25+tfidf","eval":%s}\n' \
  "$("$bin" eval-faq --faq "$work/faq.tsv" --queries "$s/queries_test.tsv" --json)"
$py "$root/bench/cs_peers.py" faq "$work/faq.tsv" "$s/queries_test.tsv"
fi
