#!/usr/bin/env bash
# test_recommend.sh - lepton-recommend end to end on a tiny generated shop: generate (seeded,
# reproducible), train every model kind, eval --json (one object with the documented keys, item
# kNN beats popularity on this taste-structured data, --min-weight restricts relevance), tune
# writes a loadable model, serve answers /v1/recommend and stops on SIGTERM; bad files and flags
# exit non-zero with a one-line message.
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
"$rec" >/dev/null 2>&1
check "no command exit 2" test $? -eq 2

# serve on a free port: pick one, start, query, stop with SIGTERM
port=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+)
"$rec" serve --model "$dir/als.lpm" --port "$port" --db "$dir/rec.db" 2>"$dir/serve.log" &
pid=$!
ok=0
for _ in $(seq 1 50); do
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

echo "$fails failed"
[ "$fails" -eq 0 ]
