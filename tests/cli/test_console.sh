#!/usr/bin/env bash
# test_console.sh - `lepton console` over loopback HTTP, without a browser: the embedded files
# (types, no external URL: the console works offline), the /api/<svc>/ proxy (methods, bodies,
# statuses, content types and the X-Lepton-Query query passed through, a service's 413 passed
# back), a 502 naming a service that is down and its port, and /api/overview: up/down per
# service, request and error counts that exclude the console's own probes (exact numbers), a
# windowed rate, and latency percentiles equal to histogram_quantile computed here by awk from
# the service's own /metrics; the fraud rule backtest (serve --history) through the proxy, its
# hit count equal to awk's count over the history. Three cheap services run (customer service,
# fraud, recommend); diagnosis points at a closed port. SIGTERM stops the console with exit 0.
set -u
# jq -e that fails on empty input too (jq 1.6's -e exits 0 when there is no value at all, so a
# crashed command's empty output would pass)
jqe() { local out; out=$(jq -e "$@") && [ -n "$out" ]; }
export -f jqe
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}"
src="${LEPTON_SOURCE_DIR:?}"
for t in curl jq; do command -v "$t" >/dev/null || { echo "SKIP: $t missing"; exit 77; }; done
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  rm -rf "$dir"
}
trap cleanup EXIT
fails=0
check() { # check NAME COMMAND... (the command's success is the check)
  local name=$1; shift
  if "$@" >/dev/null 2>&1; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
die() { echo "FAIL $*"; for f in "$dir"/*.err; do echo "--- $f"; tail -5 "$f"; done; exit 1; }

d="$src/data"
"$bin/lepton-customer-service" train --data "$d/support-bot/intents_train.tsv" \
  --faq "$d/support-bot/faq.tsv" --bot "$d/support-bot/bot.json" --out "$dir/cs.lpm" \
  >/dev/null 2>"$dir/train_cs.err" || die "train cs"
"$bin/lepton-recommend" train --data "$d/shop/train.csv" --type-col type --model als \
  --factors 8 --iterations 4 --out "$dir/rec.lpm" >/dev/null 2>"$dir/train_rec.err" \
  || die "train recommend"
awk -F, 'NR == 1 || $2 < "2025-02-10"' "$d/fraud/transactions.csv" >"$dir/fraud_train.csv"
awk -F, 'NR == 1 || $2 >= "2025-02-15"' "$d/fraud/transactions.csv" >"$dir/fraud_hist.csv"
"$bin/lepton-fraud" train --data "$dir/fraud_train.csv" --label tx_fraud --time-col tx_datetime \
  --entity-cols customer_id,terminal_id --amount-col tx_amount --id-col transaction_id \
  --drop-cols tx_fraud_scenario --threads 2 --param n_rounds=20 --out "$dir/fraud.lpm" \
  >/dev/null 2>"$dir/train_fraud.err" || die "train fraud"

start() { # start NAME COMMAND... ; sets port_NAME from the "http://host:port" log line
  local name=$1; shift
  LEPTON_LOG=info "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
  pids+=($!)
  local p=""
  for _ in $(seq 200); do
    p=$(grep -ho 'http://[0-9.]*:[0-9]*' "$dir/$name.out" "$dir/$name.err" 2>/dev/null \
        | head -1 | sed 's/.*://')
    [ -n "$p" ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || die "$name exited at start"
    sleep 0.1
  done
  [ -n "$p" ] || die "$name did not start"
  printf -v "port_$name" '%s' "$p"
}
start cs "$bin/lepton-customer-service" serve --model "$dir/cs.lpm" --port 0 --db "$dir/cs.db"
start recommend "$bin/lepton-recommend" serve --model "$dir/rec.lpm" --port 0 \
  --db "$dir/rec.db"
start fraud "$bin/lepton-fraud" serve --model "$dir/fraud.lpm" --port 0 --db "$dir/fraud.db" \
  --history "$dir/fraud_hist.csv" --threads 2
# port 1: nothing listens there (privileged, unused), so connecting is refused
# shellcheck disable=SC2154
start console "$bin/lepton" console --port 0 --cs-port "$port_cs" --fraud-port "$port_fraud" \
  --recommend-port "$port_recommend" --diagnosis-port 1
console_pid=${pids[-1]}
url="http://127.0.0.1:$port_console"
code() { curl -s -o "$dir/body" -D "$dir/headers" -w '%{http_code}' "$@"; }

# ---- files ---------------------------------------------------------------------------------
check "usage error exits 2" bash -c "'$bin/lepton' console --port 70000 2>/dev/null; test \$? -eq 2"
check "GET / 200" test "$(code "$url/")" = 200
check "/ is HTML" grep -qi '^content-type: text/html' "$dir/headers"
cp "$dir/body" "$dir/index.html"
check "/index.html is the same page" bash -c "curl -s '$url/index.html' | cmp -s - '$dir/index.html'"
check "the embedded page is the source file" cmp -s "$dir/index.html" "$src/cli/console/index.html"
for f in app.js style.css favicon.svg; do
  check "GET /$f is the source file" bash -c "curl -s '$url/$f' | cmp -s - '$src/cli/console/$f'"
done
code "$url/app.js" >/dev/null
check "app.js is text/javascript" grep -qi '^content-type: text/javascript' "$dir/headers"
code "$url/style.css" >/dev/null
check "style.css is text/css" grep -qi '^content-type: text/css' "$dir/headers"
check "no external URL in the console's files (works offline)" bash -c \
  "! cat '$src'/cli/console/* | grep -oE 'https?://[^\"'\'' )]+' | grep -v '^http://www.w3.org/2000/svg$'"
check "unknown file 404" test "$(code "$url/missing.js")" = 404
check "shared /healthz still answers" test "$(code "$url/healthz")" = 200

# ---- proxy ---------------------------------------------------------------------------------
chat() { code -X POST -H 'Content-Type: application/json' --data-binary "$1" "$url/api/cs/v1/chat"; }
check "POST chat through the proxy 200" test "$(chat '{"session_id":"c1","text":"where is my order 12345"}')" = 200
check "proxied reply is JSON with an intent" jqe '.intent | length > 0' "$dir/body"
check "proxied content type" grep -qi '^content-type: application/json' "$dir/headers"
check "GET session (path parameter) 200" test "$(code "$url/api/cs/v1/sessions/c1")" = 200
check "session has one turn" jqe '.turns == 1' "$dir/body"
check "service 400 passed back" test "$(chat '{"session_id":"c1","text":""}')" = 400
check "service error shape passed back" jqe '.error.message | test("text")' "$dir/body"
head -c 2000000 /dev/zero | tr '\0' a | sed 's/^/{"session_id":"c1","text":"/; s/$/"}/' >"$dir/big.json"
check "service 413 passed back" test "$(code -X POST -H 'Content-Type: application/json' \
  --data-binary @"$dir/big.json" "$url/api/cs/v1/chat")" = 413
check "query via X-Lepton-Query" test "$(code -H 'X-Lepton-Query: user=u0003&k=4' \
  "$url/api/recommend/v1/recommend")" = 200
check "the query reached the service (k=4, user)" jqe '(.items | length == 4) and .user == "u0003"' "$dir/body"
check "plain query string forwarded" test "$(code "$url/api/recommend/v1/recommend?user=u0003&k=2")" = 200
check "the plain query reached the service (k=2, user)" jqe '(.items | length == 2) and .user == "u0003"' "$dir/body"
check "an encoded query value survives" test "$(code "$url/api/recommend/v1/recommend?user=u%30003&k=1")" = 200
check "decoded then re-encoded (user u0003)" jqe '.user == "u0003"' "$dir/body"
code -H 'X-Lepton-Query: user=u0003&k=4' "$url/api/recommend/v1/recommend" >/dev/null
first=$(jq -r '.items[0].item' "$dir/body")
check "POST event 200" test "$(code -X POST -H 'Content-Type: application/json' \
  -d "{\"user\":\"u0003\",\"item\":\"$first\",\"type\":\"purchase\"}" "$url/api/recommend/v1/events")" = 200
code -H 'X-Lepton-Query: user=u0003&k=4' "$url/api/recommend/v1/recommend" >/dev/null
check "the list changed: the bought item left it" jqe --arg i "$first" '[.items[].item] | index($i) == null' "$dir/body"
check "unknown service 404" test "$(code "$url/api/billing/v1/x")" = 404
check "404 names the service" jqe '.error.message | test("billing")' "$dir/body"
check "down service 502" test "$(code -X POST -H 'Content-Type: application/json' -d '{}' \
  "$url/api/diagnosis/v1/diagnose")" = 502
check "502 names the service and its port" jqe '.error.code == "bad_gateway" and (.error.message | test("diagnosis.*127.0.0.1:1"))' "$dir/body"
rules='[{"name":"big","when":"amount > 220","action":"review"},{"name":"tiny","when":"amount < 1","action":"allow"}]'
check "PUT rules through the proxy" test "$(code -X PUT -H 'Content-Type: application/json' -d "$rules" \
  "$url/api/fraud/v1/rules")" = 200
check "POST backtest through the proxy" test "$(code -X POST -H 'Content-Type: application/json' \
  -d "{\"rules\":$rules}" "$url/api/fraud/v1/rules/backtest")" = 200
cp "$dir/body" "$dir/backtest.json"
rows=$(($(wc -l <"$dir/fraud_hist.csv") - 1))
big=$(awk -F, 'NR > 1 && $5 > 220' "$dir/fraud_hist.csv" | wc -l)
frauds=$(awk -F, 'NR > 1 && $6 == 1' "$dir/fraud_hist.csv" | wc -l)
check "backtest replayed every history row ($rows)" jqe --argjson n "$rows" --argjson f "$frauds" '.n == $n and .n_fraud == $f' "$dir/backtest.json"
check "backtest hits of 'amount > 220' = $big" jqe --argjson b "$big" '.rules[0].name == "big" and .rules[0].hits == $b' "$dir/backtest.json"
check "a bad rule is a 400 naming it" test "$(code -X POST -H 'Content-Type: application/json' \
  -d '[{"name":"r1","when":"amout > 3","action":"block"}]' "$url/api/fraud/v1/rules/backtest")" = 400
check "the 400 names the feature" jqe '.error.message | test("amout")' "$dir/body"
for t in dA dB dC; do
  code -X POST -H 'Content-Type: application/json' \
    -d "{\"transaction_id\":\"$t\",\"amount\":42.5,\"customer_id\":\"c1\",\"terminal_id\":\"t1\"}" \
    "$url/api/fraud/v1/score" >/dev/null
done
check "decision log through the proxy" test "$(code "$url/api/fraud/v1/decisions?limit=2")" = 200
check "the two newest decisions, newest first" jqe '[.decisions[].transaction_id] == ["dC","dB"]' "$dir/body"
check "a logged decision carries its transaction" jqe '.decisions[0].transaction.amount == 42.5 and (.decisions[0].decision | test("approve|review|decline"))' "$dir/body"
check "a bad limit is a 400 naming it" test "$(code "$url/api/fraud/v1/decisions?limit=0")" = 400
check "the 400 names the limit" jqe '.error.message | test("limit")' "$dir/body"

# ---- overview ------------------------------------------------------------------------------
check "overview 200" test "$(code "$url/api/overview")" = 200
cp "$dir/body" "$dir/o1.json"
check "four services in order" jqe '[.services[].name] == ["cs","fraud","recommend","diagnosis"]' "$dir/o1.json"
check "cs, fraud and recommend up, diagnosis down" jqe '[.services[].up] == [true,true,true,false]' "$dir/o1.json"
check "a down service carries its error" jqe '.services[3].error | test("127.0.0.1:1")' "$dir/o1.json"
# cs so far: 1 chat of 200, 1 of 400, 1 refused with 413, 1 session read (probes excluded)
cs_req=$(jq '.services[0].requests' "$dir/o1.json")
cs_err=$(jq '.services[0].errors' "$dir/o1.json")
check "cs requests exclude the probes ($cs_req)" test "$cs_req" -eq 4
check "cs errors are the 400 and the 413 ($cs_err)" test "$cs_err" -eq 2
check "cs counters from /metrics" jqe '.services[0].metrics.cs_turns_total == 1' "$dir/o1.json"
check "per-route counts" jqe '.services[0].routes["/v1/sessions/{id}"] == 1' "$dir/o1.json"
for i in 1 2 3; do chat "{\"session_id\":\"c2\",\"text\":\"hello $i\"}" >/dev/null; done
sleep 0.2
code "$url/api/overview" >/dev/null
cp "$dir/body" "$dir/o2.json"
check "window: exactly the 3 new requests" jqe --argjson n "$cs_req" '.services[0].requests == $n + 3 and .services[0].latency_ms.count == 3' "$dir/o2.json"
check "window: a positive rate" jqe '.services[0].rps > 0 and .services[0].window_s > 0' "$dir/o2.json"
check "window: no new errors" jqe '.services[0].error_rate == 0' "$dir/o2.json"
# the cumulative percentiles against histogram_quantile over the service's own buckets
curl -s "http://127.0.0.1:$port_cs/metrics" >"$dir/metrics.txt"
code "$url/api/overview" >/dev/null
quant() { # quant Q -> ms, from the buckets of every non-probe route
  awk -v q="$1" '
    /^lepton_http_request_duration_seconds_bucket\{/ {
      if ($0 ~ /route="\/(healthz|readyz|version|metrics|v1\/monitor)"/) next
      match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
      v = $NF; if (le == "+Inf") le = 1e300; c[le + 0] += v }
    END {
      n = 0; for (k in c) b[++n] = k + 0
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t }
      rank = q * c[b[n]]; prev = 0; below = 0
      for (i = 1; i <= n; i++) {
        if (c[b[i]] >= rank) {
          if (b[i] >= 1e300) { printf "%.6f", prev * 1000; exit }
          printf "%.6f", (prev + (b[i] - prev) * (rank - below) / (c[b[i]] - below)) * 1000; exit }
        prev = b[i]; below = c[b[i]] } }' "$dir/metrics.txt"
}
for q in 50 95 99; do
  want=$(quant "0.$q")
  got=$(jq ".services[0].latency_ms_all.p$q" "$dir/body")
  check "p$q equals histogram_quantile ($got ms vs $want ms)" \
    awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.001 + 1e-6 * b) }'
done

# ---- stop ----------------------------------------------------------------------------------
kill -TERM "$console_pid"
wait "$console_pid"; rc=$?
check "SIGTERM stops the console with exit 0 ($rc)" test "$rc" -eq 0

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all console CLI checks passed"
