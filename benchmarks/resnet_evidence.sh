#!/usr/bin/env bash
# Evidence for the default on the resnet space, which has no published accuracies: a seeded random
# sample of small resnet configurations (--max-params), each scored at initialisation by
# `ntknas search`, then trained from scratch by `ntknas verify` (the NAS-Bench-201 recipe, EPOCHS
# epochs) on the CIFAR-10 subset beside the checkout (5,085 train and 1,017 test images), and every
# score ranked against the accuracies reached by `ntknas benchmark`. Short training on a small
# subset ranks networks only roughly: read the τ it prints with the sample size in mind.
#
#   bash benchmarks/resnet_evidence.sh [COUNT [EPOCHS [MAX_PARAMS]]]   (default 16 2 300k)
set -euo pipefail
count=${1:-16}
epochs=${2:-2}
max_params=${3:-300k}
data=$(cd "$(dirname "$0")/../.." && pwd)/shared/data/cifar10-subset
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
ntknas search --space resnet --sampler random --trials "$count" --max-params "$max_params" \
    --study evidence --top 3
ntknas verify evidence --top "$count" --epochs "$epochs" --data "$data"
ntknas results evidence --format csv --top "$count" > rows.csv
python - <<'PY'
import csv
rows = list(csv.DictReader(open("rows.csv")))
with open("truth.csv", "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["index", "arch", "test_acc"])
    for i, r in enumerate(rows):
        out.writerow([i, r["config"], r["verified_test_acc"]])
PY
ntknas benchmark --space resnet --ground-truth truth.csv --target test_acc --scores all
