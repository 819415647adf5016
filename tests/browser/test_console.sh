#!/usr/bin/env bash
# test_console.sh - the web console in headless Chromium, driven over WebDriver (Debian's
# chromium-driver) by a small client written here with curl and jq. It trains four small
# models from data/ (seconds), starts the four services and `lepton console` on free ports,
# then uses every page as a person would and checks what they see: the chat answer and its
# intent label, a fraud decision in the feed and a saved rule backtested, the recommendation
# list changing after a click, the diagnosis heat map (an <img> with naturalWidth > 0) and its
# differential, and SVG charts with data on the monitoring page. Screenshots go to
# build/test-artifacts/console/*.png. Skips (77) without chromium, chromedriver, curl or jq.
set -u
# jq -e that fails on empty input too (jq 1.6's -e exits 0 when there is no value at all, so a
# crashed command's empty output would pass)
jqe() { local out; out=$(jq -e "$@") && [ -n "$out" ]; }
export -f jqe
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}"
src="${LEPTON_SOURCE_DIR:?}"
for t in chromium chromedriver curl jq base64; do
  command -v "$t" >/dev/null || { echo "SKIP: $t missing"; exit 77; }
done
art="${LEPTON_ARTIFACTS:-$bin/../test-artifacts/console}"
mkdir -p "$art"
dir=$(mktemp -d)
pids=()
wd="" sid=""
cleanup() {
  [ -n "$sid" ] && curl -s -m 5 -X DELETE "$wd/session/$sid" >/dev/null 2>&1
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

# ---- models (small: the point is the console, not the models) -----------------------------
d="$src/data"
"$bin/lepton-customer-service" train --data "$d/support-bot/intents_train.tsv" \
  --valid "$d/support-bot/intents_valid.tsv" --slots "$d/support-bot/slots.tsv" \
  --faq "$d/support-bot/faq.tsv" --bot "$d/support-bot/bot.json" --out "$dir/cs.lpm" \
  >/dev/null 2>"$dir/train_cs.err" || die "train cs"
awk -F, 'NR == 1 || $2 < "2025-02-10"' "$d/fraud/transactions.csv" >"$dir/fraud_train.csv"
awk -F, 'NR == 1 || $2 >= "2025-02-10"' "$d/fraud/transactions.csv" >"$dir/fraud_hist.csv"
"$bin/lepton-fraud" train --data "$dir/fraud_train.csv" --label tx_fraud --time-col tx_datetime \
  --entity-cols customer_id,terminal_id --amount-col tx_amount --id-col transaction_id \
  --drop-cols tx_fraud_scenario --threads 2 --param n_rounds=40 --review-rate 2% \
  --out "$dir/fraud.lpm" >/dev/null 2>"$dir/train_fraud.err" || die "train fraud"
"$bin/lepton-recommend" train --data "$d/shop/train.csv" --type-col type --model als \
  --factors 16 --iterations 8 --out "$dir/rec.lpm" >/dev/null 2>"$dir/train_rec.err" \
  || die "train recommend"
DX_EPOCHS=3 "$bin/lepton-diagnosis" train --images "$d/diagnosis/images" --out "$dir/dx.lpm" \
  >/dev/null 2>"$dir/train_dx.err" || die "train diagnosis"
"$bin/lepton-diagnosis" train --text "$d/diagnosis/symptoms.csv" --out "$dir/dxt.lpm" \
  >/dev/null 2>"$dir/train_dxt.err" || die "train diagnosis text"

# ---- services on free ports (port 0; the bound port is read from the log line) -------------
start() { # start NAME COMMAND... ; sets port_NAME
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
start fraud "$bin/lepton-fraud" serve --model "$dir/fraud.lpm" --port 0 --db "$dir/fraud.db" \
  --history "$dir/fraud_hist.csv"
start recommend "$bin/lepton-recommend" serve --model "$dir/rec.lpm" --port 0 \
  --db "$dir/rec.db"
start diagnosis "$bin/lepton-diagnosis" serve --image-model "$dir/dx.lpm" \
  --text-model "$dir/dxt.lpm" --port 0 --db "$dir/dx.db"
# shellcheck disable=SC2154
start console "$bin/lepton" console --port 0 --state "$dir" --cs-port "$port_cs" \
  --fraud-port "$port_fraud" --recommend-port "$port_recommend" \
  --diagnosis-port "$port_diagnosis"
url="http://127.0.0.1:$port_console"

# the console's HTTP surface is tested in tests/cli/test_console.sh; here only that all is up
check "overview: four services, all up" bash -c "curl -s '$url/api/overview' | jqe '[.services[] | select(.up)] | length == 4'"

# ---- WebDriver client ----------------------------------------------------------------------
wport=""
for _ in $(seq 20); do # a free port for chromedriver (it has no "any port" option)
  p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+)
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { wport=$p; break; }
done
[ -n "$wport" ] || die "no free port for chromedriver"
chromedriver --port="$wport" >"$dir/chromedriver.out" 2>"$dir/chromedriver.err" &
pids+=($!)
wd="http://127.0.0.1:$wport"
for _ in $(seq 100); do curl -s "$wd/status" | grep -q '"ready": *true' && break; sleep 0.1; done
wdc() { # wdc METHOD PATH [JSON] -> the reply's .value (JSON)
  curl -s -m 60 -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "$wd$2" | jq -c '.value'
}
caps=$(jq -nc --arg ud "$dir/profile" '{capabilities: {alwaysMatch: {browserName: "chrome",
  "goog:loggingPrefs": {browser: "ALL"}, "goog:chromeOptions": {binary: "/usr/bin/chromium", args: ["--headless=new", "--no-sandbox",
  "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
  ("--user-data-dir=" + $ud)]}}}}')
sid=$(wdc POST /session "$caps" | jq -r '.sessionId // empty')
[ -n "$sid" ] || die "no WebDriver session"
S="/session/$sid"
js() { # js 'return ...;' -> the result (JSON)
  wdc POST "$S/execute/sync" "$(jq -nc --arg s "$1" '{script: $s, args: []}')"
}
wait_js() { # wait_js SECONDS 'return <boolean>;' -> success when it became true
  local end=$((SECONDS + $1))
  while [ $SECONDS -lt "$end" ]; do
    [ "$(js "$2")" = true ] && return 0
    sleep 0.25
  done
  return 1
}
wfind() { wdc POST "$S/element" "$(jq -nc --arg v "$1" '{using: "css selector", value: $v}')" \
         | jq -r 'to_entries[0].value // empty'; }
click() { local e; e=$(wfind "$1"); [ -n "$e" ] && wdc POST "$S/element/$e/click" '{}' >/dev/null; }
typein() { local e; e=$(wfind "$1"); [ -n "$e" ] &&
           wdc POST "$S/element/$e/value" "$(jq -nc --arg t "$2" '{text: $t}')" >/dev/null; }
text() { local e; e=$(wfind "$1"); [ -n "$e" ] && wdc GET "$S/element/$e/text" | jq -r .; }
shot() { wdc GET "$S/screenshot" | jq -r . | base64 -d >"$art/$1.png"; }

wdc POST "$S/url" "$(jq -nc --arg u "$url/" '{url: $u}')" >/dev/null
check "the page loads with five tabs" wait_js 10 'return document.querySelectorAll("#tabs button").length === 5;'
check "status dots turn green" wait_js 10 'return document.querySelectorAll(".dot.up").length === 4;'

# customer service: the answer text and an intent label appear
typein '#cs-input' 'where is my order ORD-48213?'
click '#cs-send'
check "chat: the bot answers" wait_js 15 'const r = document.querySelector(".turn.bot [data-role=reply]"); return !!r && r.textContent.length > 3;'
intent=$(text '.turn.bot [data-role=intent]')
check "chat: an intent label ($intent)" test -n "$intent"
check "chat: hand-off shown" test -n "$(text '.turn.bot [data-role=handoff]')"
click '#cs-try button:last-child'
check "chat: a second turn" wait_js 15 'return document.querySelectorAll(".turn.bot").length === 2;'
check "chat: session panel filled" wait_js 10 'return /turns\s*2/.test(document.querySelector("#cs-state").textContent);'
shot cs

# fraud: a decision appears in the feed; rules saved and backtested
click 'button[data-page=fraud]'
click '#fr-score'
check "fraud: a decision in the feed" wait_js 15 'const c = document.querySelector("#fr-feed tr:not(.none) .pill"); return !!c && /^(approve|review|decline)$/.test(c.textContent);'
check "fraud: reasons shown" wait_js 5 'return document.querySelectorAll("#fr-result ul.reasons li").length > 0;'
click '#fr-burst'
check "fraud: six decisions after a burst" wait_js 20 'return document.querySelectorAll("#fr-feed tr").length === 6;'
curl -s -X POST "http://127.0.0.1:$port_fraud/v1/score" -H 'Content-Type: application/json' \
  -d '{"transaction_id":"from-curl-1","amount":12.5,"customer_id":"c9","terminal_id":"t9"}' >/dev/null
check "fraud: another client's decision reaches the feed" wait_js 15 'return /from-curl-1/.test(document.querySelector("#fr-feed").textContent);'
click '#fr-rules-example'
click '#fr-rules-save'
check "fraud: rules saved and listed" wait_js 10 'return document.querySelectorAll("#fr-rules-table tbody tr").length === 2;'
check "fraud: the service has the rules" bash -c "curl -s 'http://127.0.0.1:$port_fraud/v1/rules' | jqe '.rules | length == 2'"
click '#fr-backtest'
check "fraud: backtest table per rule" wait_js 30 'return document.querySelectorAll("#fr-backtest-out tbody tr").length === 2;'
shot fraud

# recommend: the list changes after clicking an item
click 'button[data-page=recommend]'
check "recommend: a list" wait_js 10 'return document.querySelectorAll("#rc-items .item").length > 0;'
check "recommend: because you liked" wait_js 2 'return /because you liked/.test(document.querySelector("#rc-items").textContent);'
before=$(js 'return document.querySelector("#rc-items").dataset.list;' | jq -r .)
first=$(js 'return document.querySelector("#rc-items .item").dataset.item;' | jq -r .)
click '#rc-items .item'
check "recommend: the list changed after a click" wait_js 10 "return document.querySelector('#rc-items').dataset.list !== '$before';"
after=$(js 'return document.querySelector("#rc-items").dataset.list;' | jq -r .)
check "recommend: the clicked item left the list" bash -c "! grep -qw '$first' <<<'$after'"
check "recommend: the event is listed" wait_js 2 "return document.querySelector('#rc-history').textContent.includes('$first');"
shot recommend

# diagnosis: the heat map renders over the image and a differential appears
click 'button[data-page=diagnosis]'
img=$(ls "$d/diagnosis/images/ring/"*.png | head -1)
typein '#dx-file' "$img"
check "diagnosis: the image shows" wait_js 10 'const i = document.querySelector("#dx-img"); return i.complete && i.naturalWidth > 0;'
click '#dx-go'
check "diagnosis: heat map rendered" wait_js 30 'const i = document.querySelector("#dx-heat"); return !!i.getAttribute("src") && i.complete && i.naturalWidth > 0;'
check "diagnosis: a differential" wait_js 5 'return document.querySelectorAll("#dx-diff .line").length >= 2;'
check "diagnosis: audit id and statement" wait_js 5 'return /audit id \d+/.test(document.querySelector("#dx-audit").textContent) && /Decision support/.test(document.querySelector("#dx-statement").textContent);'
shot diagnosis
# the symptoms alone: a text differential with the words that mattered
click '#dx-clear'
typein '#dx-text' 'I have had red patches and itchy rash for 3 days'
click '#dx-go'
check "diagnosis: text differential" wait_js 30 'return /psoriasis/.test(document.querySelector("#dx-diff").textContent);'
check "diagnosis: words that mattered" wait_js 5 'return document.querySelectorAll("#dx-abstain .chip").length >= 1;'
check "diagnosis: no heat map for text" wait_js 5 'return !document.querySelector("#dx-heat").getAttribute("src");'
shot diagnosis-text

# monitoring: SVG charts with data (two overviews apart give a rate)
click 'button[data-page=monitoring]'
check "monitoring: four service cards" wait_js 10 'return document.querySelectorAll("#mon-cards .card").length === 4;'
check "monitoring: an SVG line chart with data" wait_js 20 'return [...document.querySelectorAll("#mon-cards svg.chart path.series")].some(p => (p.getAttribute("d").match(/L/g) || []).length >= 1);'
check "monitoring: latency percentiles shown" wait_js 5 'return /p95 \d/.test(document.querySelector("#mon-cards").textContent);'
check "monitoring: cs counters" wait_js 5 'return /cs_turns_total [1-9]/.test(document.querySelector("#mon-cards").textContent);'
shot monitoring

# JavaScript errors logged by the page during all of the above (Chrome's log endpoint)
curl -s -X POST -H 'Content-Type: application/json' -d '{"type":"browser"}' "$wd$S/se/log" \
  | jq -c '[.value | arrays | .[] | select(.level == "SEVERE") | .message]' >"$dir/jslog.json"
check "no JavaScript errors in the page" jqe 'length == 0' "$dir/jslog.json"
jqe 'length == 0' "$dir/jslog.json" >/dev/null || cat "$dir/jslog.json"

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed; screenshots in $art"; exit 1; }
echo "all console browser checks passed; screenshots in $art"
