"""`ifvit inspect BUNDLE`: what a model bundle holds and how it was trained."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ifvit_cli.errors import UserError

HELP = "show a model bundle: config, step, parameter groups, data, provenance"
DESCRIPTION = "Print what a model bundle (an `ifvit train` workdir) holds, without loading weights."
EPILOG = """\
examples:
  ifvit inspect runs/m/match
  ifvit inspect runs/m/dense --json
  ifvit inspect                      # the shipped model: how it was trained, its thresholds
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, nargs="?", default=None,
                   help="the bundle folder (default: the model shipped with ifvit)")
    p.add_argument("--json", action="store_true", help="print bundle.json as is")


def run(args: argparse.Namespace) -> int:
    from ifvit_cli.model import model_path
    from ifvit_train.bundle import BundleError, read_meta
    from ifvit_train.preprocessing import describe

    args.bundle = model_path(args.bundle)
    try:
        m = read_meta(args.bundle)
    except BundleError as e:
        raise UserError(str(e)) from None
    if args.json:
        print(json.dumps(m, indent=1, sort_keys=True))
        return 0
    cfg, data, tc = m["config"], m.get("data", {}), m.get("train", {})
    kind = {"dense": "Module 1 (dense registration)", "match": "Module 1 + Module 2 (matcher)"}
    ck = args.bundle / "checkpoints"
    ckpts = sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit()) if ck.is_dir() else []
    lines = [
        f"bundle      {args.bundle.resolve()}",
        f"kind        {kind[m['kind']]}; status {m.get('status')}; step {m.get('step', '-')}"
        f" of {tc.get('steps')} (checkpoints: {ckpts or 'none'})",
        f"model       preset {cfg['name']}, image {cfg['image_size']} px, coarse d_model "
        f"{cfg['loftr']['coarse']['d_model']} x "
        f"{len(cfg['loftr']['coarse']['layer_names'])} layers, pos-enc {cfg['loftr']['pos_enc']}, "
        f"embed {cfg['module2']['embed_dim']}, ArcFace classes {cfg['module2']['num_classes']}",
        "stages      " + ", ".join(f"{k}: {v}" for k, v in m.get("stages", {}).items()),
        "parameters  " + ", ".join(f"{k} {v:,}" for k, v in m.get("parameter_groups", {}).items()),
        f"data        {data.get('shards')} (manifest sha256 "
        f"{str(data.get('manifest_sha256'))[:12]}), {data.get('train_records')} training prints of "
        f"{data.get('train_fingers')} fingers; held-out fingers {data.get('heldout_fingers')}",
        f"training    batch {tc.get('batch_size')} x accum {tc.get('accum_steps')}, lr "
        f"{tc.get('learning_rate')}, {tc.get('compute_dtype')}, seed {tc.get('seed')}, "
        f"{m.get('train_seconds', 0):.0f} s",
    ]
    if m["kind"] == "match":
        fd = m.get("from_dense", {})
        copied = (f", {fd['copied_per_branch']} tensors per branch, checked equal"
                  if fd.get("copied_per_branch") else "")
        lines.append(f"Module 1    from {fd.get('path')} (step {fd.get('step')}, state sha256 "
                     f"{str(fd.get('state_sha256'))[:12]}){copied}")
    if m.get("init_from"):
        st = m["init_from"]
        what = "Module 2" if m["kind"] == "match" else "Module 1"
        lines.append(f"fine-tuned  {what} started from {st.get('path')} (step {st.get('step')}, "
                     f"weights sha256 {str(st.get('state_sha256'))[:12]})")
    for key, label in (("initial_validation", "val before"), ("validation", "val after")):
        if m.get(key):
            lines.append(f"{label:<12}" + ", ".join(f"{k.removeprefix('val_')} {v:.4g}"
                                                    for k, v in m[key].items()))
    if m.get("exported_from"):
        ex = m["exported_from"]
        lines.append(f"exported    weights only (sha256 {m.get('weights_sha256', '')[:12]}) from "
                     f"{ex.get('path')} at step {ex.get('step')}")
    if m.get("whitened"):
        w = m["whitened"]
        lines.append(f"whitened    embedding neck on {w['vectors_per_branch']} unlabelled vectors "
                     "per branch of " + ", ".join(f"{s['data']} ({s['pairs']} pairs, files "
                                                  f"sha256 {s['files_sha256'][:12]})"
                                                  for s in w["sets"]) + f", eps {w['eps']:g}")
    if m.get("calibration"):
        cal = m["calibration"]
        lines.append(f"calibrated  evidence k {cal['evidence_k']:g} ({cal['chosen_by']}), "
                     "thresholds on "
                     + "; ".join(f"{s['data'] or s['evaluation']} ({s['protocol']})"
                                 for s in cal["sets"]))
    if m.get("recipe"):
        lines.append(f"recipe      {m['recipe']}")
    pre = m.get("preprocessing", {})
    grow = (f", growing with the print up to {pre['max_input_size']} in use"
            if pre.get("max_input_size") else "")
    lines.append(f"inputs      {pre.get('dpi')} ppi, downscale {pre.get('downscale', 1.0)}, window "
                 f"{pre.get('input_size')}{grow} at the foreground centroid, enhancement "
                 f"{describe(pre)}")
    if m.get("thresholds"):
        lines.append("thresholds  " + ", ".join(f"{k} {v:.4f}" for k, v in m["thresholds"].items()
                                                if isinstance(v, float)))
    lines.append("versions    " + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()))
    print("\n".join(lines))
    return 0
