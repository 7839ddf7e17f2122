"""Conversion end to end: strict accounting, the written files, the sidecar, loading them back."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from flax import nnx

from ifvit_convert import (
    ConversionError,
    apply_converted,
    load_converted,
    load_loftr,
    select_groups,
    sidecar_path,
)
from ifvit_convert.convert import convert_file, format_summary, map_state_dict
from ifvit_convert.mapping import build_name_map
from ifvit_core.loftr import LoFTRCoarse
from ifvit_core.params import flat_state


@pytest.fixture(scope="module")
def converted(paper_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "loftr_outdoor.safetensors"
    conv, written = convert_file(paper_ckpt, out)
    return conv, written


def test_every_value_lands_in_its_leaf(converted, paper_sd):
    conv, _ = converted
    w = paper_sd["backbone.layer2.0.conv1.weight"]  # [O, I, kh, kw]
    np.testing.assert_array_equal(
        conv.flat["backbone/layer2_0/conv1/kernel"], w.transpose(2, 3, 1, 0)
    )
    q = paper_sd["loftr_coarse.layers.5.q_proj.weight"]  # [out, in]
    np.testing.assert_array_equal(conv.flat["loftr_coarse/layers_5/q_proj/kernel"], q.T)
    for torch_leaf, flax_leaf in (
        ("weight", "scale"),
        ("bias", "bias"),
        ("running_mean", "mean"),
        ("running_var", "var"),
    ):
        np.testing.assert_array_equal(
            conv.flat[f"backbone/layer3_0/downsample_1/{flax_leaf}"],
            paper_sd[f"backbone.layer3.0.downsample.1.{torch_leaf}"],
        )
    np.testing.assert_array_equal(
        conv.flat["loftr_fine/layers_1/norm1/bias"], paper_sd["loftr_fine.layers.1.norm1.bias"]
    )
    assert all(v.dtype == np.float32 for v in conv.flat.values())


def test_files_and_sidecar(converted, paper_ckpt):
    conv, written = converted
    assert (
        written.suffix == ".safetensors"
        and sidecar_path(written).name == "loftr_outdoor.safetensors.json"
    )
    meta = json.loads(sidecar_path(written).read_text())
    assert meta["format"] == "ifvit-loftr-params" and meta["format_version"] == 1
    assert meta["preset"] == "paper" and meta["pos_enc"] == "buggy" and meta["kind"] == "outdoor"
    assert meta["match_type"] == "dual_softmax"
    assert meta["source"]["sha256"] == hashlib.sha256(paper_ckpt.read_bytes()).hexdigest()
    assert meta["source"]["path"] == str(paper_ckpt.resolve())
    assert meta["source"]["keys"] == 211 and meta["source"]["dropped_keys"] == 17
    assert meta["source"]["container"] == "lightning" and meta["source"]["prefix"] == "matcher."
    assert meta["weights"]["sha256"] == hashlib.sha256(written.read_bytes()).hexdigest()
    assert meta["groups"]["backbone"] == {"tensors": 90, "params": 5_915_888, "stats": 6_704}
    assert meta["total"] == {"tensors": 194, "params": 11_561_456, "stats": 6_704}
    assert meta["model_config"]["coarse"]["layer_names"] == ["self", "cross"] * 4
    # exactly the pair, no temp files left
    assert sorted(p.name for p in written.parent.iterdir()) == sorted(
        [written.name, sidecar_path(written).name]
    )


def test_summary_lists_groups(converted):
    conv, written = converted
    text = format_summary(conv, written)
    for line in (
        "backbone",
        "5,915,888",
        "loftr_coarse",
        "5,251,072",
        "fine_preprocess",
        "65,792",
        "loftr_fine",
        "328,704",
        "11,561,456",
        "pos_enc buggy",
        "kind outdoor",
    ):
        assert line in text


def test_load_round_trip_into_model(converted):
    conv, written = converted
    flat, meta = load_converted(written)
    assert flat.keys() == conv.flat.keys()
    assert all(np.array_equal(flat[k], conv.flat[k]) for k in flat)
    model, meta2 = load_loftr(sidecar_path(written))  # the sidecar path works too
    assert meta2 == meta
    state = flat_state(model)
    assert all(np.array_equal(state[k], conv.flat[k]) for k in conv.flat)


def test_coarse_only_model_takes_its_groups(converted):
    conv, written = converted
    flat, meta = load_converted(written)
    from ifvit_convert import loftr_config_from_meta

    coarse = nnx.eval_shape(lambda: LoFTRCoarse(loftr_config_from_meta(meta), rngs=nnx.Rngs(0)))
    with pytest.raises(ConversionError, match="unexpected"):
        apply_converted(coarse, flat)
    apply_converted(coarse, flat, meta, pos_enc="buggy", groups=("backbone", "loftr_coarse"))
    assert np.array_equal(
        flat_state(coarse)["loftr_coarse/layers_7/merge/kernel"],
        flat["loftr_coarse/layers_7/merge/kernel"],
    )
    assert len(select_groups(flat, ["backbone"])) == 90


def test_pos_enc_mismatch_is_refused(converted):
    _, written = converted
    flat, meta = load_converted(written)
    with pytest.raises(ConversionError, match="pos_enc='buggy'.*'fixed'"):
        apply_converted(object(), flat, meta, pos_enc="fixed")


def test_npz_bare_and_overrides(paper_bare, tmp_path, paper_sd):
    conv, written = convert_file(paper_bare, tmp_path / "w.npz", pos_enc="fixed", kind="indoor")
    assert written.name == "w.npz"
    with np.load(written, allow_pickle=False) as z:
        assert len(z.files) == 194
    flat, meta = load_converted(written)
    assert (meta["pos_enc"], meta["pos_enc_source"], meta["kind"], meta["kind_source"]) == (
        "fixed",
        "given (--pos-enc)",
        "indoor",
        "given (--kind)",
    )
    assert meta["source"]["container"] == "state_dict" and meta["source"]["prefix"] == ""
    assert np.array_equal(
        flat["backbone/conv1/kernel"], paper_sd["backbone.conv1.weight"].transpose(2, 3, 1, 0)
    )


def test_unknown_kind_is_said(paper_bare, tmp_path):
    conv, _ = convert_file(paper_bare, tmp_path / "w", check_model=False)
    assert (
        conv.meta["kind"] == "unknown" and "weights alone cannot tell" in conv.meta["kind_source"]
    )
    assert (tmp_path / "w.safetensors").is_file()


def test_fp16_source_is_widened(paper_cfg, paper_sd):
    half = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in paper_sd.items()}
    flat = map_state_dict(half, paper_cfg)
    assert all(v.dtype == np.float32 for v in flat.values())
    np.testing.assert_allclose(
        flat["backbone/bn1/var"], paper_sd["backbone.bn1.running_var"], rtol=1e-3
    )


def test_accounting_lists_missing_unexpected_and_shapes(paper_cfg, paper_sd):
    sd = dict(paper_sd)
    del sd["loftr_coarse.layers.7.mlp.2.weight"]
    sd["loftr_coarse.layers.8.q_proj.weight"] = np.zeros((256, 256), np.float32)
    sd["backbone.bn1.running_mean"] = np.zeros((64,), np.float32)
    with pytest.raises(ConversionError) as e:
        map_state_dict(sd, paper_cfg, source="x.ckpt")
    msg = str(e.value)
    assert msg.startswith("x.ckpt: ") and "\n" not in msg
    assert "1 missing keys: loftr_coarse.layers.7.mlp.2.weight" in msg
    assert "1 unexpected keys: loftr_coarse.layers.8.q_proj.weight" in msg
    assert "1 shape mismatches: backbone.bn1.running_mean [64] (want [128])" in msg


def test_integer_tensor_is_refused(paper_cfg, paper_sd):
    sd = dict(paper_sd)
    sd["backbone.conv1.weight"] = sd["backbone.conv1.weight"].astype(np.int32)
    with pytest.raises(ConversionError, match="non-float tensors: backbone.conv1.weight"):
        map_state_dict(sd, paper_cfg)


def test_every_source_key_used_once(paper_cfg, paper_sd):
    nm = build_name_map(paper_cfg)
    used = [e.source for e in nm.entries] + list(nm.dropped)
    assert sorted(used) == sorted(paper_sd)


def test_tampered_weights_are_detected(converted, tmp_path):
    _, written = converted
    copy = tmp_path / written.name
    copy.write_bytes(written.read_bytes()[:-4] + b"\x00" * 4)
    sidecar_path(copy).write_text(sidecar_path(written).read_text())
    with pytest.raises(ConversionError, match="sha256 differs"):
        load_converted(copy)
    with pytest.raises(ConversionError, match="no such file"):
        load_converted(tmp_path / "absent.safetensors")


def test_init_from_converted_for_training(converted, paper_cfg):
    """`--init-loftr`: a freshly initialised coarse trunk starts from the converted weights."""
    from ifvit_convert import init_from_converted

    _, written = converted
    flat, _ = load_converted(written)
    trunk = nnx.eval_shape(lambda: LoFTRCoarse(paper_cfg, rngs=nnx.Rngs(0)))
    meta = init_from_converted(trunk, written)
    assert meta["source"]["keys"] == 211
    state = flat_state(trunk)
    assert len(state) == 170 and all(np.array_equal(state[k], flat[k]) for k in state)
    import dataclasses

    fixed = nnx.eval_shape(
        lambda: LoFTRCoarse(dataclasses.replace(paper_cfg, pos_enc="fixed"), rngs=nnx.Rngs(0))
    )
    with pytest.raises(ConversionError, match="pos_enc='buggy' but the model uses 'fixed'"):
        init_from_converted(fixed, written)
