#!/usr/bin/env bash
# test_ingest.sh - `lepton ingest` and `lepton query` end to end: a CSV appended twice (one
# transaction each), read back as CSV, JSON lines and a file; bad files exit 1 with a one-line
# message naming file and line; usage errors exit 2.
set -u
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}/lepton"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

printf 'id,amount,city,when\n1,2.5,Paris,2024-01-01\n2,NA,"Oslo, NO",2024-01-02\n3,7,Paris,\n' \
  >"$dir/ok.csv"
out=$("$bin" ingest "$dir/ok.csv" --db "$dir/t.db" --table tx 2>&1); rc=$?
check "ingest exit 0" test "$rc" -eq 0
check "ingest message" test "$out" = "ingested 3 rows into $dir/t.db:tx"
"$bin" ingest "$dir/ok.csv" --db "$dir/t.db" --table tx >/dev/null 2>&1
out=$("$bin" query --db "$dir/t.db" --sql "SELECT count(*) AS n FROM tx"); rc=$?
check "query count" test "$rc:$out" = "0:$(printf 'n\n6')"
out=$("$bin" query --db "$dir/t.db" --sql "SELECT city, amount FROM tx WHERE id = 2 LIMIT 1")
check "query quoting and missing" test "$out" = "$(printf 'city,amount\n"Oslo, NO",')"
out=$("$bin" query --db "$dir/t.db" --sql "SELECT id, city FROM tx LIMIT 1" --json)
check "query --json" test "$out" = '{"id":1,"city":"Paris"}'
"$bin" query --db "$dir/t.db" --sql "SELECT * FROM tx" -o "$dir/back.jsonl"
check "query -o jsonl" test "$(wc -l <"$dir/back.jsonl")" -eq 6

printf 'a\tb\n1\tx\n' >"$dir/tab.txt"
out=$("$bin" ingest "$dir/tab.txt" --db "$dir/t.db" --table tabbed --delim tab); rc=$?
check "ingest --delim tab" test "$rc:$out" = "0:ingested 1 rows into $dir/t.db:tabbed"

# bad files: exit 1, one line naming file and line
printf 'a,b,c,d\n1,2,3,4\n1,2,3,4,5\n' >"$dir/ragged.csv"
err=$("$bin" ingest "$dir/ragged.csv" --db "$dir/t.db" --table r 2>&1 >/dev/null); rc=$?
check "ragged exit 1" test "$rc" -eq 1
want="lepton ingest: $dir/ragged.csv line 3: 5 fields, expected 4 (header has 4)"
check "ragged message" test "$err" = "$want"
printf 'a,b\n1,"open\n2,3\n' >"$dir/quote.csv"
err=$("$bin" ingest "$dir/quote.csv" --db "$dir/t.db" --table q 2>&1 >/dev/null); rc=$?
check "unterminated quote" test "$rc:$(echo "$err" | wc -l)" = "1:1"
check "unterminated quote message" grep -q "quote.csv line 2, column 2.*unterminated quote" \
  <<<"$err"
: >"$dir/empty.csv"
err=$("$bin" ingest "$dir/empty.csv" --db "$dir/t.db" --table e 2>&1 >/dev/null); rc=$?
check "empty file" test "$rc" -eq 1
check "empty file message" grep -q "empty.csv: empty file" <<<"$err"
printf 'id,amount\n1,2\n2,abc\n' >"$dir/typed.csv"
err=$("$bin" ingest "$dir/typed.csv" --db "$dir/t.db" --table ty --types amount:float 2>&1); rc=$?
check "override mismatch" test "$rc" -eq 1
want="lepton ingest: $dir/typed.csv line 3: column 'amount' is 'abc', not a number"
check "override message" test "$err" = "$want"
out=$("$bin" query --db "$dir/t.db" --sql "SELECT name FROM sqlite_master WHERE name = 'r'")
check "failed ingest created nothing" test "$out" = "name"

# usage errors: exit 2
"$bin" ingest "$dir/ok.csv" --table tx >/dev/null 2>&1; rc=$?
check "missing --db" test "$rc" -eq 2
"$bin" ingest "$dir/ok.csv" --db "$dir/t.db" --table tx --types amount:complex >/dev/null 2>&1
rc=$?
check "bad --types kind" test "$rc" -eq 2
"$bin" ingest "$dir/ok.csv" --db "$dir/t.db" --table tx --delim ab >/dev/null 2>&1; rc=$?
check "bad --delim" test "$rc" -eq 2
"$bin" query --db "$dir/t.db" --sql "DROP TABLE tx" >/dev/null 2>&1; rc=$?
check "query refuses writes" test "$rc" -eq 2
"$bin" query --db "$dir/t.db" >/dev/null 2>&1; rc=$?
check "query without --sql" test "$rc" -eq 2

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
