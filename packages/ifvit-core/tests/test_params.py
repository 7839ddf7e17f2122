"""The `paper` preset's variable tree against LoFTR's checkpoint key list (SPEC §5.1), and
loading."""

import jax
import numpy as np
import pytest
from flax import nnx

from ifvit_core import config, params
from ifvit_core.loftr import LoFTR


def loftr_checkpoint_keys() -> dict[str, tuple[int, ...]]:
    """The official outdoor_ds.ckpt keys (prefix `matcher.` stripped, num_batches_tracked dropped)
    with PyTorch shapes, written out from SPEC §5.1 independently of the model code."""
    keys: dict[str, tuple[int, ...]] = {}

    def bn(name, c):
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{name}.{leaf}"] = (c,)

    def block(name, cin, cout, down):
        keys[f"{name}.conv1.weight"] = (cout, cin, 3, 3)
        keys[f"{name}.conv2.weight"] = (cout, cout, 3, 3)
        bn(f"{name}.bn1", cout)
        bn(f"{name}.bn2", cout)
        if down:
            keys[f"{name}.downsample.0.weight"] = (cout, cin, 1, 1)
            bn(f"{name}.downsample.1", cout)

    b = "backbone"
    keys[f"{b}.conv1.weight"] = (128, 1, 7, 7)
    bn(f"{b}.bn1", 128)
    block(f"{b}.layer1.0", 128, 128, False)
    block(f"{b}.layer1.1", 128, 128, False)
    block(f"{b}.layer2.0", 128, 196, True)
    block(f"{b}.layer2.1", 196, 196, False)
    block(f"{b}.layer3.0", 196, 256, True)
    block(f"{b}.layer3.1", 256, 256, False)
    keys[f"{b}.layer3_outconv.weight"] = (256, 256, 1, 1)
    keys[f"{b}.layer2_outconv.weight"] = (256, 196, 1, 1)
    keys[f"{b}.layer2_outconv2.0.weight"] = (256, 256, 3, 3)
    bn(f"{b}.layer2_outconv2.1", 256)
    keys[f"{b}.layer2_outconv2.3.weight"] = (196, 256, 3, 3)
    keys[f"{b}.layer1_outconv.weight"] = (196, 128, 1, 1)
    keys[f"{b}.layer1_outconv2.0.weight"] = (196, 196, 3, 3)
    bn(f"{b}.layer1_outconv2.1", 196)
    keys[f"{b}.layer1_outconv2.3.weight"] = (128, 196, 3, 3)

    def layer(name, d):
        for p in ("q_proj", "k_proj", "v_proj", "merge"):
            keys[f"{name}.{p}.weight"] = (d, d)
        keys[f"{name}.mlp.0.weight"] = (2 * d, 2 * d)
        keys[f"{name}.mlp.2.weight"] = (d, 2 * d)
        for n in ("norm1", "norm2"):
            keys[f"{name}.{n}.weight"] = (d,)
            keys[f"{name}.{n}.bias"] = (d,)

    for i in range(8):
        layer(f"loftr_coarse.layers.{i}", 256)
    keys["fine_preprocess.down_proj.weight"] = (128, 256)
    keys["fine_preprocess.down_proj.bias"] = (128,)
    keys["fine_preprocess.merge_feat.weight"] = (128, 256)
    keys["fine_preprocess.merge_feat.bias"] = (128,)
    for i in range(2):
        layer(f"loftr_fine.layers.{i}", 128)
    return keys


def torch_to_flax(key: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """SPEC §5.2 rules: fold numeric tokens, rename leaves, transpose shapes."""
    parts = key.split(".")
    folded: list[str] = []
    for p in parts[:-1]:
        if p.isdigit():
            folded[-1] += f"_{p}"
        else:
            folded.append(p)
    leaf = parts[-1]
    if len(shape) == 4:  # conv OIHW -> HWIO
        return "/".join(folded + ["kernel"]), (shape[2], shape[3], shape[1], shape[0])
    if len(shape) == 2:  # linear (out, in) -> (in, out)
        return "/".join(folded + ["kernel"]), (shape[1], shape[0])
    # 1-D: BatchNorm/LayerNorm affine + BN running stats, and Linear biases
    rename = {"running_mean": "mean", "running_var": "var", "weight": "scale", "bias": "bias"}
    return "/".join(folded + [rename[leaf]]), shape


@pytest.fixture(scope="module")
def abstract_paper():
    return nnx.eval_shape(lambda: LoFTR(config.paper().loftr, rngs=nnx.Rngs(0)))


def test_paper_tree_matches_checkpoint_key_list(abstract_paper):
    ckpt = loftr_checkpoint_keys()
    assert len(ckpt) == 194  # 211 keys minus 17 num_batches_tracked
    want = dict(torch_to_flax(k, s) for k, s in ckpt.items())
    got = {
        "/".join(map(str, p)): tuple(v.get_value().shape)
        for p, v in nnx.to_flat_state(nnx.state(abstract_paper))
    }
    assert sorted(set(want) - set(got)) == [] and sorted(set(got) - set(want)) == []
    assert got == want


def test_paper_parameter_counts(abstract_paper):
    counts = {
        g: params.param_count(abstract_paper, prefix=g + "/")
        for g in ("backbone", "loftr_coarse", "fine_preprocess", "loftr_fine")
    }
    assert counts == {
        "backbone": 5_915_888,
        "loftr_coarse": 5_251_072,
        "fine_preprocess": 65_792,
        "loftr_fine": 328_704,
    }
    assert params.param_count(abstract_paper) == 11_561_456
    stats = nnx.to_flat_state(nnx.state(abstract_paper, nnx.BatchStat))
    assert sum(int(np.prod(v.get_value().shape)) for _, v in stats) == 6_704  # BN running stats


def test_load_flat_state_roundtrip_and_errors():
    cfg = config.tiny().loftr
    a = LoFTR(cfg, rngs=nnx.Rngs(0))
    b = LoFTR(cfg, rngs=nnx.Rngs(1))
    flat = params.flat_state(a)
    assert not np.array_equal(flat["backbone/conv1/kernel"],
                              params.flat_state(b)["backbone/conv1/kernel"])
    filled = params.load_flat_state(b, flat)
    assert len(filled) == len(flat)
    for k, v in params.flat_state(b).items():
        np.testing.assert_array_equal(v, flat[k])

    broken = dict(flat)
    broken.pop("loftr_coarse/layers_0/q_proj/kernel")
    broken["extra/thing"] = np.zeros(3, np.float32)
    broken["backbone/bn1/mean"] = np.zeros(5, np.float32)
    with pytest.raises(params.ParamMismatchError) as e:
        params.load_flat_state(b, broken)
    assert e.value.missing == ["loftr_coarse/layers_0/q_proj/kernel"]
    assert e.value.unexpected == ["extra/thing"]
    assert e.value.mismatched and e.value.mismatched[0].startswith("backbone/bn1/mean")
    # non-strict + ignored prefix: copies what matches, skips the rest
    partial = {k: v for k, v in flat.items() if k.startswith("backbone/")}
    partial["fine_preprocess/x"] = np.zeros(1, np.float32)
    n = params.load_flat_state(b, partial, strict=False, ignore_prefixes=("fine_preprocess/",))
    assert len(n) == sum(k.startswith("backbone/") for k in flat)
    with pytest.raises(params.ParamMismatchError):
        half = flat["backbone/conv1/kernel"].astype(np.float16)
        params.load_flat_state(b, {"backbone/conv1/kernel": half}, strict=False)
    jax.block_until_ready(jax.tree.leaves(nnx.state(b)))
