#!/bin/bash
# Reproduces the shipped model (packages/ifvit-train/src/ifvit_train/weights/ifvit-small):
# synthetic prints -> shards -> Module 1 -> Module 2 -> weights-only export -> embedding neck whitened
# on, and calibration on, the four real validation sets (REAL=folder of the FVC sets). Seed 0,
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
$IFVIT train dense --data "$OUT/shards" --workdir "$OUT/model/dense" --preset small --steps 1500 \
  --impression-pairs 0.5 --max-translation 24 --downscale 1.6 --holdout 30 \
  --validate-every 500 --checkpoint-every 250 --seed 0 --no-progress
$IFVIT train match --data "$OUT/shards" --from-dense "$OUT/model/dense" --workdir "$OUT/model/match" \
  --steps 1500 --lambda-embed 1 --arcface-scale 30 --margin-warmup 300 --holdout 30 \
  --validate-every 500 --checkpoint-every 250 --seed 0 --no-progress
# whole prints: both modules fine-tuned on 256-px windows (410 px of a 500-ppi print)
$IFVIT train dense --data "$OUT/shards" --workdir "$OUT/model/dense256" --init-from "$OUT/model/match" \
  --image-size 256 --steps 400 --batch 4 --lr 3e-4 --impression-pairs 0.5 --max-translation 48 \
  --downscale 1.6 --holdout 30 --validate-every 200 --checkpoint-every 50 --seed 0 --no-progress
$IFVIT train match --data "$OUT/shards" --from-dense "$OUT/model/dense256" --init-from "$OUT/model/match" \
  --workdir "$OUT/model/match256" --steps 300 --batch 4 --lr 3e-4 --margin-warmup 0 --holdout 30 \
  --validate-every 150 --checkpoint-every 50 --seed 0 --no-progress
# ridge enhancement: Module 1 retrained from scratch with --enhance (128 px, then 256 px), Module 2
# fine-tuned from the whole-print Module 2 on the enhanced inputs
$IFVIT train dense --data "$OUT/shards" --workdir "$OUT/model/dense_enh" --preset small --steps 1500 \
  --impression-pairs 0.5 --max-translation 24 --downscale 1.6 --holdout 30 --enhance \
  --validate-every 500 --checkpoint-every 250 --seed 0 --no-progress
$IFVIT train dense --data "$OUT/shards" --workdir "$OUT/model/dense_enh256" --init-from "$OUT/model/dense_enh" \
  --enhance --image-size 256 --steps 400 --batch 4 --lr 3e-4 --impression-pairs 0.5 --max-translation 48 \
  --downscale 1.6 --holdout 30 --validate-every 200 --checkpoint-every 50 --seed 0 --no-progress
$IFVIT train match --data "$OUT/shards" --from-dense "$OUT/model/dense_enh256" --init-from "$OUT/model/match256" \
  --workdir "$OUT/model/match_enh256" --steps 400 --batch 4 --lr 3e-4 --margin-warmup 0 --holdout 30 \
  --validate-every 200 --checkpoint-every 50 --seed 0 --no-progress
[ -f "$OUT/export/bundle.json" ] || $IFVIT export "$OUT/model/match_enh256" --out "$OUT/export" \
  --recipe "bash scripts/train_shipped_model.sh (ifvit synth --fingers 300 --impressions 8 --seed 0; ifvit ingest; ifvit train dense --preset small --steps 1500 --impression-pairs 0.5 --max-translation 24 --downscale 1.6 --holdout 30 --seed 0; ifvit train match --steps 1500 --lambda-embed 1 --arcface-scale 30 --margin-warmup 300 --holdout 30 --seed 0; whole prints: ifvit train dense --init-from match --image-size 256 --steps 400 --batch 4 --lr 3e-4 --max-translation 48; ifvit train match --init-from match --steps 300 --batch 4 --lr 3e-4 --margin-warmup 0; ridge enhancement: ifvit train dense --enhance (as the first dense stage); ifvit train dense --enhance --init-from it --image-size 256 --steps 400 --batch 4 --lr 3e-4 --max-translation 48; ifvit train match --from-dense it --init-from match256 --steps 400 --batch 4 --lr 3e-4 --margin-warmup 0; ifvit export; ifvit whiten (pairwise neck; template neck with the sets' finger labels, eps 0.1, alpha 0.85) on FVC2002 DB2_B (569 dpi), DB3_B, FVC2004 DB2_B, DB3_B (512 dpi); ifvit evaluate --protocol baselines on those four sets; ifvit calibrate on those four evaluations)"
# the embedding neck re-estimated on the four real training sets (unlabelled pairs, never FVC2002
# DB1_B: `ifvit whiten`) and the templates' neck from their finger labels (same command), then
# thresholds and the Module 1 evidence weight from the same four sets. (The shipped bundle got its
# template neck by a later `ifvit whiten --templates-only` on the calibrated model, same sets:
# the same fit, up to float rounding.)
REAL=${REAL:-../shared/data/real}
SETS="fvc2002_db2_b:569 fvc2002_db3_b: fvc2004_db2_b: fvc2004_db3_b:512"  # name:dpi (empty: the files')
if [ ! -f "$OUT/whitened/bundle.json" ]; then
  ARGS=()
  for SET in $SETS; do NAME=${SET%%:*} DPI=${SET##*:}; ARGS+=(--data "$REAL/$NAME" --dpi "${DPI:-0}"); done
  $IFVIT whiten --model "$OUT/export" "${ARGS[@]}" --out "$OUT/whitened" --quiet
fi
for SET in $SETS; do
  NAME=${SET%%:*} DPI=${SET##*:}
  [ -f "$OUT/val/$NAME/report.json" ] || $IFVIT evaluate --model "$OUT/whitened" --data "$REAL/$NAME" \
    --protocol baselines ${DPI:+--dpi $DPI} --out "$OUT/val/$NAME" --quiet
done
[ -f "$OUT/ifvit-small/bundle.json" ] || $IFVIT calibrate --model "$OUT/whitened" --out "$OUT/ifvit-small" \
  --eval "$OUT/val/fvc2002_db2_b" "$OUT/val/fvc2002_db3_b" "$OUT/val/fvc2004_db2_b" "$OUT/val/fvc2004_db3_b"
echo "model: $OUT/ifvit-small"
