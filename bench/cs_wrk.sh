#!/usr/bin/env bash
# `lepton-customer-service serve` under load: POST /v1/chat with wrk on loopback, 32 connections,
# against the bare libmicrohttpd + cJSON ceiling server (bench/serve_ceiling.c, sent the 2-byte
# body "{}"), in one run. The model: the default support bot (data/support-bot: intents, slots,
# FAQ, bot definition), trained here. Every request is one chat turn of a session drawn from
# SESSIONS, its text a validation utterance of the bot drawn at random, so each one goes through
# the whole path: intent and out-of-scope, entities, slots, FAQ, the dialogue state read and
# written in SQLite, the reply. Reports requests/s, p50/p99, non-2xx count, requests and the
# server's CPU time per request, then the throughput ratio to the ceiling.
# usage: bench/cs_wrk.sh [BUILD_DIR]   env: DURATION (10), THREADS (server pool, nproc),
#   SESSIONS (1000), PIN (see wrk_common.sh; the service has no pool-size flag and runs one
#   thread per CPU), PERF (a file: `perf record -g` the service), BASELINE (another
#   lepton-customer-service binary, e.g. an earlier commit's: it trains its own model from the
#   same files and is loaded the same way right after the ceiling, for before/after numbers
#   from one run), MODEL (serve this model file instead of training the support bot, e.g. one
#   trained with --encoder --finetune lora|full; the baseline then serves it too)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
. "$root/bench/wrk_common.sh"
sessions=${SESSIONS:-1000}
cs=$build/bin/lepton-customer-service
bot=$root/data/support-bot
if [ -n "${MODEL:-}" ]; then
  cp "$MODEL" "$tmp/m.lpm"
  cp "$MODEL" "$tmp/base.lpm"
else
"$cs" train --data "$bot/intents_train.tsv" --valid "$bot/intents_valid.tsv" \
  --slots "$bot/slots.tsv" --faq "$bot/faq.tsv" --bot "$bot/bot.json" --out "$tmp/m.lpm" \
  2>/dev/null
fi
if [ -n "${BASELINE:-}" ] && [ -z "${MODEL:-}" ]; then
  "$BASELINE" train --data "$bot/intents_train.tsv" --valid "$bot/intents_valid.tsv" \
    --slots "$bot/slots.tsv" --faq "$bot/faq.tsv" --bot "$bot/bot.json" --out "$tmp/base.lpm" \
    2>/dev/null
fi
# the validation texts as a Lua list (JSON-escaped: they hold no quote or backslash)
texts_lua=$(tail -n +2 "$bot/intents_valid.tsv" | cut -f1 | grep -v '["\\]' |
  wrk_lua_list)
{ cat <<LUA
local texts = {$texts_lua}
math.randomseed(5)
wrk.method = "POST"
wrk.path = "/v1/chat"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format(nil, nil, nil, string.format('{"session_id":"s%d","text":"%s"}',
    math.random($sessions), texts[math.random(#texts)]))
end
LUA
  wrk_done_lua; } >"$tmp/chat.lua"
wrk_ceiling_lua
wrk_header
echo "# model: ${MODEL:-data/support-bot}, texts: the $(( $(wc -l <"$bot/intents_valid.tsv") - 1 )) support-bot validation utterances, $sessions sessions"
echo "# wrk -t$wrk_t -c32 -d${duration}s, server pool $threads threads; columns: req/s p50_us p99_us non2xx requests server_cpu_us_per_request"
# keep one answer as a sample (the servers are stopped after their load)
wrk_before_load() {
  [ "$1" = chat ] || return 0
  curl -s -H 'Content-Type: application/json' -d '{"session_id":"probe","text":"where is my order ORD-48213"}' \
    "http://127.0.0.1:$2/v1/chat" >"$tmp/sample" || true
}
WRK_PERF_NAME=chat
wrk_run ceiling 18761 post.lua "$build/bench/serve_ceiling" 18761 "$threads"
[ -z "${BASELINE:-}" ] ||
  wrk_run baseline 18763 chat.lua "$BASELINE" serve --model "$tmp/base.lpm" --port 18763 --db "$tmp/base.db"
wrk_run chat 18762 chat.lua "$cs" serve --model "$tmp/m.lpm" --port 18762 --db "$tmp/cs.db"
echo "# one answer: $(head -c 300 "$tmp/sample")"
[ -z "${BASELINE:-}" ] || wrk_ratio baseline
wrk_ratio chat
