#!/usr/bin/env bash
# test_diagnosis.sh - lepton-diagnosis on the demo data (data/diagnosis, regenerated here by
# lepton-gen-diagnosis): train / eval (metrics JSON), the service over loopback HTTP with real
# and hostile images (corrupt base64, truncated PNG, a 9000x9000 header, not an image, empty
# text, non-JSON), integrated-gradients completeness (attributions sum to F(x) - F(0) within
# 5% + 0.05 at 32 steps), an audit row for each answer and none for failures, and tamper
# detection: verify-audit passes, then fails naming the row after an edit, a deletion in the
# middle, and a deletion of the last row.
set -u
bin="${LEPTON_BIN:?}/lepton-diagnosis"
gen="${LEPTON_BIN:?}/lepton-gen-diagnosis"
for t in curl jq sqlite3 base64; do command -v $t >/dev/null || { echo "SKIP: $t missing"; exit 77; }; done
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fails=0
check() { local name=$1; shift; if "$@" >/dev/null; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi; }

"$gen" "$dir/demo" 30 >/dev/null || { echo "FAIL gen"; exit 1; }
DX_EPOCHS=4 "$bin" train --images "$dir/demo/images" --out "$dir/m.lpm" >"$dir/train.out" 2>&1 \
  || { echo "FAIL train"; cat "$dir/train.out"; exit 1; }
"$bin" eval --model "$dir/m.lpm" --images "$dir/demo/images" --json >"$dir/eval.json"
check "eval json has every field" jq -e 'has("n") and has("accuracy") and has("macro_f1") and
  has("auroc") and has("ece") and has("top3_accuracy") and has("abstained")' "$dir/eval.json"
check "eval n = 90" jq -e '.n == 90' "$dir/eval.json"
check "top-3 of 3 classes is 1" jq -e '.top3_accuracy == 1' "$dir/eval.json"
check "accuracy above chance" jq -e '.accuracy > 0.5' "$dir/eval.json"
# prevalence: estimated from the images (EM) or given; the metrics' keys stay as they were
"$bin" eval --model "$dir/m.lpm" --images "$dir/demo/images" --json --prevalence auto >"$dir/prev.json"
check "prevalence auto: a class mix summing to 1" jq -e '(.prevalence | add) - 1 | fabs < 1e-9' "$dir/prev.json"
check "prevalence auto: source and metrics" jq -e '.prevalence_source == "estimated" and .n == 90
  and has("ece")' "$dir/prev.json"
cls=$(jq -r '.prevalence | keys[0]' "$dir/prev.json")
"$bin" eval --model "$dir/m.lpm" --images "$dir/demo/images" --json --prevalence "$cls=0.5" >"$dir/prev2.json"
check "prevalence given: the named class gets its share" jq -e --arg c "$cls" '.prevalence[$c] == 0.5' "$dir/prev2.json"
check "prevalence: an unknown class is named" bash -c "'$bin' eval --model '$dir/m.lpm' --images '$dir/demo/images' --json --prevalence nosuch=0.2 2>&1 >/dev/null | grep -q \"no class 'nosuch'\""
check "prevalence: serve refuses auto" bash -c "! '$bin' serve --model '$dir/m.lpm' --port 0 --db '$dir/x.db' --prevalence auto 2>/dev/null"
check "eval without --json is a usage error" bash -c "! '$bin' eval --model '$dir/m.lpm' --images '$dir/demo/images' 2>/dev/null"
check "text model trains" "$bin" train --text "$dir/demo/symptoms.csv" --out "$dir/t.lpm"
"$bin" eval --model "$dir/t.lpm" --text "$dir/demo/symptoms.csv" --json >"$dir/teval.json"
check "text eval accuracy" jq -e '.accuracy > 0.9' "$dir/teval.json"
# tabular: y = [x0 + noise > 0], C by CV, a temperature fitted out of fold and applied by eval
awk 'BEGIN { srand(3); print "row,x0,x1,y"; for (i = 0; i < 300; i++) {
  a = rand() * 4 - 2; b = rand() * 4 - 2; n = rand() - rand();
  printf "%d,%.4f,%.4f,%s\n", i, a, b, (a + n > 0) ? "sick" : "well" } }' >"$dir/tab.csv"
"$bin" train --tabular "$dir/tab.csv" --label y --out "$dir/tab.lpm" >"$dir/tab.out" 2>&1
check "tabular train reports C, T and the out-of-fold ECE" grep -Eq 'C = [0-9.]+ by 5-fold CV.*temperature [0-9.]+, out-of-fold ECE [0-9.]+ -> [0-9.]+' "$dir/tab.out"
"$bin" eval --model "$dir/tab.lpm" --tabular "$dir/tab.csv" --json >"$dir/tabeval.json"
check "tabular eval: accuracy, ECE, abstentions" jq -e '.n == 300 and .accuracy > 0.8 and .ece >= 0 and .ece < 0.1 and .abstained >= 0 and .abstained < 300' "$dir/tabeval.json"
check "tabular: a missing label column is named" bash -c "'$bin' train --tabular '$dir/tab.csv' --label nosuch --out '$dir/x.lpm' 2>&1 | grep -q nosuch"
check "tabular: a numeric target is refused (more than 64 classes)" bash -c "'$bin' train --tabular '$dir/tab.csv' --label x0 --out '$dir/x.lpm' 2>&1 | grep -q 'more than 64 distinct values'"
head -41 "$dir/tab.csv" >"$dir/tab40.csv"
check "tabular: a class with one row is refused, naming it" bash -c "'$bin' train --tabular '$dir/tab40.csv' --label x1 --out '$dir/x.lpm' 2>&1 | grep -q \"label '.*' has 1 row\""
head -1 "$dir/tab.csv" >"$dir/tab1.csv"; grep ',sick$' "$dir/tab.csv" | head -5 >>"$dir/tab1.csv"
check "tabular eval on one class: AUROC null, still JSON" bash -c "'$bin' eval --model '$dir/tab.lpm' --tabular '$dir/tab1.csv' --json | jq -e '.auroc == null and .n == 5'"

"$bin" serve --model "$dir/m.lpm" --port 0 --db "$dir/a.db" >"$dir/serve.out" 2>"$dir/serve.err" &
pid=$!
for _ in $(seq 300); do grep -q "on http" "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -E 's/.*:([0-9]+)$/\1/' "$dir/serve.out")
url="http://127.0.0.1:$port"
code() { curl -s -o "$dir/body" -w '%{http_code}' "$@"; }
post() { code -X POST -H 'Content-Type: application/json' --data-binary @"$1" "$url/v1/diagnose"; }

img=$(base64 -w0 "$dir/demo/images/ring/003.png")
printf '{"image":"%s"}' "$img" >"$dir/req.json"
check "diagnose 200" test "$(post "$dir/req.json")" = 200
cp "$dir/body" "$dir/ok.json"
check "differential sums to 1" jq -e '([.differential[].probability] | add) > 0.999 and
  ([.differential[].probability] | add) < 1.001' "$dir/ok.json"
check "answer fields" jq -e '.abstain | has("value") and has("reason")' "$dir/ok.json"
check "statement and version" jq -e '(.statement | test("Decision support")) and (.model_version | length > 0)' "$dir/ok.json"
check "heat map is a PNG" bash -c "jq -r .explanation.heatmap_png '$dir/ok.json' | base64 -d | head -c 4 | grep -q PNG"
check "IG completeness (32 steps)" jq -e '.explanation.summary.image | (.attribution_sum - .logit_minus_baseline | fabs) <= 0.05 + 0.05 * (.logit_minus_baseline | fabs)' "$dir/ok.json"
id=$(jq .audit_id "$dir/ok.json")
check "audit record" test "$(code "$url/v1/audit/$id")" = 200
check "audit holds no raw text by default" jq -e '.text == null' "$dir/body"
check "model card" test "$(code "$url/v1/model-card")" = 200
check "card has calibration" jq -e '.image.calibration.temperature > 0' "$dir/body"

# hostile inputs: each a 4xx, none audited
printf '{"image":"@@@not base64@@@"}' >"$dir/h1.json"
head -c 60 "$dir/demo/images/ring/003.png" | base64 -w0 | sed 's/^/{"image":"/; s/$/"}/' >"$dir/h2.json"
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x23\x28\0\0\x23\x28\x08\x00\x00\x00\x00' >"$dir/big.png"
base64 -w0 "$dir/big.png" | sed 's/^/{"image":"/; s/$/"}/' >"$dir/h3.json"
printf 'GIF89a-not-supported' | base64 -w0 | sed 's/^/{"image":"/; s/$/"}/' >"$dir/h4.json"
printf '{"image":"%s","text":""}' "$img" >"$dir/h5.json"
printf '{"text":"J'"'"'ai de la fièvre et une toux"}' >"$dir/h6.json"
printf 'not json' >"$dir/h7.json"
for h in 1 2 3 4 5 6 7; do
  c=$(post "$dir/h$h.json")
  check "hostile $h is 4xx ($c)" test "${c:0:1}" = 4
done
check "still serving" test "$(post "$dir/req.json")" = 200
check "two answers audited, no failures" test "$(sqlite3 "$dir/a.db" 'SELECT count(*) FROM answers')" = 2
for i in 3 4 5; do post "$dir/req.json" >/dev/null; done
kill "$pid"; wait "$pid" 2>/dev/null; pid=""

check "verify-audit passes" "$bin" verify-audit --db "$dir/a.db"
cp "$dir/a.db" "$dir/edit.db"; cp "$dir/a.db" "$dir/del.db"; cp "$dir/a.db" "$dir/last.db"
sqlite3 "$dir/edit.db" "UPDATE answers SET differential = replace(differential, '0.', '0.9') WHERE id = 3"
check "edit detected, row named" bash -c "'$bin' verify-audit --db '$dir/edit.db' 2>&1 | grep -q 'row 3: hash'"
sqlite3 "$dir/del.db" "DELETE FROM answers WHERE id = 2"
check "deletion detected" bash -c "'$bin' verify-audit --db '$dir/del.db' 2>&1 | grep -q 'row 3: previous hash'"
sqlite3 "$dir/last.db" "DELETE FROM answers WHERE id = 5"
check "last-row deletion detected" bash -c "! '$bin' verify-audit --db '$dir/last.db' 2>/dev/null"
[ "$fails" -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all diagnosis CLI checks passed"
