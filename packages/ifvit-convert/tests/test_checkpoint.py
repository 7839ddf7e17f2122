"""Reading LoFTR checkpoints: layouts, prefix detection, kind / matching / position-encoding
inference."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from ifvit_convert.checkpoint import infer_kind, infer_pos_enc, read_checkpoint
from ifvit_convert.errors import ConversionError, TorchMissingError
from ifvit_convert.mapping import build_name_map


def test_kornia_keys_are_the_name_map(paper_cfg, paper_sd):
    """kornia's (independent) LoFTR has exactly the keys and shapes the table expects, in order."""
    nm = build_name_map(paper_cfg)
    assert len(paper_sd) == 211
    assert [k for k in paper_sd if not k.endswith("num_batches_tracked")] == [
        e.source for e in nm.entries
    ]
    assert all(paper_sd[e.source].shape == e.source_shape for e in nm.entries)
    assert sorted(k for k in paper_sd if k.endswith("num_batches_tracked")) == sorted(nm.dropped)


def test_reads_lightning_layout(paper_ckpt, paper_sd):
    ck = read_checkpoint(paper_ckpt)
    assert ck.container == "lightning" and ck.prefix == "matcher."
    assert ck.match_type == "dual_softmax"
    assert ck.extra == {"epoch": 29, "global_step": 123456}
    assert ck.sha256 == hashlib.sha256(paper_ckpt.read_bytes()).hexdigest()
    assert set(ck.tensors) == set(paper_sd)
    np.testing.assert_array_equal(
        ck.tensors["backbone.bn1.running_var"], paper_sd["backbone.bn1.running_var"]
    )


def test_reads_bare_state_dict(paper_bare, paper_sd):
    ck = read_checkpoint(paper_bare)
    assert ck.container == "state_dict" and ck.prefix == ""
    assert set(ck.tensors) == set(paper_sd)


def test_prefix_override(paper_ckpt):
    ck = read_checkpoint(paper_ckpt, prefix="matcher.backbone.")
    assert (
        "conv1.weight" in ck.tensors and "matcher.loftr_coarse.layers.0.q_proj.weight" in ck.tensors
    )


def test_several_models_in_one_file_need_prefix(tmp_path, tiny_sd, savers):
    both = {
        **{f"student.{k}": v for k, v in tiny_sd.items()},
        **{f"teacher.{k}": v for k, v in tiny_sd.items()},
    }
    path = savers["bare"](tmp_path / "distill.pth", both)
    with pytest.raises(ConversionError, match="several LoFTR models.*--prefix"):
        read_checkpoint(path)
    assert read_checkpoint(path, prefix="teacher.").tensors.keys() >= set(tiny_sd)


def test_optimal_transport_is_detected(tmp_path, tiny_sd, savers):
    path = savers["lightning"](
        tmp_path / "outdoor_ot.ckpt", tiny_sd, {"coarse_matching.bin_score": np.float32(1.0)}
    )
    assert read_checkpoint(path).match_type == "optimal_transport"


@pytest.mark.parametrize(
    ("name", "kind", "pos_enc"),
    [
        ("outdoor_ds.ckpt", "outdoor", "buggy"),
        ("indoor_ds.ckpt", "indoor", "buggy"),
        ("indoor_ds_new.ckpt", "indoor", "fixed"),
        ("loftr_outdoor.ckpt", "outdoor", "buggy"),
        ("my_finetune.pth", "unknown", "buggy"),
        ("newton.ckpt", "unknown", "buggy"),
    ],
)
def test_kind_and_pos_enc_from_file_name(name, kind, pos_enc):
    assert infer_kind(Path(name)) == kind
    assert infer_pos_enc(Path(name))[0] == pos_enc


def test_missing_torch_is_one_clear_line(paper_ckpt, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(TorchMissingError) as e:
        read_checkpoint(paper_ckpt)
    msg = str(e.value)
    assert "\n" not in msg and "ifvit-convert[torch]" in msg and "uv sync --extra convert" in msg
