#!/bin/bash
# Reproduces the shipped model (packages/ifvit-train/src/ifvit_train/weights/ifvit-small):
# synthetic prints -> shards -> Module 1 -> Module 2 -> weights-only export. Seed 0, `small` preset.
# About 1.5 hours on a 2-core CPU (128-px stages ~55 min, 256-px fine-tuning ~30 min); unchanged on a GPU host
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
[ -f "$OUT/ifvit-small/bundle.json" ] || $IFVIT export "$OUT/model/match256" --out "$OUT/ifvit-small" \
  --recipe "bash scripts/train_shipped_model.sh (ifvit synth --fingers 300 --impressions 8 --seed 0; ifvit ingest; ifvit train dense --preset small --steps 1500 --impression-pairs 0.5 --max-translation 24 --downscale 1.6 --holdout 30 --seed 0; ifvit train match --steps 1500 --lambda-embed 1 --arcface-scale 30 --margin-warmup 300 --holdout 30 --seed 0; whole prints: ifvit train dense --init-from match --image-size 256 --steps 400 --batch 4 --lr 3e-4 --max-translation 48; ifvit train match --init-from match --steps 300 --batch 4 --lr 3e-4 --margin-warmup 0; ifvit export)"
echo "model: $OUT/ifvit-small"
