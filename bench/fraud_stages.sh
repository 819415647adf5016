#!/bin/sh
# Per-stage percentiles of lepton-fraud's in-process scoring (bench/fraud_stages.c) on the
# Fraud Detection Handbook set: history = train.csv.gz, scored = test.csv.gz, as the eval step
# of bench/fraud_bench.sh. usage: bench/fraud_stages.sh [BUILD_DIR] MODEL.lpm
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
model=${2:?usage: bench/fraud_stages.sh BUILD_DIR MODEL.lpm}
data=${LEPTON_SHARED_DATA:-$here/../../shared/data}/fraud-sim-handbook
[ -f "$data/train.csv.gz" ] || { echo "fraud_stages: no $data/train.csv.gz" >&2; exit 77; }
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg) before"
OMP_WAIT_POLICY=passive "$build/bench/fraud_stages" "$model" "$data/train.csv.gz" "$data/test.csv.gz"
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg) after"
