"""A model bundle described in a few lines, from its bundle.json alone (`ifvit inspect`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ifvit_train.serving.preprocessing import describe

KINDS = {"dense": "Module 1 (dense registration)", "match": "Module 1 + Module 2 (matcher)"}


def _data_line(data: dict[str, Any]) -> str:
    """The training data: one folder, or several (`train match --data A --data B --mix`)."""
    if data.get("folders"):
        parts = [f"{f['name']} ({f.get('train_records')} prints of {f.get('train_fingers')} "
                 f"fingers, weight {f.get('mix_weight')}, exact correspondences "
                 f"{'yes' if f.get('exact_impression_correspondences') else 'no'}, manifest "
                 f"sha256 {str(f.get('manifest_sha256'))[:12]})" for f in data["folders"]]
        return (f"data        {len(parts)} folders, {data.get('train_records')} training prints of "
                f"{data.get('train_fingers')} fingers: " + "; ".join(parts))
    return (f"data        {data.get('shards')} (manifest sha256 "
            f"{str(data.get('manifest_sha256'))[:12]}), {data.get('train_records')} training "
            f"prints of {data.get('train_fingers')} fingers; held-out fingers "
            f"{data.get('heldout_fingers')}")


def _whitened_lines(w: dict[str, Any]) -> list[str]:
    """The embedding necks refitted by `ifvit whiten` (pairwise and/or template neck)."""
    lines = []
    if "vectors_per_branch" in w:
        labels = ("with finger labels" if w.get("pairs_method") == "within-finger"
                  else "unlabelled")
        lines.append(f"whitened    pairwise neck on {w['vectors_per_branch']} vectors per branch "
                     f"({labels}) of " + ", ".join(f"{s['data']} ({s.get('pairs')} pairs, files "
                                              f"sha256 {s['files_sha256'][:12]})"
                                              for s in w["sets"]) + f", eps {w['eps']:g}")
    t = w.get("templates")
    if t:
        sets = t.get("sets", w.get("sets", []))
        lines.append(f"templates   own neck on {t['prints']} prints of {t['fingers']} fingers of "
                     + ", ".join(s["data"] for s in sets)
                     + f" (within-finger whitening, eps {t['eps']:g}), global weight "
                       f"{t['alpha']:g}")
    return lines


def bundle_summary(path: Path, m: dict[str, Any]) -> list[str]:
    """Lines describing bundle `path` with bundle.json content `m` (no weights are read; the
    checkpoint steps are listed from the folder names)."""
    cfg, data, tc = m["config"], m.get("data", {}), m.get("train", {})
    kind = KINDS
    ck = path / "checkpoints"
    ckpts = sorted(int(p.name) for p in ck.iterdir() if p.name.isdigit()) if ck.is_dir() else []
    lines = [
        f"bundle      {path.resolve()}",
        f"kind        {kind[m['kind']]}; status {m.get('status')}; step {m.get('step', '-')}"
        f" of {tc.get('steps')} (checkpoints: {ckpts or 'none'})",
        f"model       preset {cfg['name']}, image {cfg['image_size']} px, coarse d_model "
        f"{cfg['loftr']['coarse']['d_model']} x "
        f"{len(cfg['loftr']['coarse']['layer_names'])} layers, pos-enc {cfg['loftr']['pos_enc']}, "
        f"embed {cfg['module2']['embed_dim']}, ArcFace classes {cfg['module2']['num_classes']}",
        "stages      " + ", ".join(f"{k}: {v}" for k, v in m.get("stages", {}).items()),
        "parameters  " + ", ".join(f"{k} {v:,}" for k, v in m.get("parameter_groups", {}).items()),
        _data_line(data),
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
        lines += _whitened_lines(m["whitened"])
    if m.get("calibration"):
        cal = m["calibration"]
        lines.append(f"calibrated  evidence k {cal['evidence_k']:g} ({cal['chosen_by']}), "
                     "thresholds on "
                     + "; ".join(f"{s['data'] or s['evaluation']} ({s['protocol']})"
                                 for s in cal["sets"]))
    if isinstance(m.get("training_recipe"), dict):
        r = m["training_recipe"]
        lines.append(f"trained by  recipe {r.get('name')!r}, stage {r.get('stage')!r} "
                     "(ifvit_train.training.recipes)")
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
    return lines
