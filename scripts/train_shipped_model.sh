#!/bin/bash
# Reproduces the shipped model (packages/ifvit-train/src/ifvit_train/serving/shipped_models/ifvit-small):
# synthetic prints -> shards -> Module 1 -> Module 2 -> weights-only export -> embedding necks fitted
# on, and calibration on, the real training/validation sets (REAL: the FVC and Neurotechnology sets). Seed 0,
# `small` preset.
# About 2 hours on an idle 2-core CPU (128-px stages ~80 min, 256-px fine-tuning ~25 min, validation ~16 min;
# more with other jobs running);
# unchanged on a GPU host
# (add --preset paper, more --fingers and --steps, --batch/--accum for larger batches).
# Usage: bash scripts/train_shipped_model.sh [OUT]   (default OUT: runs/shipped; every stage resumes)
set -euo pipefail
OUT=${1:-runs/shipped}
IFVIT=${IFVIT:-uv run --locked ifvit}
[ -f "$OUT/synth/manifest.json" ] || $IFVIT synth --out "$OUT/synth" --fingers 300 --impressions 8 --seed 0
[ -f "$OUT/shards/manifest.json" ] || $IFVIT ingest --input "$OUT/synth" --layout fvc --out "$OUT/shards" --quiet
# The networks: the `shipped` recipe (packages/ifvit-train/src/ifvit_train/training/recipes.py),
# seven stages into $OUT/model/<stage>: Module 1 and Module 2 on 128-px windows, both fine-tuned on
# 256-px windows (whole prints), Module 1 retrained with ridge enhancement (128 then 256 px) and
# Module 2 fine-tuned on it (match_enh256, exported below).
$IFVIT train all --recipe shipped --data "$OUT/shards" --workdir "$OUT/model" --no-progress
[ -f "$OUT/export/bundle.json" ] || $IFVIT export "$OUT/model/match_enh256" --out "$OUT/export" \
  --recipe "bash scripts/train_shipped_model.sh (ifvit synth --fingers 300 --impressions 8 --seed 0; ifvit ingest; ifvit train all --recipe shipped: seven stages, ifvit_train.training.recipes.SHIPPED; ifvit export; ifvit whiten --no-templates (PCA pairwise neck) on FVC2002 DB2_B (569 dpi), DB3_B, FVC2004 DB2_B, DB3_B (512 dpi); ifvit evaluate --protocol baselines on those four sets; ifvit calibrate on those four evaluations; ifvit whiten --pairs-neck within-finger (pairwise and template necks from the finger labels; template eps 0.1, alpha 0.85) on the same four sets and the Neurotechnology CrossMatch and U.are.U sets (folder layout); ifvit evaluate --protocol baselines on the four FVC sets; ifvit calibrate on those four evaluations)"
# Real prints, used to fit linear necks and calibrate, never to train the networks; never FVC2002
# DB1_B. Stage 1: the embedding neck re-estimated on the four FVC sets (unlabelled pairs, PCA),
# thresholds and evidence weight calibrated on them. Stage 2: both necks refitted with the finger
# labels of those sets and of the two Neurotechnology sets (within-finger whitening: pairwise and
# template necks), then calibrated again on the four FVC sets. (Stage 2 is what the shipped bundle
# got on 2026-12-07, after a template-only refit that stage 2 replaced; every fit is deterministic
# up to float rounding.)
REAL=${REAL:-../shared/data/real}
SETS="fvc2002_db2_b:569 fvc2002_db3_b: fvc2004_db2_b: fvc2004_db3_b:512"  # name:dpi (empty: the files')
ARGS=()
for SET in $SETS; do NAME=${SET%%:*} DPI=${SET##*:}; ARGS+=(--data "$REAL/$NAME" --dpi "${DPI:-0}" --layout fvc); done
calibrated() {  # calibrated MODEL OUT: evaluate MODEL on the four FVC sets, calibrate into OUT
  for SET in $SETS; do
    NAME=${SET%%:*} DPI=${SET##*:}
    [ -f "$2.val/$NAME/report.json" ] || $IFVIT evaluate --model "$1" --data "$REAL/$NAME" \
      --protocol baselines ${DPI:+--dpi $DPI} --out "$2.val/$NAME" --quiet
  done
  [ -f "$2/bundle.json" ] || $IFVIT calibrate --model "$1" --out "$2" --eval "$2.val/fvc2002_db2_b" \
    "$2.val/fvc2002_db3_b" "$2.val/fvc2004_db2_b" "$2.val/fvc2004_db3_b"
}
[ -f "$OUT/whitened/bundle.json" ] || \
  $IFVIT whiten --model "$OUT/export" "${ARGS[@]}" --no-templates --out "$OUT/whitened" --quiet
calibrated "$OUT/whitened" "$OUT/calibrated"
[ -f "$OUT/labelled/bundle.json" ] || $IFVIT whiten --model "$OUT/calibrated" "${ARGS[@]}" \
  --data "$REAL/neurotech_crossmatch" --dpi 0 --layout folder \
  --data "$REAL/neurotech_uareu" --dpi 0 --layout folder \
  --pairs-neck within-finger --out "$OUT/labelled" --quiet
calibrated "$OUT/labelled" "$OUT/ifvit-small"
echo "model: $OUT/ifvit-small"
