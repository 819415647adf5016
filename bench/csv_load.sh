#!/usr/bin/env bash
# csv_load.sh - CSV load speed and memory: lepton's reader against pandas.read_csv on the
# fraud-sim-handbook training set (1.4 M rows), gzipped and plain, in one run. Prints a table
# of rows/second and peak RSS for each, and the ratios (lepton / pandas).
#   usage: bench/csv_load.sh [BUILD_DIR]      (default: build; needs bench/csv_load built)
# The data comes from $LEPTON_SHARED_DATA (default ../shared/data next to the repository);
# when it is absent the script says so and exits 0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
data=${LEPTON_SHARED_DATA:-$root/../shared/data}
gz=$data/fraud-sim-handbook/train.csv.gz
py=/usr/bin/python3
if [ ! -f "$gz" ]; then
  echo "csv_load: $gz not found; skipping (set LEPTON_SHARED_DATA)"
  exit 0
fi
[ -x "$build/bench/csv_load" ] || { echo "csv_load: build $build/bench/csv_load first"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gunzip -c "$gz" >"$tmp/train.csv"

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
printf '%-10s %-7s %9s %8s %12s %13s\n' file reader rows seconds rows/s peak_rss_MB
for f in "$gz" "$tmp/train.csv"; do
  label=$([ "$f" = "$gz" ] && echo csv.gz || echo csv)
  ours=$("$build/bench/csv_load" "$f")
  theirs=$("$py" "$root/bench/csv_load_pandas.py" "$f")
  for who in lepton pandas; do
    line=$([ $who = lepton ] && echo "$ours" || echo "$theirs")
    printf '%-10s %-7s %9s %8s %12s %13s\n' "$label" "$who" "$(field rows "$line")" \
      "$(field seconds "$line")" "$(field rows_per_s "$line")" "$(field peak_rss_mb "$line")"
  done
  speed=$(awk -v a="$(field rows_per_s "$ours")" -v b="$(field rows_per_s "$theirs")" \
    'BEGIN { printf "%.2f", a / b }')
  mem=$(awk -v a="$(field peak_rss_mb "$ours")" -v b="$(field peak_rss_mb "$theirs")" \
    'BEGIN { printf "%.2f", a / b }')
  echo "$label: lepton/pandas rows per second x$speed, peak RSS x$mem"
done
echo "lepton column kinds: $(field kinds "$ours")"
