#!/usr/bin/env bash
# test_up.sh - `lepton up / status / down` end to end on free high ports and a temporary state
# folder: the first start trains the four default models from data/ and starts the services
# detached; each /healthz answers and each service answers one real request; status --json
# counts 4 up; a service killed with SIGKILL comes back (restart count 1, new pid, healthy);
# a second `up` on the same state and an `up` wanting a port in use both fail naming the pid /
# the port; `down` leaves no process whose command line names the state folder; the second
# start reuses the models (mtimes unchanged, "up to date") and is quick; a second crash waits
# the doubled back-off; the foreground mode stops everything on Ctrl-C and exits 0.
# DX_EPOCHS=2 keeps the diagnosis CNN's first training short (sanitizer builds too).
set -u
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}"
lepton="$bin/lepton"
src="${LEPTON_SOURCE_DIR:?LEPTON_SOURCE_DIR must point at the source tree}"
for t in curl pgrep base64; do command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }; done
dir=$(mktemp -d)
state="$dir/state"
cleanup() { "$lepton" down --state "$state" >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT
fails=0
check() { # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
port_free() { # nothing accepts a connection on 127.0.0.1:$1
  if { exec 9<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then exec 9<&- 9>&-; return 1; fi
}
no_process() { ! pgrep -f "$state" >/dev/null; }
ports=()
while [ "${#ports[@]}" -lt 5 ]; do
  p=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768+)
  case " ${ports[*]} " in *" $p "*) continue ;; esac
  port_free "$p" && ports+=("$p")
done
cs=${ports[0]} fr=${ports[1]} rc_=${ports[2]} dx=${ports[3]} con=${ports[4]}
flags=(--state "$state" --cs-port "$cs" --fraud-port "$fr" --recommend-port "$rc_"
       --diagnosis-port "$dx" --console-port "$con")
export DX_EPOCHS=2
code() { curl -s -o "$dir/body" -w '%{http_code}' "$@"; }
nup() { "$lepton" status --state "$state" --json | grep -o '"state":"up"' | wc -l; }

t0=$(date +%s.%N)
"$lepton" up "${flags[@]}" --detach >"$dir/up1.out" 2>"$dir/up1.err"; rc=$?
t1=$(date +%s.%N)
check "first up exit 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || { cat "$dir/up1.err"; exit 1; }
echo "first up (trains 4 models): $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
check "first up trained all five models" grep -q "5 model(s) trained" "$dir/up1.err"
check "table names every service" test "$(grep -cE 'customer-service|fraud|recommend|diagnosis' "$dir/up1.out")" -ge 4
for p in "$cs" "$fr" "$rc_" "$dx"; do
  check "healthz on $p" test "$(code "http://127.0.0.1:$p/healthz")" = 200
done

check "console serves its page" test "$(code "http://127.0.0.1:$con/")" = 200
check "console page is the console" grep -qi "<html" "$dir/body"
check "console overview answers" test "$(code "http://127.0.0.1:$con/api/overview")" = 200
for s_ in cs fraud recommend diagnosis; do
  check "overview has $s_" grep -q "\"$s_\"" "$dir/body"
done
check "console proxies a chat" test "$(code -X POST "http://127.0.0.1:$con/api/cs/v1/chat" \
  -d '{"session_id":"t0","text":"where is my order"}')" = 200
check "console backtest is on" test "$(code -X POST "http://127.0.0.1:$con/api/fraud/v1/rules/backtest" \
  -d '{"rules":[]}')" != 409

check "chat answers" test "$(code -X POST "http://127.0.0.1:$cs/v1/chat" \
  -d '{"session_id":"t1","text":"where is my order"}')" = 200
check "chat found the intent" grep -q '"intent":"order_status"' "$dir/body"
check "fraud scores" test "$(code -X POST "http://127.0.0.1:$fr/v1/score" \
  -d '{"transaction_id":"tx-1","time":"2026-11-27T10:00:00Z","amount":245.1,"customer_id":"7","terminal_id":"70"}')" = 200
check "fraud decision" grep -qE '"decision":"(approve|review|decline)"' "$dir/body"
check "fraud state warmed from the training history" test "$(code \
  "http://127.0.0.1:$fr/v1/entities/7?entity=customer_id")" = 200
check "fraud: customer 7's history counts" grep -qE '"transactions_total":[0-9]{2,}' "$dir/body"
check "recommend answers" test "$(code "http://127.0.0.1:$rc_/v1/recommend?user=u0001&k=3")" = 200
check "recommend lists 3 items" test "$(grep -o '"item":' "$dir/body" | wc -l)" -eq 3
check "recommend filters by the shop's categories" test "$(code \
  "http://127.0.0.1:$rc_/v1/recommend?user=u0001&k=3&category=books")" = 200
check "recommend: three books" test "$(grep -o '"item":' "$dir/body" | wc -l)" -eq 3
printf '{"image":"%s"}' "$(base64 -w0 "$src/data/diagnosis/images/ring/000.png")" >"$dir/dx.json"
check "diagnosis answers an image" test "$(code -X POST "http://127.0.0.1:$dx/v1/diagnose" \
  -H 'Content-Type: application/json' --data-binary @"$dir/dx.json")" = 200
check "diagnosis image differential" grep -q '"differential":\[{"label":' "$dir/body"
check "diagnosis answers symptoms" test "$(code -X POST "http://127.0.0.1:$dx/v1/diagnose" \
  -H 'Content-Type: application/json' \
  -d '{"text":"I have had red patches and itchy rash for 3 days"}')" = 200
check "diagnosis text differential" grep -q '"differential":\[{"label":' "$dir/body"
check "diagnosis token contributions" grep -q '"tokens":\[{' "$dir/body"

st=$("$lepton" status --state "$state" --json); rc=$?
check "status exit 0 when all are up" test "$rc" -eq 0
check "status says 4 up" grep -q '"up":4' <<<"$st"
check "status has model hashes" test "$(grep -o '"model_sha256":"[0-9a-f]\{64\}"' <<<"$st" | wc -l)" -eq 4

# a crash: kill -9 one service, the supervisor restarts it after ~1 s
old=$(cat "$state/run/customer-service.pid")
kill -9 "$old"
back=0
for _ in $(seq 1 100); do
  new=$(cat "$state/run/customer-service.pid" 2>/dev/null)
  if [ -n "$new" ] && [ "$new" != "$old" ] && [ "$(code "http://127.0.0.1:$cs/healthz")" = 200 ]; then
    back=1; break
  fi
  sleep 0.1
done
check "killed service comes back with a new pid" test "$back" -eq 1
st=$("$lepton" status --state "$state" --json)
check "restart counted once" grep -q '"name":"customer-service","pid":[0-9]*,"port":[0-9]*,"state":"up","supervisor_state":"running","restarts":1' <<<"$st"
check "4 services + console up after the restart" test "$(nup)" -eq 5
# a second crash soon after: the back-off has doubled, so it comes back after ~2 s, not ~1 s
old=$new
kill -9 "$old"
t0=$(date +%s.%N)
new=$old
for _ in $(seq 1 200); do
  new=$(cat "$state/run/customer-service.pid" 2>/dev/null)
  [ -n "$new" ] && [ "$new" != "$old" ] && break
  sleep 0.05
done
t1=$(date +%s.%N)
wait_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
check "second crash restarts after the doubled delay ($wait_s s)" \
  awk -v s="$wait_s" 'BEGIN{exit !(s >= 1.7 && s < 10)}'
for _ in $(seq 1 50); do [ "$(code "http://127.0.0.1:$cs/healthz")" = 200 ] && break; sleep 0.1; done
check "restart counted twice" grep -q '"name":"customer-service","pid":[0-9]*,"port":[0-9]*,"state":"up","supervisor_state":"running","restarts":2' \
  <<<"$("$lepton" status --state "$state" --json)"

# refusals
sup=$(cat "$state/run/up.pid")
err=$("$lepton" up "${flags[@]}" --detach 2>&1); rc=$?
check "second up on the same state fails" test "$rc" -ne 0
check "second up names the running pid" grep -q "already running.*pid $sup" <<<"$err"
err=$("$lepton" up --state "$dir/other" --cs-port "$cs" --fraud-port "$fr" \
      --recommend-port "$rc_" --diagnosis-port "$dx" --console-port 0 --detach 2>&1); rc=$?
check "up with a port in use fails" test "$rc" -ne 0
check "the error names the port" grep -q "port $cs .*already in use" <<<"$err"
check "nothing was trained for the refused state" test ! -e "$dir/other/models/fraud.lpm"

out=$("$lepton" down --state "$state"); rc=$?
check "down exit 0" test "$rc" -eq 0
check "down says what it stopped" grep -q "stopped lepton up (pid $sup)" <<<"$out"
check "no process of the state folder is left" no_process
check "pid files removed" test ! -e "$state/run/up.pid" -a ! -e "$state/run/fraud.pid"
out=$("$lepton" down --state "$state"); rc=$?
check "down again: exit 0, nothing runs" test "$rc" -eq 0 -a -n "$(grep 'nothing runs' <<<"$out")"
"$lepton" status --state "$state" >/dev/null; rc=$?
check "status exit 3 when not running" test "$rc" -eq 3

# second start: the cached models are reused
before=$(stat -c '%n %Y.%y' "$state"/models/*.lpm)
t0=$(date +%s.%N)
"$lepton" up "${flags[@]}" --detach >/dev/null 2>"$dir/up2.err"; rc=$?
t1=$(date +%s.%N)
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
echo "second up (cached models): $secs s"
check "second up exit 0" test "$rc" -eq 0
check "second up reuses the models" grep -q "up to date" "$dir/up2.err"
check "model files untouched" test "$before" = "$(stat -c '%n %Y.%y' "$state"/models/*.lpm)"
check "second up under 20 s ($secs)" awk -v s="$secs" 'BEGIN{exit !(s < 20)}'
check "4 services + console up after the second start" test "$(nup)" -eq 5
"$lepton" down --state "$state" >/dev/null
check "no process left after the second down" no_process

# the foreground mode: Ctrl-C (SIGINT to the whole process group) stops everything, exit 0
if command -v setsid >/dev/null; then
  setsid -w "$lepton" up "${flags[@]}" >"$dir/fg.out" 2>"$dir/fg.err" &
  fg=$!
  for _ in $(seq 1 200); do grep -q "running" "$dir/fg.out" 2>/dev/null && break; sleep 0.1; done
  check "foreground up prints the table" grep -q "lepton up: running" "$dir/fg.out"
  sup=$(cat "$state/run/up.pid")
  kill -INT -- "-$(ps -o pgid= -p "$sup" | tr -d ' ')"
  wait "$fg"; rc=$?
  check "foreground up exits 0 on Ctrl-C" test "$rc" -eq 0
  check "Ctrl-C is not taken for a crash" bash -c "! grep -q restarting '$dir/fg.err'"
  check "no process left after Ctrl-C" no_process
fi

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all lepton up checks passed"
