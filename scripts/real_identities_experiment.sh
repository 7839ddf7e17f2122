#!/bin/bash
# Issue 19, first real-identity experiment (docs/real-identities.md): Module 2 of the shipped model
# fine-tuned on real prints with identity labels (FVC2002 DB2_B / DB3_B, FVC2004 DB2_B / DB3_B, and
# the two Neurotechnology sample sets with one identity per finger across both sensors), then
# evaluated on FVC2002 DB1_B exactly like the shipped model. FVC2002 DB1_B is never trained on.
# About 12 min of training on a shared 2-core CPU (300 steps at 1.3-2.4 s), ~35 min of evaluation.
# Usage: bash scripts/real_identities_experiment.sh [OUT]   (default OUT: runs/real_ids; each stage
# is skipped when its output exists, and `ifvit train` resumes where it stopped)
# REAL: the folder of the real sets (default ../shared/data/real, as in train_shipped_model.sh).
set -euo pipefail
OUT=${1:-runs/real_ids}
REAL=$(realpath "${REAL:-../shared/data/real}")
IFVIT=${IFVIT:-uv run --locked ifvit}
PY=${PY:-uv run --locked python}
SHIP=${SHIP:-packages/ifvit-train/src/ifvit_train/serving/shipped_models/ifvit-small}
STEPS=${STEPS:-300}
mkdir -p "$OUT"

# 1. identity folder of symlinks: <identity>/<identity>_<n>_<ppi>ppi.<ext>. FVC files carry no dpi
# metadata, so the sensor resolution goes into the file name (ingest's `ppi` pattern group; one
# ingest, one shard folder, every print resampled to 500 ppi). Neurotech: one identity per folder
# name across both sensors (CrossMatch impressions 1-8, U.are.U 9-16; their metadata says 500).
IDS="$OUT/real_ids"
if [ ! -d "$IDS" ]; then
  mkdir -p "$IDS.tmp"
  for SET in fvc2002_db2_b:fvc02db2:569 fvc2002_db3_b:fvc02db3:500 fvc2004_db2_b:fvc04db2:500 \
             fvc2004_db3_b:fvc04db3:512; do
    IFS=: read -r NAME TAG PPI <<< "$SET"
    for F in "$REAL/$NAME"/*_*.tif; do
      B=$(basename "$F" .tif); FID=${B%_*}; IMP=${B#*_}
      mkdir -p "$IDS.tmp/$TAG-$FID"
      ln -s "$F" "$IDS.tmp/$TAG-$FID/$TAG-${FID}_${IMP}_${PPI}ppi.tif"
    done
  done
  for SET in neurotech_crossmatch:tif:0 neurotech_uareu:jpeg:8; do
    IFS=: read -r NAME EXT OFF <<< "$SET"
    for D in "$REAL/$NAME"/*/; do
      ID=nt-$(basename "$D")
      mkdir -p "$IDS.tmp/$ID"
      for F in "$D"*."$EXT"; do
        IMP=$(( $(basename "$F" ."$EXT") + OFF ))
        ln -s "$F" "$IDS.tmp/$ID/${ID}_${IMP}_500ppi.$EXT"
      done
    done
  done
  mv "$IDS.tmp" "$IDS"
fi

# 2. shards: 1,248 prints of 117 fingers (40 FVC + 77 Neurotech, 39 of them on both sensors)
[ -f "$OUT/shards/manifest.json" ] || $IFVIT ingest --input "$IDS" --layout folder --strict \
  --quiet --pattern '(?P<subject>.+)_(?P<impression>\d+)_(?P<ppi>\d+)ppi\.\w+' --out "$OUT/shards"

# 3. Module 2 fine-tuned from the shipped Module 2 (flags of the shipped last stage; 17 of 117
# fingers held out: finger-disjoint, and a Neurotech finger is one finger on both sensors). The
# shipped (exported Module 2) bundle is also --from-dense: its Module 1 and preprocessing are used.
grep -q '"status": "complete"' "$OUT/match_real/bundle.json" 2>/dev/null ||
$IFVIT train match --data "$OUT/shards" --from-dense "$SHIP" --init-from "$SHIP" \
  --workdir "$OUT/match_real" --steps "$STEPS" --batch 4 --lr 3e-4 --margin-warmup 0 --holdout 17 \
  --validate-every 150 --checkpoint-every 25 --seed 0 --no-progress

# 4. FVC2002 DB1_B (never trained on), like the shipped model's rows in docs/accuracy.md
for PROTO in baselines identification; do
  [ -f "$OUT/eval/db1_b-$PROTO/report.json" ] || $IFVIT evaluate --model "$OUT/match_real" \
    --data "$REAL/fvc2002_db1_b" --protocol "$PROTO" --out "$OUT/eval/db1_b-$PROTO" --quiet
done
# the "before" column: the shipped model (no --model), same commands
for PROTO in baselines identification; do
  [ -f "$OUT/eval/shipped-db1_b-$PROTO/report.json" ] || $IFVIT evaluate \
    --data "$REAL/fvc2002_db1_b" --protocol "$PROTO" --out "$OUT/eval/shipped-db1_b-$PROTO" --quiet
done
# 5. FVC2004 DB2_B, a TRAINING set of this experiment (8 of its 10 fingers trained on): not held out
E="$OUT/eval/fvc2004_db2_b-baselines"
[ -f "$E/report.json" ] || $IFVIT evaluate --model "$OUT/match_real" \
  --data "$REAL/fvc2004_db2_b" --protocol baselines --out "$E" --quiet
# 6. the held-out Neurotech fingers (never trained on; cross-sensor where both sets have the
# finger), both models, FVC protocol (every genuine pair, impostors = first impressions)
HO="$OUT/heldout_nt"
[ -d "$HO" ] || $PY - "$OUT/match_real/bundle.json" "$OUT/shards/manifest.json" "$IDS" "$HO" <<'EOF'
import json, os, re, sys
from pathlib import Path
bundle, manifest, ids, out = (Path(a) for a in sys.argv[1:])
held = set(json.loads(bundle.read_text())["data"]["heldout_fingers"])
idx = json.loads(manifest.read_text())["index"]
names = sorted({s for f, s in zip(idx["finger"], idx["subject"]) if f in held and s[:3] == "nt-"})
tmp = out.with_name(out.name + ".tmp")
for name in names:
    (tmp / name).mkdir(parents=True)
    for link in (ids / name).iterdir():  # <id>_<n>_500ppi.<ext> -> <id>/<n>.<ext>
        n = re.fullmatch(re.escape(name) + r"_(\d+)_\d+ppi(\.\w+)", link.name)
        os.symlink(os.readlink(link), tmp / name / f"{n[1]}{n[2]}")
tmp.rename(out)
print(f"held-out Neurotech fingers: {len(names)}")
EOF
for M in new shipped; do
  E="$OUT/eval/$M-heldout_nt-fvc"
  [ -f "$E/report.json" ] || $IFVIT evaluate $([ $M = new ] && echo --model "$OUT/match_real") \
    --data "$HO" --layout folder --protocol fvc --out "$E" --quiet
done
echo "model: $OUT/match_real; reports: $OUT/eval"
