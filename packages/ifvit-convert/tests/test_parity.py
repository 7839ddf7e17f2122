"""Parity proof: a random-weight PyTorch LoFTR (kornia) vs its conversion in ifvit-core's paper
preset.

The reference is saved in LoFTR's Lightning layout, converted through the file path users take,
loaded from the written .safetensors, and both models run on the same image pair. Compared: backbone
coarse and fine maps, the position-encoded coarse tokens, every coarse transformer layer's output
for both images, the confidence matrix, the match set, and per match the confidence, coarse
keypoints, fine expectation and fine keypoints. Tolerance 1e-4 absolute (fp32; 4e-4 px for the fine
keypoints, which are the expectation times 4 px); match sets must be identical.

A random-weight LoFTR matches by position rather than content and is less confident than a trained
one, so the pair is an image and a noisy copy of it (no shift), and the parity configuration keeps
LoFTR's temperature but uses threshold 0.02 and no border removal (both models use the same values):
that gives 10-50 matches per pair whose row maxima lead the runner-up by >= 10%, far more than the
numerical differences, so the set comparison is exact and stable.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from ifvit_convert import build_model_from_meta, load_converted, loftr_config_from_meta
from ifvit_convert.convert import convert_file
from ifvit_convert.verify import build_reference, compare, random_pair, run_converted, run_reference
from ifvit_core.loftr.model import add_position_encoding

TOL = 1e-4
# Fine keypoints are pixels: mkpts1_f = mkpts1_c + expec_f[:2] * (window // 2) * fine stride (= 4 px
# per unit), so the same 1e-4 on the normalised expectation allows 4e-4 px.
TOL_PX = {"mkpts0_f": 4e-4, "mkpts1_f": 4e-4}
PER_MATCH = ("fine transformer", "mconf", "mkpts0_c", "mkpts1_c", "expec_f", "mkpts0_f", "mkpts1_f")


@pytest.mark.parametrize(
    ("pos_enc", "batch", "height", "width"),
    [("buggy", 2, 64, 96), ("fixed", 1, 128, 128)],
)
def test_kornia_vs_converted(pos_enc, batch, height, width, paper_ckpt, tmp_path):
    _, written = convert_file(paper_ckpt, tmp_path / "loftr.safetensors", pos_enc=pos_enc)
    flat, meta = load_converted(written)
    assert meta["pos_enc"] == pos_enc
    meta = copy.deepcopy(meta)
    meta["model_config"]["matching"].update(threshold=0.02, border_rm=0)
    cfg = loftr_config_from_meta(meta)
    jax_model = build_model_from_meta(meta, flat)
    reference = build_reference(cfg, load_converted_source(paper_ckpt))

    img0, img1 = random_pair(batch, height, width, seed=3, shift=(0, 0), noise=0.05)
    ref = run_reference(reference, img0, img1)
    out = run_converted(jax_model, img0, img1)
    report = compare(ref, out)
    print(f"\n[{pos_enc}, B={batch}, {height}x{width}]\n{report.format()}")

    assert set(PER_MATCH) <= set(report.max_abs)
    assert len([k for k in report.max_abs if k.startswith("coarse layer")]) == 8
    bad = {k: v for k, v in report.max_abs.items() if not v <= TOL_PX.get(k, TOL)}
    assert not bad, report.format()
    assert report.matches_equal, report.format()
    assert len(report.torch_matches) >= 8 * batch, report.format()
    assert {b for b, _, _ in report.torch_matches} == set(range(batch))

    # The comparison can tell the variants apart: the other variant's tokens are far off.
    other = "fixed" if pos_enc == "buggy" else "buggy"
    feat_c0 = out["backbone"][0]
    wrong = np.asarray(add_position_encoding(feat_c0, other))
    assert np.max(np.abs(wrong - ref["tokens"][0])) > 1e-2


def load_converted_source(path):
    """The reference's own weights, read independently of the converter (plain torch.load)."""
    import torch

    sd = torch.load(path, weights_only=True)["state_dict"]
    return {k.removeprefix("matcher."): v.numpy() for k, v in sd.items()}
