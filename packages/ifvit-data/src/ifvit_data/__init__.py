"""ifvit_data: IFViT input pipelines in numpy (no JAX, Flax or torch).

Modules (import what you need; this package imports nothing eagerly):

- `schema`: record / batch keys and dtypes (docs/contracts.md), record bytes, manifest version.
- `readers`, `imagefile`: FVC, NIST SD4/SD300/SD301/SD302 and folder layouts -> 500-ppi 8-bit
  records.
- `shards`, `ingest`: ArrayRecord shards + manifest.json (atomic, idempotent); `RecordSource` for
  Grain.
- `augment`: Perlin sensor noise, dryness / pressure morphology, rotations with the forward matrix.
- `groundtruth`: coarse GT correspondences from point maps (SPEC §4.3), fixed-size and padded.
- `preprocess`, `foreground`: crops around the print's foreground without squashing the ridge
  period.
- `pipeline`, `shuffle`, `memory`: Grain MapDatasets for Module-1, Module-2 and evaluation pairs.
- `impression_pairs`: Module-1 pairs of two different synthetic impressions with exact ground truth.
- `split`: finger-disjoint train / held-out splits (`split_by_finger`, `Subset`).
- `protocol`: FVC (2,800 / 4,950 for 100 x 8) and all-pairs evaluation lists.
- `synth`: the synthetic fingerprint generator.
- `outputs`: the output-safety policy of every command (claimed folders, checked files, atomic
  writes, interrupt guard); stdlib only.
- `workers`: process-pool initializer (workers ignore Ctrl-C and exit when their parent dies).
"""
