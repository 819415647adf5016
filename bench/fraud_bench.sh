#!/bin/sh
# lepton-fraud against XGBoost on the Fraud Detection Handbook's simulated transactions, in one
# run: train on train.csv.gz (days 0-145), then score test.csv.gz (days 146-182) in time order as
# the service would (history = train), and the peer (bench/fraud_xgboost.py) on the book's
# baseline features. Prints both JSON lines.
#   usage: bench/fraud_bench.sh [BUILD_DIR] [threads]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
threads=${2:-2}
data=${LEPTON_SHARED_DATA:-$here/../../shared/data}/fraud-sim-handbook
[ -f "$data/train.csv.gz" ] || { echo "fraud_bench: no $data/train.csv.gz" >&2; exit 77; }
export OMP_WAIT_POLICY=passive
out=$here/out
mkdir -p "$out"
t0=$(date +%s)
"$build/bin/lepton-fraud" train --data "$data/train.csv.gz" --label tx_fraud \
    --time-col tx_datetime --entity-cols customer_id,terminal_id --amount-col tx_amount \
    --id-col transaction_id --drop-cols tx_fraud_scenario,tx_time_seconds,tx_time_days \
    --threads "$threads" --out "$out/fraud.lpm"
t1=$(date +%s)
echo "lepton-fraud train: $((t1 - t0)) s (CSV read, replay, fit, calibration)" >&2
printf 'lepton-fraud: '
"$build/bin/lepton-fraud" eval --model "$out/fraud.lpm" --data "$data/test.csv.gz" \
    --history "$data/train.csv.gz" --json
printf 'peer: '
/usr/bin/python3 "$here/fraud_xgboost.py" "$data" "$threads"
