#!/usr/bin/env bash
# test_data_cli.sh - the pipeline demo end to end (scripts/demo: ingest, query, profile, clean,
# featurize) and the reuse of fitted transforms: `clean --apply` and `featurize --apply` on the
# same rows reproduce the fitted run byte for byte; bad flags and files give one line and the
# documented exit status.
set -u
bin="${LEPTON_BIN:?}/lepton"
root="${LEPTON_SOURCE_DIR:?}"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { local name=$1; shift; if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi; }

"$root/scripts/demo" "$bin" "$dir/demo" >"$dir/demo.log" 2>&1; rc=$?
check "demo exit 0" test "$rc" -eq 0
check "demo profile table" grep -q "3000 rows, 13 columns, 23 duplicate rows" "$dir/demo.log"
check "profile JSON written" grep -q '"column_profiles"' "$dir/demo/profile.json"
check "clean report has fitted and applied" grep -q '"applied"' "$dir/demo/clean_report.json"
check "clean removed the 23 duplicates" test "$(($(wc -l <"$dir/demo/clean.csv") - 1))" -eq 2977
check "no missing age after soft-impute" test "$(cut -d, -f3 "$dir/demo/clean.csv" | grep -c '^$')" -eq 0

"$bin" clean "$dir/demo/customers.csv" -o "$dir/again.csv" --apply "$dir/demo/cleaner.lpm" >/dev/null
check "clean --apply reproduces the fit" cmp -s "$dir/again.csv" "$dir/demo/clean.csv"
"$bin" featurize "$dir/demo/clean.csv" -o "$dir/f2.csv" --label churned \
  --apply "$dir/demo/pipeline.lpm" >/dev/null
check "featurize --apply reproduces the fit" cmp -s "$dir/f2.csv" "$dir/demo/features.csv"
check "feature names" grep -q '^age,monthly_spend,income,.*plan=basic' "$dir/demo/features.csv"

out=$("$bin" profile "$root/data/customers.csv" --json); rc=$?
check "profile --json exit 0" test "$rc" -eq 0
check "profile --json flags the constant column" grep -q '"name":"currency".*"constant":true' <<<"$out"

err=$("$bin" clean "$root/data/customers.csv" 2>&1 >/dev/null); rc=$?
check "clean without -o: exit 2" test "$rc" -eq 2
err=$("$bin" clean "$root/data/customers.csv" -o "$dir/x.csv" --impute magic 2>&1 >/dev/null); rc=$?
check "bad --impute: exit 2" test "$rc" -eq 2
check "bad --impute: names it" grep -q "'magic'" <<<"$err"
err=$("$bin" profile "$dir/nope.csv" 2>&1 >/dev/null); rc=$?
check "missing file: exit 1" test "$rc" -eq 1
check "missing file: one line naming it" test "$(wc -l <<<"$err")" -eq 1 -a -n "$(grep nope.csv <<<"$err")"
printf 'a,b\n1,2\n3\n' >"$dir/ragged.csv"
err=$("$bin" clean "$dir/ragged.csv" -o "$dir/x.csv" 2>&1 >/dev/null); rc=$?
check "ragged file: exit 1 naming line 3" test "$rc" -eq 1 -a -n "$(grep 'line 3' <<<"$err")"
printf 'not an lpm' >"$dir/bad.lpm"
err=$("$bin" clean "$root/data/customers.csv" -o "$dir/x.csv" --apply "$dir/bad.lpm" 2>&1 >/dev/null); rc=$?
check "bad transform file: exit 1" test "$rc" -eq 1

echo "$fails failed"
test "$fails" -eq 0
