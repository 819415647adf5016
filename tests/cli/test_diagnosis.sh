#!/usr/bin/env bash
# test_diagnosis.sh - lepton-diagnosis on the demo data (data/diagnosis, regenerated here by
# lepton-gen-diagnosis): train / eval (metrics JSON), eval folders matched to the model's
# classes by name (one class, some classes, an unknown one, nested sub-folders), AUROC over the
# classes present, IDX labels and RGB IDX, colour training (3 channels picked by itself, beating
# gray on hue-only lesions) and the model's size at eval, tabular row identifiers left out, the service over loopback HTTP with real
# and hostile images (corrupt base64, truncated PNG, a 9000x9000 header, not an image, empty
# text, non-JSON), integrated-gradients completeness (attributions sum to F(x) - F(0) within
# 5% + 0.05 at 32 steps), an audit row for each answer and none for failures, and tamper
# detection: verify-audit passes, then fails naming the row after an edit, a deletion in the
# middle, and a deletion of the last row.
set -u
# jq -e that fails on empty input too (jq 1.6's -e exits 0 when there is no value at all, so a
# crashed command's empty output would pass)
jqe() { local out; out=$(jq -e "$@") && [ -n "$out" ]; }
export -f jqe
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
check "eval json has every field" jqe 'has("n") and has("accuracy") and has("macro_f1") and
  has("auroc") and has("ece") and has("top3_accuracy") and has("abstained")' "$dir/eval.json"
check "eval n = 90" jqe '.n == 90' "$dir/eval.json"
check "top-3 of 3 classes is 1" jqe '.top3_accuracy == 1' "$dir/eval.json"
check "accuracy above chance" jqe '.accuracy > 0.5' "$dir/eval.json"
# prevalence: estimated from the images (EM) or given; the metrics' keys stay as they were
"$bin" eval --model "$dir/m.lpm" --images "$dir/demo/images" --json --prevalence auto >"$dir/prev.json"
check "prevalence auto: a class mix summing to 1" jqe '(.prevalence | add) - 1 | fabs < 1e-9' "$dir/prev.json"
check "prevalence auto: source and metrics" jqe '.prevalence_source == "estimated" and .n == 90
  and has("ece")' "$dir/prev.json"
cls=$(jq -r '.prevalence | keys[0]' "$dir/prev.json")
"$bin" eval --model "$dir/m.lpm" --images "$dir/demo/images" --json --prevalence "$cls=0.5" >"$dir/prev2.json"
check "prevalence given: the named class gets its share" jqe --arg c "$cls" '.prevalence[$c] == 0.5' "$dir/prev2.json"
check "prevalence: an unknown class is named" bash -c "'$bin' eval --model '$dir/m.lpm' --images '$dir/demo/images' --json --prevalence nosuch=0.2 2>&1 >/dev/null | grep -q \"no class 'nosuch'\""
check "prevalence: serve refuses auto" bash -c "! '$bin' serve --model '$dir/m.lpm' --port 0 --db '$dir/x.db' --prevalence auto 2>/dev/null"
check "eval without --json is a usage error" bash -c "! '$bin' eval --model '$dir/m.lpm' --images '$dir/demo/images' 2>/dev/null"
# eval maps class folders to the model's classes by name, not by sorted position: a folder with
# one class or some of them is evaluated (their correct counts add up to the whole set's), a
# folder the model does not know is an error naming it and the model's classes
acc() { "$bin" eval --model "$dir/m.lpm" --images "$1" --json | jq -r '.accuracy * .n | round'; }
# jqe on one JSON value, failing on empty input (where plain jqe succeeds)
jq1() { jq -se "length == 1 and (.[0] | $1)" "${@:2}"; }
for c in bar blob ring; do mkdir -p "$dir/one_$c"; cp -r "$dir/demo/images/$c" "$dir/one_$c/"; done
mkdir -p "$dir/two"; cp -r "$dir/demo/images/bar" "$dir/demo/images/ring" "$dir/two/"
all=$(acc "$dir/demo/images"); a_bar=$(acc "$dir/one_bar"); a_blob=$(acc "$dir/one_blob")
a_ring=$(acc "$dir/one_ring"); a_two=$(acc "$dir/two")
check "one-class folders are evaluated and add up ($a_bar + $a_blob + $a_ring = $all)" \
  test "$((a_bar + a_blob + a_ring))" = "$all"
check "two of three classes map by name ($a_two = $a_bar + $a_ring)" test "$a_two" = "$((a_bar + a_ring))"
"$bin" eval --model "$dir/m.lpm" --images "$dir/two" --json >"$dir/two.json"
check "AUROC over the classes present" jq1 '.auroc > 0.5 and .auroc_classes == 2' "$dir/two.json"
"$bin" eval --model "$dir/m.lpm" --images "$dir/one_ring" --json >"$dir/one.json"
check "one class: AUROC null with a reason" jq1 '.auroc == null and .auroc_classes == 0 and
  (.auroc_note | test("one class"))' "$dir/one.json"
mkdir -p "$dir/extra/a_extra"; cp -r "$dir/demo/images/"* "$dir/extra/"; cp "$dir/demo/images/ring/003.png" "$dir/extra/a_extra/"
check "an unknown class folder is named with the model's classes" bash -c "! '$bin' eval --model '$dir/m.lpm' --images '$dir/extra' --json 2>'$dir/extra.err' >/dev/null && grep -q \"'a_extra' is not a class\" '$dir/extra.err' && grep -q \"'bar', 'blob', 'ring'\" '$dir/extra.err'"
# images in sub-folders of a class folder count as that class
mkdir -p "$dir/nested/ring/site_a/day1" "$dir/nested/bar"
cp "$dir/demo/images/ring/"00*.png "$dir/nested/ring/site_a/"; cp "$dir/demo/images/ring/"01*.png "$dir/nested/ring/site_a/day1/"
cp "$dir/demo/images/ring/"02*.png "$dir/nested/ring/"; cp "$dir/demo/images/bar/"0*.png "$dir/nested/bar/"
check "nested sub-folders are read" bash -c "'$bin' eval --model '$dir/m.lpm' --images '$dir/nested' --json | jq -se 'length == 1 and .[0].n == 60'"
# IDX: a label the model does not have is named; an N x H x W x 3 IDX (magic 08 04) loads
{ printf '\0\0\x08\x03\0\0\0\x0a\0\0\0\x1c\0\0\0\x1c'; head -c 7840 /dev/urandom; } >"$dir/g.idx"
{ printf '\0\0\x08\x04\0\0\0\x0a\0\0\0\x1c\0\0\0\x1c\0\0\0\x03'; head -c 23520 /dev/urandom; } >"$dir/rgb.idx"
printf '\0\0\x08\x01\0\0\0\x0a\0\1\2\0\1\2\0\1\2\7' >"$dir/l7.idx"
printf '\0\0\x08\x01\0\0\0\x0a\0\1\2\0\1\2\0\1\2\1' >"$dir/l2.idx"
check "IDX: a label past the model's classes is named" bash -c "'$bin' eval --model '$dir/m.lpm' --images '$dir/g.idx' --labels '$dir/l7.idx' --json 2>&1 >/dev/null | grep -q 'label 7, but .* has 3 classes'"
check "IDX: RGB images evaluate on a gray model" bash -c "'$bin' eval --model '$dir/m.lpm' --images '$dir/rgb.idx' --labels '$dir/l2.idx' --json | jq -se 'length == 1 and .[0].n == 10'"
"$bin" train --images "$dir/rgb.idx" --labels "$dir/l2.idx" --epochs 1 --out "$dir/rgbidx.lpm" >"$dir/rgbidx.out" 2>&1
check "IDX: RGB images train a 3-channel model" grep -q '"input_shape":"3x28x28"' "$dir/rgbidx.out"
check "--epochs 1: trained 1 epoch, said so" bash -c "grep -q 'in [0-9.]* s, 1 epoch -> ' '$dir/rgbidx.out' && grep -q '\"epochs\":1,' '$dir/rgbidx.out'"
check "--epochs with --text is a usage error" bash -c "'$bin' train --text '$dir/x.tsv' --epochs 3 --out '$dir/x.lpm' 2>&1 | grep -q 'epochs is for --images'"
check "--images: a missing path says it cannot be opened" bash -c "'$bin' train --images '$dir/nope' --out '$dir/x.lpm' 2>&1 | grep -q 'nope: cannot open: No such file'"
check "--images: a file without --labels is not called an IDX file" bash -c "'$bin' eval --model '$dir/m.lpm' --images '$dir/l2.idx' --json 2>&1 | grep -q 'l2.idx is not a folder of class sub-folders; read as an IDX images file, it needs --labels'"
head -c 8 "$dir/m.lpm" >"$dir/cut8.lpm"
check "serve: a truncated model's error names both readers' reasons, once each" bash -c "'$bin' serve --model '$dir/cut8.lpm' --port 0 --db '$dir/x.db' 2>&1 | grep -q 'cut8.lpm: neither a diagnosis image model (.*cut8.lpm: not a Lepton model file (bad magic or too short)) nor a text model (.*cut8.lpm: not a Lepton model file (bad magic or too short))\$'"
check "--epochs 0 is a usage error" bash -c "'$bin' train --images '$dir/rgb.idx' --labels '$dir/l2.idx' --epochs 0 --out '$dir/x.lpm' 2>&1 | grep -q 'expected a whole number in 1..1000'"
# IDX images of 128 px (MedMNIST+): read at 28x28 (the folders' size), and said so
{ printf '\0\0\x08\x03\0\0\0\x0a\0\0\0\x80\0\0\0\x80'; head -c 163840 /dev/urandom; } >"$dir/g128.idx"
DX_EPOCHS=1 "$bin" train --images "$dir/g128.idx" --labels "$dir/l2.idx" --out "$dir/g128.lpm" >"$dir/g128.out" 2>&1
check "IDX: 128 px images train at 28x28" grep -q '"input_shape":"1x28x28"' "$dir/g128.out"
check "IDX: 128 px images: said so" grep -q 'holds 128x128 images: read at 28x28' "$dir/g128.out"
# colour: two lesion hues of equal luma; a colour folder trains on 3 channels by itself (and
# says so) and tells them apart, the same net on gray cannot; eval reads the model's size
# a folder of splits (chest_xray/{train,test}/CLASS) given as --images: named, not trained on
mkdir -p "$dir/splits" && cp -r "$dir/demo/images" "$dir/splits/train" && cp -r "$dir/demo/images" "$dir/splits/test"
check "split folders are not classes" bash -c "'$bin' train --images '$dir/splits' --out '$dir/x.lpm' 2>&1 | grep -q 'are data splits, not classes.*splits/train'"
"$gen" "$dir/col" 80 colour >/dev/null
for h in red_lesion green_lesion; do mkdir -p "$dir/colte/$h"; mv "$dir/col/colour/$h/"06*.png "$dir/col/colour/$h/"07*.png "$dir/colte/$h/"; done
DX_EPOCHS=6 "$bin" train --images "$dir/col/colour" --size 16 --out "$dir/c3.lpm" >"$dir/c3.out" 2>&1
DX_EPOCHS=6 "$bin" train --images "$dir/col/colour" --size 16 --channels 1 --out "$dir/c1.lpm" >"$dir/c1.out" 2>&1
check "a colour folder trains on 3 channels and says so" grep -q 'hold colour: training on 3 channels' "$dir/c3.out"
check "the model keeps channels and size" grep -q '"input_shape":"3x16x16"' "$dir/c3.out"
a3=$("$bin" eval --model "$dir/c3.lpm" --images "$dir/colte" --json | jq .accuracy)
a1=$("$bin" eval --model "$dir/c1.lpm" --images "$dir/colte" --json | jq .accuracy)
check "colour beats gray on hue-only lesions ($a3 vs $a1)" jq -en "$a3 >= 0.9 and $a3 >= $a1 + 0.2"
check "gray demo images train on 1 channel" bash -c "! grep -q 'hold colour' '$dir/train.out' && grep -q '28x28, 1 channel' '$dir/train.out'"
check "--channels 2 is a usage error" bash -c "'$bin' train --images '$dir/demo/images' --channels 2 --out '$dir/x.lpm' 2>&1 | grep -q 'expected 1 (gray) or 3'"
check "--size 0 is a usage error" bash -c "'$bin' train --images '$dir/demo/images' --size 0 --out '$dir/x.lpm' 2>&1 | grep -q 'expected N or WxH'"
check "an unknown flag is a usage error naming it" bash -c "'$bin' train --images '$dir/demo/images' --epoch 3 --out '$dir/x.lpm' 2>&1 | grep -q \"unknown flag '--epoch'\"; test \${PIPESTATUS[0]} -eq 2"
check "a flag without its value is a usage error" bash -c "'$bin' eval --json --model '$dir/m.lpm' --images 2>&1 | grep -q -- '--images needs a value'"
check "train --help: the usage on stdout, exit 0" bash -c "'$bin' train --help 2>/dev/null | grep -q '^usage: lepton-diagnosis'"
check "training on one class is refused" bash -c "'$bin' train --images '$dir/one_ring' --out '$dir/x.lpm' 2>&1 | grep -q 'training needs at least 2'"
check "text model trains" "$bin" train --text "$dir/demo/symptoms.csv" --out "$dir/t.lpm"
"$bin" eval --model "$dir/t.lpm" --text "$dir/demo/symptoms.csv" --json >"$dir/teval.json"
check "text eval accuracy" jqe '.accuracy > 0.9' "$dir/teval.json"
# a symptom set with more diagnoses than 64 (the limit before; now 256)
awk 'BEGIN { print "label,text"; for (k = 0; k < 80; k++) for (r = 0; r < 6; r++)
  printf "d%d,patient reports sym%d and sign%d with w%d\n", k, k, k, r }' >"$dir/t80.csv"
check "text model with 80 classes trains" "$bin" train --text "$dir/t80.csv" --out "$dir/t80.lpm"
"$bin" eval --model "$dir/t80.lpm" --text "$dir/t80.csv" --json >"$dir/t80.json"
check "80-class eval" jqe '.auroc_classes == 80 and .accuracy > 0.9' "$dir/t80.json"
# a class named None (no finding) is a class, not a missing label
awk 'BEGIN { print "label,text"; for (r = 0; r < 20; r++) {
  printf "None,patient feels fine and well w%d\n", r; printf "Flu,patient has fever and cough w%d\n", r;
  printf "NA,patient reports rash and itch w%d\n", r } }' >"$dir/tnone.csv"
"$bin" train --text "$dir/tnone.csv" --out "$dir/tnone.lpm" 2>"$dir/tnone.err"
check "a None class: said so" grep -q "'None', 'NA' read as class names (40 rows)" "$dir/tnone.err"
"$bin" eval --model "$dir/tnone.lpm" --text "$dir/tnone.csv" --json >"$dir/tnone.json" 2>/dev/null
check "a None class: three classes" jqe '.n == 60 and .auroc_classes == 3' "$dir/tnone.json"
# the same file without its header line, columns by position
tail -n +2 "$dir/tnone.csv" >"$dir/tnone.data"
check "text without a header line trains" "$bin" train --text "$dir/tnone.data" --text-col c2 --label-col c1 --out "$dir/tnh.lpm"
"$bin" eval --model "$dir/tnh.lpm" --text "$dir/tnone.data" --text-col c2 --label-col c1 --json >"$dir/tnh.json" 2>/dev/null
check "text without a header line: eval" jqe '.n == 60 and .auroc_classes == 3' "$dir/tnh.json"
# tabular: y = [x0 + noise > 0], C by CV, a temperature fitted out of fold and applied by eval
awk 'BEGIN { srand(3); print "row,x0,x1,y"; for (i = 0; i < 300; i++) {
  a = rand() * 4 - 2; b = rand() * 4 - 2; n = rand() - rand();
  printf "%d,%.4f,%.4f,%s\n", i, a, b, (a + n > 0) ? "sick" : "well" } }' >"$dir/tab.csv"
"$bin" train --tabular "$dir/tab.csv" --label y --out "$dir/tab.lpm" >"$dir/tab.out" 2>&1
check "tabular train reports C, T and the out-of-fold ECE" grep -Eq 'C = [0-9.]+ by 5-fold CV.*temperature [0-9.]+, out-of-fold ECE [0-9.]+ -> [0-9.]+' "$dir/tab.out"
"$bin" eval --model "$dir/tab.lpm" --tabular "$dir/tab.csv" --json >"$dir/tabeval.json"
check "tabular eval: accuracy, ECE, abstentions" jqe '.n == 300 and .accuracy > 0.8 and .ece >= 0 and .ece < 0.1 and .abstained >= 0 and .abstained < 300' "$dir/tabeval.json"
check "tabular: a missing label column is named" bash -c "'$bin' train --tabular '$dir/tab.csv' --label nosuch --out '$dir/x.lpm' 2>&1 | grep -q nosuch"
check "tabular: a numeric target is refused (more than 256 classes)" bash -c "'$bin' train --tabular '$dir/tab.csv' --label x0 --out '$dir/x.lpm' 2>&1 | grep -q 'more than 256 distinct values'"
# row identifiers are not features: a numeric id column (named so, all distinct) and a text
# column with a distinct value per row; --drop-cols adds more and names one that is missing
awk -F, 'NR == 1 { print "id,patient," $0; next } { printf "%d,p%05d,%s\n", 1000 + 7 * NR, NR, $0 }' "$dir/tab.csv" >"$dir/tabid.csv"
"$bin" train --tabular "$dir/tabid.csv" --label y --drop-cols x1 --out "$dir/tabid.lpm" >"$dir/tabid.out" 2>&1
check "tabular: id, text identifiers, row and --drop-cols left out" grep -q 'left out of the features: x1, row, id, patient' "$dir/tabid.out"
check "tabular: a --drop-cols column that is missing is named" bash -c "'$bin' train --tabular '$dir/tab.csv' --label y --drop-cols nosuch --out '$dir/x.lpm' 2>&1 | grep -q \"no column 'nosuch' to drop\""
# a file without a header line (UCI's wdbc.data): the label named by position, the numbered
# first column left out as row identifiers, and eval reads the headerless file the same way
awk -F, 'NR > 1 { printf "%d,%s\n", 84000 + 13 * NR, $0 }' "$dir/tab.csv" >"$dir/tab.data"
"$bin" train --tabular "$dir/tab.data" --label c5 --out "$dir/tabnh.lpm" >"$dir/tabnh.out" 2>&1
check "tabular without a header: trains on --label c5" test -s "$dir/tabnh.lpm"
check "tabular without a header: c1 and c2 left out" grep -q 'left out of the features: c1, c2' "$dir/tabnh.out"
"$bin" eval --model "$dir/tabnh.lpm" --tabular "$dir/tab.data" --json >"$dir/tabnh.json" 2>/dev/null
check "tabular without a header: eval" jqe '.n == 300 and .accuracy > 0.8' "$dir/tabnh.json"
check "tabular without a header: a name that is not there lists c1.." bash -c "'$bin' train --tabular '$dir/tab.data' --label y --out '$dir/x.lpm' 2>&1 | grep -q \"no column 'y'.*c1, c2, c3\""
# a trailing comma on every line (Kaggle's data.csv): the empty last column is no feature
sed 's/$/,/' "$dir/tab.csv" >"$dir/tabtc.csv"
check "tabular: an empty trailing column trains" "$bin" train --tabular "$dir/tabtc.csv" --label y --out "$dir/tabtc.lpm"
head -41 "$dir/tab.csv" >"$dir/tab40.csv"
check "tabular: a class with one row is refused, naming it" bash -c "'$bin' train --tabular '$dir/tab40.csv' --label x1 --out '$dir/x.lpm' 2>&1 | grep -q \"label '.*' has 1 row\""
head -1 "$dir/tab.csv" >"$dir/tab1.csv"; grep ',sick$' "$dir/tab.csv" | head -5 >>"$dir/tab1.csv"
check "tabular eval on one class: AUROC null, still JSON" bash -c "'$bin' eval --model '$dir/tab.lpm' --tabular '$dir/tab1.csv' --json | jq -se 'length == 1 and (.[0] | .auroc == null and .n == 5 and .auroc_classes == 0)'"

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
check "differential sums to 1" jqe '([.differential[].probability] | add) > 0.999 and
  ([.differential[].probability] | add) < 1.001' "$dir/ok.json"
check "answer fields" jqe '.abstain | has("value") and has("reason")' "$dir/ok.json"
check "statement and version" jqe '(.statement | test("Decision support")) and (.model_version | length > 0)' "$dir/ok.json"
check "heat map is a PNG" bash -c "jq -r .explanation.heatmap_png '$dir/ok.json' | base64 -d | head -c 4 | grep -q PNG"
check "IG completeness (32 steps)" jqe '.explanation.summary.image | (.attribution_sum - .logit_minus_baseline | fabs) <= 0.05 + 0.05 * (.logit_minus_baseline | fabs)' "$dir/ok.json"
id=$(jq .audit_id "$dir/ok.json")
check "audit record" test "$(code "$url/v1/audit/$id")" = 200
check "audit holds no raw text by default" jqe '.text == null' "$dir/body"
check "model card" test "$(code "$url/v1/model-card")" = 200
check "card has calibration" jqe '.image.calibration.temperature > 0' "$dir/body"

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
