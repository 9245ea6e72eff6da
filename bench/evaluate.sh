#!/usr/bin/env bash
# Reproduces every number in docs/evaluation.md: linear probes of a pre-trained encoder, the
# random-init SampleCNN (BatchNorm recalibrated) and MFCC statistics, with linear and MLP heads,
# at 100 % and 20 % of the training labels, 5-fold x 2 repeats grouped/stratified.
# usage: bench/evaluate.sh ENCODER_CHECKPOINT [OUT_DIR]     (needs ../shared beside the checkout)
#        ENCODERS="pretrained" bench/evaluate.sh ...        (a subset of: pretrained random mfcc)
set -euo pipefail
encoder=${1:?usage: bench/evaluate.sh ENCODER_CHECKPOINT [OUT_DIR]}
out=${2:-runs/eval}
shared=$(cd "$(dirname "$0")/../.." && pwd)/shared
probe() {  # probe NAME ENCODER LABELS HEAD_FLAG EXTRA...
  local name=$1 enc=$2 labels=$3 head=$4; shift 4
  clmr-embed train linear --encoder "$enc" --labels "$labels" --output-dir "$out/$name" \
    $head --seed 0 "$@" --json > "$out/$name.json"
}
mkdir -p "$out"
for enc in ${ENCODERS:-pretrained random mfcc}; do
  source=$enc; [ "$enc" = pretrained ] && source=$encoder
  for head in linear mlp; do
    flag=""; [ "$head" = mlp ] && flag=--mlp
    probe "gtzan-$enc-$head" "$source" "$shared/audio/gtzan_subset/labels.csv" "$flag" \
      --split kfold --folds 5 --repeats 2 --label-fraction 1.0 --label-fraction 0.2
  done
  # sanity check only: 2 instruments, re-split grouped by track (clips of a track are near-duplicates)
  probe "medley-$enc-linear" "$source" "$shared/audio/medley_solos_subset/labels.csv" "" \
    --split kfold --folds 3 --repeats 2
done
python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print("| run | label fraction | accuracy | balanced acc. | tag ROC-AUC | tag PR-AUC |")
print("|---|---|---|---|---|---|")
for path in sorted(out.glob("*.json")):
    for r in json.loads(path.read_text())["results"]:
        cell = lambda k: f"{r[k]['mean']:.3f} ± {r[k]['std']:.3f}" if k in r else "–"
        print(f"| {path.stem} | {r['label_fraction']:g} | {cell('accuracy')} | "
              f"{cell('balanced_accuracy')} | {cell('tag_roc_auc')} | {cell('tag_pr_auc')} |")
PY
