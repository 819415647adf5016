#!/usr/bin/env bash
# test_recommend.sh - lepton-recommend end to end on a tiny generated shop: generate (seeded,
# reproducible), train every model kind, eval --json (one object with the documented keys, item
# kNN beats popularity on this taste-structured data, --min-weight restricts relevance), tune
# writes a loadable model, serve answers /v1/recommend and stops on SIGTERM; bad files and flags
# exit non-zero with a one-line message. Data sets unlike the shop (issue 7's unseen files): eval
# reads the files with the columns stored at train (other column names, --min-weight on the
# trained weight column); ALS trains on rows with weights up to 5e7; --weight-transform (auto
# picks log1p on play counts); millisecond timestamps with decay; event types of other names
# weighted by --event-weights; MovieLens ratings.dat ("::", no header) and a headerless TSV;
# userId / movieId columns found by name; --model auto (the default) trains the best of als,
# bpr and itemknn on each user's held-out last events.
set -u
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}"
rec="$bin/lepton-recommend"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
jget() { # jget KEY JSON -> the number after "KEY":
  sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" <<<"$2"
}

"$bin/lepton-gen-shop" --out "$dir/shop" --seed 3 --users 120 --items 80 >/dev/null
"$bin/lepton-recommend" train --help >"$dir/help.out" 2>/dev/null; rc=$?
check "train --help: the usage on stdout, exit 0" test "$rc" -eq 0 -a -s "$dir/help.out"
check "generator writes the split" test -s "$dir/shop/train.csv" -a -s "$dir/shop/test.csv"
"$bin/lepton-gen-shop" --out "$dir/shop2" --seed 3 --users 120 --items 80 >/dev/null
check "generator is seeded" cmp -s "$dir/shop/events.csv" "$dir/shop2/events.csv"

tr="$dir/shop/train.csv"; te="$dir/shop/test.csv"
for m in als bpr itemknn popular; do
  out=$("$rec" train --data "$tr" --type-col type --model "$m" --factors 16 --iterations 8 \
        --out "$dir/$m.lpm" 2>&1); rc=$?
  check "train $m" test "$rc" -eq 0 -a -s "$dir/$m.lpm"
done
check "train message" grep -q "trained popular on 120 users" <<<"$out"

# --model auto (the default): three validation scores, the best one trained; each candidate's
# own NDCG on the held-out events, so the pick is the largest of the three printed
out=$("$rec" train --data "$tr" --type-col type --factors 16 --out "$dir/auto.lpm" 2>&1); rc=$?
check "train without --model (auto) exit 0" test "$rc" -eq 0 -a -s "$dir/auto.lpm"
line=$(grep -- "--model auto: validation NDCG@10" <<<"$out")
check "auto says the three scores: $line" \
  grep -qE "als [0-9.]+, bpr [0-9.]+, itemknn [0-9.]+: (als|bpr|itemknn)$" <<<"$line"
pick=$(sed -nE 's/.*: (als|bpr|itemknn)$/\1/p' <<<"$line")
best=$(sed -nE 's/.*als ([0-9.]+), bpr ([0-9.]+), itemknn ([0-9.]+):.*/\1 als\n\2 bpr\n\3 itemknn/p' \
       <<<"$line" | sort -s -k1,1gr | head -1 | cut -d' ' -f2)
check "auto trains the best of the three ($pick, best $best)" test -n "$pick" -a "$pick" = "$best"
check "auto's model is that kind" grep -q "trained $pick on 120 users" <<<"$out"
out=$("$rec" train --data "$tr" --type-col type --model auto --factors 16 --out "$dir/auto2.lpm" \
      2>&1)
check "--model auto is the default (same pick)" grep -q "trained $pick on" <<<"$out"
printf 'user_id,item_id\na,x\na,y\nb,x\nb,z\nc,y\n' >"$dir/tiny.csv"
out=$("$rec" train --data "$dir/tiny.csv" --out "$dir/tiny.lpm" 2>&1); rc=$?
check "auto with nothing to hold out trains als (exit $rc)" test "$rc" -eq 0 -a -s "$dir/tiny.lpm"
check "auto with nothing to hold out says so" grep -q "no user has more than 2" <<<"$out"
check "auto with nothing to hold out: als" grep -q "trained als" <<<"$out"
out=$("$rec" train --data "$tr" --model knn --out "$dir/x.lpm" 2>&1); rc=$?
check "--model knn is a usage error naming auto (exit $rc)" test "$rc" -eq 2
check "--model knn names auto" grep -q "or auto" <<<"$out"

ev=$("$rec" eval --model "$dir/itemknn.lpm" --train "$tr" --test "$te" --type-col type --k 10 --json)
check "eval exit 0" test $? -eq 0
check "eval one line" test "$(wc -l <<<"$ev")" -eq 1
for key in users precision_at_k recall_at_k ndcg_at_k map_at_k coverage; do
  check "eval has $key" grep -q "\"$key\":" <<<"$ev"
done
check "eval users" test "$(jget users "$ev")" -eq 120
pop=$("$rec" eval --model "$dir/popular.lpm" --train "$tr" --test "$te" --type-col type --json)
check "itemknn beats popularity on NDCG@10" \
  awk -v a="$(jget ndcg_at_k "$ev")" -v b="$(jget ndcg_at_k "$pop")" 'BEGIN { exit !(a > b) }'
hi=$("$rec" eval --model "$dir/itemknn.lpm" --train "$tr" --test "$te" --type-col type \
     --min-weight 3 --json)
check "min-weight keeps fewer users" test "$(jget users "$hi")" -lt 120

tu=$("$rec" tune --data "$tr" --type-col type --model itemknn --trials 4 --out "$dir/tuned.lpm")
check "tune exit 0" test $? -eq 0 -a -s "$dir/tuned.lpm"
check "tune reports" grep -q '"validation_ndcg_at_k":' <<<"$tu"
"$rec" eval --model "$dir/tuned.lpm" --train "$tr" --test "$te" --type-col type --json >/dev/null
check "tuned model evaluates" test $? -eq 0
# tune without --model: the three families, the best kept
tu=$("$rec" tune --data "$tr" --type-col type --factors 8 --trials 3 --out "$dir/tuned3.lpm" \
     2>"$dir/tune3.err"); rc=$?
check "tune auto exit 0" test "$rc" -eq 0 -a -s "$dir/tuned3.lpm"
line=$(grep "after tuning" "$dir/tune3.err")
pick=$(sed -nE 's/.*itemknn [0-9.]+: (als|bpr|itemknn)$/\1/p' <<<"$line")
check "tune auto names the three and its pick: $line" test -n "$pick"
check "tune auto's model is the pick" grep -q "\"model\":\"$pick\"" <<<"$tu"

printf 'garbage' >"$dir/bad.lpm"
msg=$("$rec" eval --model "$dir/bad.lpm" --train "$tr" --test "$te" --json 2>&1); rc=$?
check "corrupt model exit 1" test "$rc" -eq 1
check "corrupt model names the file" grep -q "bad.lpm" <<<"$msg"
msg=$("$rec" train --data "$dir/none.csv" --out "$dir/x.lpm" 2>&1); rc=$?
check "missing data exit 1" test "$rc" -eq 1
msg=$("$rec" train --data "$tr" --user-col nope --out "$dir/x.lpm" 2>&1); rc=$?
check "bad column exit 1 naming it" test "$rc" -eq 1 -a -n "$(grep nope <<<"$msg")"
"$rec" train --data "$tr" --factors 0 --out "$dir/x.lpm" >/dev/null 2>&1
check "bad flag value exit 2" test $? -eq 2
"$rec" train --data "$tr" --bogus 1 --out "$dir/x.lpm" >/dev/null 2>&1
check "unknown flag exit 2" test $? -eq 2
msg=$("$rec" train --data "$tr" --half-life-days nan --out "$dir/x.lpm" 2>&1); rc=$?
check "--half-life-days nan is a usage error naming the flag (exit $rc)" \
  test "$rc" -eq 2 -a -n "$(grep -- "--half-life-days 'nan' is not a number" <<<"$msg")"
msg=$("$rec" train --data "$tr" --factors 4 --factors 8 --out "$dir/x.lpm" 2>&1); rc=$?
check "a flag given twice is a usage error saying so (exit $rc)" \
  test "$rc" -eq 2 -a -n "$(grep -- "--factors is given twice" <<<"$msg")"
"$rec" >/dev/null 2>&1
check "no command exit 2" test $? -eq 2

# ---- data unlike the shop ----
# eval reads the test files with the training columns, stored in the model: other column names
# and --min-weight on the weight column work without repeating the column flags
awk -F, 'NR == 1 { print "userId,movieId,rating"; next }
         { printf "%s,%s,%d\n", $1, $2, 1 + (NR * 7) % 5 }' "$tr" >"$dir/ml_tr.csv"
awk -F, 'NR == 1 { print "userId,movieId,rating"; next } # odd users rate 5, even ones 1
         { printf "%s,%s,%d\n", $1, $2, substr($1, 2) % 2 ? 5 : 1 }' "$te" >"$dir/ml_te.csv"
"$rec" train --data "$dir/ml_tr.csv" --user-col userId --item-col movieId --weight-col rating \
  --model itemknn --out "$dir/ml.lpm" >/dev/null
ev=$("$rec" eval --model "$dir/ml.lpm" --train "$dir/ml_tr.csv" --test "$dir/ml_te.csv" \
     --min-weight 4 --json 2>&1); rc=$?
check "eval uses the stored columns" test "$rc" -eq 0
check "eval --min-weight uses the stored weight column" \
  test "$(jget users "$ev")" -gt 0 -a "$(jget users "$ev")" -lt 120
msg=$("$rec" eval --model "$dir/ml.lpm" --train "$dir/ml_tr.csv" --test "$dir/ml_te.csv" \
      --user-col nope --json 2>&1); rc=$?
check "an eval flag overrides the stored column" test "$rc" -eq 1 -a -n "$(grep nope <<<"$msg")"
"$rec" eval --model "$dir/itemknn.lpm" --train "$tr" --test "$te" --json >/dev/null
check "eval takes the stored --type-col" test $? -eq 0

# the same files as MovieLens ratings.dat (no header line, "::" between fields) and as a
# headerless TSV: c1 user and c2 item by default, --weight-col c3; the same evaluation
for f in ml_tr ml_te; do
  tail -n +2 "$dir/$f.csv" | sed 's/,/::/g' >"$dir/$f.dat"
  tail -n +2 "$dir/$f.csv" | tr , '\t' >"$dir/$f.tsv"
done
for x in dat tsv; do
  "$rec" train --data "$dir/ml_tr.$x" --weight-col c3 --model itemknn --out "$dir/ml$x.lpm" \
    >/dev/null 2>"$dir/ml$x.err"
  check "train on a headerless .$x" test $? -eq 0
  check "headerless .$x said so" grep -q "no header line.*c1..c3" "$dir/ml$x.err"
  b=$("$rec" eval --model "$dir/ml$x.lpm" --train "$dir/ml_tr.$x" --test "$dir/ml_te.$x" \
      --min-weight 4 --json 2>/dev/null)
  check "headerless .$x evaluates as the csv" test -n "$b" -a "$b" = "$ev"
done
msg=$("$rec" train --data "$dir/ml_tr.dat" --weight-col rating --out "$dir/x.lpm" 2>&1)
check "headerless file: a named column that is not there lists c1.." \
  grep -q "no header line.*no column 'rating'.*c1..c3" <<<"$msg"
"$rec" tune --data "$dir/ml_tr.dat" --weight-col c3 --trials 1 --out "$dir/mlt.lpm" \
  >/dev/null 2>&1
check "tune on a headerless file" test $? -eq 0
# MovieLens' userId / movieId without --user-col / --item-col: read as the user and the item,
# said so, the same evaluation as with the flags; a hint names the rating column
"$rec" train --data "$dir/ml_tr.csv" --weight-col rating --model itemknn --out "$dir/mlg.lpm" \
  >/dev/null 2>"$dir/mlg.err"
check "userId / movieId found by name" test $? -eq 0
check "userId / movieId: said so" grep -q "reading 'userId' as the user.*" "$dir/mlg.err"
b=$("$rec" eval --model "$dir/mlg.lpm" --train "$dir/ml_tr.csv" --test "$dir/ml_te.csv" \
    --min-weight 4 --json 2>/dev/null)
check "userId / movieId evaluate as with the flags" test -n "$b" -a "$b" = "$ev"
sed '1s/movieId/artist_name/' "$dir/ml_tr.csv" >"$dir/an.csv" # a second-rank name, alone
msg=$("$rec" train --data "$dir/an.csv" --model popular --out "$dir/x.lpm" 2>&1)
check "artist_name read as the item" grep -q "reading 'artist_name' as the item" <<<"$msg"
msg=$("$rec" train --data "$dir/ml_tr.csv" --out "$dir/x.lpm" 2>&1)
check "a rating column is named as a --weight-col hint" \
  grep -q "every interaction counts 1; --weight-col rating would" <<<"$msg"

# ALS (Cholesky) on rows of hundreds of items with weights up to 5e7 trains (the float normal
# equations were not positive definite there)
awk 'BEGIN { print "user_id,item_id,plays"; s = 7
  for (u = 0; u < 40; u++) for (i = 0; i < 400; i++) {
    s = (s * 1103515245 + 12345) % 2147483648
    if (s % 10 < 8) printf "u%d,i%d,%d\n", u, i, 1 + (s % 50000) * 1000 } }' >"$dir/heavy.csv"
out=$("$rec" train --data "$dir/heavy.csv" --weight-col plays --weight-transform none \
      --out "$dir/heavy.lpm" 2>&1)
check "ALS trains on weights up to 5e7" test $? -eq 0 -a -s "$dir/heavy.lpm"
awk 'BEGIN { print "user_id,item_id,plays"; s = 11 # heavy-tailed: 1 / x^2, x uniform
  for (u = 0; u < 40; u++) for (i = 0; i < 60; i++) {
    s = (s * 1103515245 + 12345) % 2147483648; x = (s % 1000 + 1) / 1000
    if (s % 3 == 0) printf "u%d,i%d,%d\n", u, i, 1 / (x * x) } }' >"$dir/plays.csv"
"$rec" train --data "$dir/plays.csv" --weight-col plays --out "$dir/plays.lpm" >/dev/null
check "--weight-transform auto picks log1p on play counts" \
  grep -aq '"weight_transform":"log1p"' "$dir/plays.lpm"
"$rec" train --data "$dir/heavy.csv" --weight-col plays --out "$dir/heavy_auto.lpm" >/dev/null
check "--weight-transform auto keeps evenly spread weights" \
  grep -aq '"weight_transform":"none"' "$dir/heavy_auto.lpm"
"$rec" train --data "$dir/ml_tr.csv" --user-col userId --item-col movieId --weight-col rating \
  --model popular --out "$dir/ml_pop.lpm" >/dev/null
check "--weight-transform auto keeps ratings as they are" \
  grep -aq '"weight_transform":"none"' "$dir/ml_pop.lpm"
"$rec" train --data "$tr" --weight-transform sqrt --out "$dir/x.lpm" >/dev/null 2>&1
check "bad --weight-transform exit 2" test $? -eq 2

# timestamps in milliseconds decay as the same times in seconds (they underflowed to weight 0)
awk -v ms=0 'BEGIN { print "user_id,item_id,timestamp"
  for (u = 0; u < 30; u++) for (i = 0; i < 12; i++)
    printf "u%d,i%d,%d\n", u, (u * 7 + i * 3) % 40, 1600000000 + (u * 12 + i) * 97531 }' \
  >"$dir/ts_s.csv"
awk -F, 'NR == 1 { print; next } { printf "%s,%s,%s000\n", $1, $2, $3 }' "$dir/ts_s.csv" \
  >"$dir/ts_ms.csv"
for u in s ms; do
  "$rec" train --data "$dir/ts_$u.csv" --time-col timestamp --half-life-days 30 \
    --model itemknn --out "$dir/ts_$u.lpm" >/dev/null 2>&1
  check "train with $u timestamps and decay" test $? -eq 0
done
a=$("$rec" eval --model "$dir/ts_s.lpm" --train "$dir/ts_s.csv" --test "$dir/ts_s.csv" --json \
    2>/dev/null)
b=$("$rec" eval --model "$dir/ts_ms.lpm" --train "$dir/ts_ms.csv" --test "$dir/ts_ms.csv" --json \
    2>/dev/null)
check "milliseconds evaluate as seconds" test -n "$a" -a "$a" = "$b"

# event types of other names: an unknown one names itself and the flag; --event-weights is
# stored, so eval needs no flags
sed 's/,cart,/,addtocart,/; s/,purchase,/,transaction,/' "$tr" >"$dir/rr_tr.csv"
sed 's/,cart,/,addtocart,/; s/,purchase,/,transaction,/' "$te" >"$dir/rr_te.csv"
msg=$("$rec" train --data "$dir/rr_tr.csv" --event-col type --out "$dir/rr.lpm" 2>&1); rc=$?
check "unknown event type exit 1" test "$rc" -eq 1
check "unknown event type named with the flag" \
  grep -Eq "'(addtocart|transaction)'.*--event-weights" <<<"$msg"
"$rec" train --data "$dir/rr_tr.csv" --event-col type --model itemknn \
  --event-weights addtocart=3,transaction=5,view=1 --out "$dir/rr.lpm" >/dev/null
check "train with --event-weights" test $? -eq 0
a=$("$rec" eval --model "$dir/rr.lpm" --train "$dir/rr_tr.csv" --test "$dir/rr_te.csv" \
    --min-weight 3 --json)
b=$("$rec" eval --model "$dir/itemknn.lpm" --train "$tr" --test "$te" --min-weight 3 --json)
check "stored event weights evaluate as the built-in ones" test -n "$a" -a "$a" = "$b"
"$rec" train --data "$tr" --type-col type --event-weights view=1,cart --out "$dir/x.lpm" \
  >/dev/null 2>&1
check "bad --event-weights exit 2" test $? -eq 2

# serve on a free port: pick one, start, query, stop with SIGTERM
port=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+)
"$rec" serve --model "$dir/als.lpm" --port "$port" --db "$dir/rec.db" 2>"$dir/serve.log" &
pid=$!
ok=0
for _ in $(seq 1 300); do # up to 30 s: a loaded machine under ASan starts slowly
  if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then ok=1; break; fi
  sleep 0.1
done
if [ "$ok" = 1 ]; then
  printf 'GET /v1/recommend?user=u0001&k=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
  resp=$(cat <&3)
  exec 3<&- 3>&-
  check "serve answers 200" grep -q "HTTP/1.1 200" <<<"$resp"
  check "serve lists items" grep -q '"items":\[{"item":' <<<"$resp"
else
  check "serve listens" false
fi
kill -TERM "$pid" 2>/dev/null
wait "$pid"
check "serve stops cleanly on SIGTERM" test $? -eq 0

# serve --items: the catalog file feeds ?category=; what it does not say (in_stock) keeps what
# POST /v1/items stored, across restarts
if command -v curl >/dev/null; then
  start_items() {
    "$rec" serve --model "$dir/als.lpm" --port "$port" --db "$dir/cat.db" \
      --items "$dir/shop/items.csv" 2>"$dir/serve_items.log" &
    pid=$!
    for _ in $(seq 1 300); do
      curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
      sleep 0.1
    done
  }
  start_items
  out=$(curl -s "http://127.0.0.1:$port/v1/recommend?user=u0001&k=5&category=toys")
  got=$(grep -o '"item":"[^"]*"' <<<"$out" | cut -d'"' -f4)
  cats=$(for i in $got; do awk -F, -v i="$i" '$1 == i { print $2 }' "$dir/shop/items.csv"; done |
         sort -u | tr '\n' ' ')
  check "--items: a category filter lists that category only ($cats)" test "$cats" = "toys "
  first=$(head -1 <<<"$got")
  curl -s -X POST "http://127.0.0.1:$port/v1/items" \
    -d "{\"item\":\"$first\",\"in_stock\":false}" >/dev/null
  kill -TERM "$pid"; wait "$pid"
  start_items
  out=$(curl -s "http://127.0.0.1:$port/v1/recommend?user=u0001&k=5&category=toys")
  check "--items on restart keeps an item posted out of stock" \
    test -z "$(grep -o "\"item\":\"$first\"" <<<"$out")"
  kill -TERM "$pid"; wait "$pid"
fi

echo "$fails failed"
[ "$fails" -eq 0 ]
