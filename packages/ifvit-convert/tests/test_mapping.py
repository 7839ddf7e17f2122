"""The name map and hook table, checked against SPEC §5.1 counts and the ifvit-core model (no
torch)."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from ifvit_convert.hooks import HOOKS, conv_oihw_to_hwio, copy, linear_to_in_out, target_shape
from ifvit_convert.mapping import GROUPS, build_name_map, group_counts
from ifvit_core import config
from ifvit_core.loftr import LoFTR
from ifvit_core.params import _flat_variables


def test_counts_match_spec(paper_cfg):
    nm = build_name_map(paper_cfg)
    counts = group_counts(nm)
    # SPEC §5.1: 211 keys, 194 without num_batches_tracked, 11,561,456 learnable values.
    assert len(nm.entries) == 194 and len(nm.dropped) == 17
    assert {g: c.params for g, c in counts.items()} == {
        "backbone": 5_915_888,
        "loftr_coarse": 5_251_072,
        "fine_preprocess": 65_792,
        "loftr_fine": 328_704,
    }
    assert sum(c.params for c in counts.values()) == 11_561_456
    # keys per group including the step counters: backbone 107, coarse 80, fine 4 + 20
    per_group_keys = {g: c.tensors for g, c in counts.items()}
    per_group_keys["backbone"] += len(nm.dropped)
    assert per_group_keys == {
        "backbone": 107,
        "loftr_coarse": 80,
        "fine_preprocess": 4,
        "loftr_fine": 20,
    }
    assert counts["backbone"].stats == 6_704
    assert list(counts) == list(GROUPS)


def test_table_is_one_to_one(paper_cfg):
    nm = build_name_map(paper_cfg)
    sources = [e.source for e in nm.entries] + list(nm.dropped)
    targets = [e.target for e in nm.entries]
    assert len(set(sources)) == len(sources)
    assert len(set(targets)) == len(targets)
    assert all(e.hook in HOOKS for e in nm.entries)


def test_known_rows(paper_cfg):
    rows = build_name_map(paper_cfg).by_source()
    assert rows["backbone.conv1.weight"].target == "backbone/conv1/kernel"
    assert rows["backbone.conv1.weight"].source_shape == (128, 1, 7, 7)
    assert (
        rows["backbone.layer2.0.downsample.1.running_var"].target
        == "backbone/layer2_0/downsample_1/var"
    )
    assert not rows["backbone.layer2.0.downsample.1.running_var"].trainable
    assert rows["backbone.layer2_outconv2.3.weight"].target == "backbone/layer2_outconv2_3/kernel"
    assert rows["backbone.layer2_outconv2.3.weight"].source_shape == (196, 256, 3, 3)
    row = rows["loftr_coarse.layers.3.mlp.2.weight"]
    assert (row.target, row.hook, row.source_shape) == (
        "loftr_coarse/layers_3/mlp_2/kernel",
        "linear_to_in_out",
        (256, 512),
    )
    assert rows["fine_preprocess.merge_feat.bias"].target == "fine_preprocess/merge_feat/bias"
    assert rows["loftr_fine.layers.1.norm2.weight"].target == "loftr_fine/layers_1/norm2/scale"
    assert "backbone.layer1.0.downsample.0.weight" not in rows  # layer1 has no downsample


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_targets_are_exactly_the_model_variables(preset):
    cfg = config.get_preset(preset).loftr
    model = nnx.eval_shape(lambda: LoFTR(cfg, rngs=nnx.Rngs(0)))
    want = {
        k: (tuple(v.get_value().shape), np.dtype(v.get_value().dtype))
        for k, v in _flat_variables(model).items()
    }
    got = {
        e.target: (target_shape(e.hook, e.source_shape), np.dtype(np.float32))
        for e in build_name_map(cfg).entries
    }
    assert got == want


def test_hooks_layouts():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 3, 7, 2)).astype(np.float32)  # O, I, kh, kw
    k = conv_oihw_to_hwio(w)
    assert k.shape == (7, 2, 3, 5) and k.flags.c_contiguous
    assert k[4, 1, 2, 3] == w[3, 2, 4, 1]
    lin = rng.normal(size=(4, 6)).astype(np.float64)  # out, in
    x = rng.normal(size=(2, 6))
    np.testing.assert_allclose(x @ linear_to_in_out(lin), x @ lin.T, rtol=1e-6)
    assert linear_to_in_out(lin).dtype == np.float32
    b = rng.normal(size=(4,)).astype(np.float32)
    c = copy(b)
    assert c is not b and np.array_equal(c, b)
    with pytest.raises(ValueError):
        conv_oihw_to_hwio(lin)
    with pytest.raises(ValueError):
        linear_to_in_out(w)


def test_conv_hook_matches_torch_conv():
    """OIHW -> HWIO gives the same convolution in lax (NHWC) as torch (NCHW), stride 2, pad 1."""
    import jax
    import torch

    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 3, 3, 3)).astype(np.float32)
    x = rng.normal(size=(1, 3, 10, 12)).astype(np.float32)
    want = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1
    ).numpy()
    got = jax.lax.conv_general_dilated(
        x.transpose(0, 2, 3, 1),
        conv_oihw_to_hwio(w),
        (2, 2),
        ((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), want, atol=1e-5)
