"""LoFTR port: shapes under jit, attention against naive references, matching on hand-built P."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ifvit_core import config
from ifvit_core.loftr import LoFTR, dual_softmax, match_coarse, top_k_matches
from ifvit_core.loftr.attention import full_attention, linear_attention
from ifvit_core.loftr.backbone import upsample2x_align_corners
from ifvit_core.loftr.fine import unfold_windows
from ifvit_core.loftr.position_encoding import frequencies, sine_position_encoding


def naive_linear_attention(q, k, v, q_mask=None, kv_mask=None, eps=1e-6):
    """O(L*S) loop form: out_l = Σ_s φ(q_l)·φ(k_s) v_s / (Σ_s φ(q_l)·φ(k_s) + eps), per head."""
    def phi(x):  # elu(x) + 1
        return np.where(x > 0, x + 1.0, np.exp(x))

    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    b, l_len, h, d = q.shape
    s_len = k.shape[1]
    qm = np.ones((b, l_len)) if q_mask is None else np.asarray(q_mask, np.float64)
    km = np.ones((b, s_len)) if kv_mask is None else np.asarray(kv_mask, np.float64)
    out = np.zeros((b, l_len, h, d))
    for bi in range(b):
        for li in range(l_len):
            for hi in range(h):
                qv = phi(q[bi, li, hi]) * qm[bi, li]
                w = np.array([qv @ (phi(k[bi, s, hi]) * km[bi, s]) for s in range(s_len)])
                num = sum(w[s] * v[bi, s, hi] * km[bi, s] for s in range(s_len))
                out[bi, li, hi] = num / (w.sum() + eps)
    return out


@pytest.mark.parametrize("masked", [False, True])
def test_linear_attention_matches_naive_reference(masked):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(2, 5, 2, 4)).astype(np.float32)
    k = rng.normal(size=(2, 7, 2, 4)).astype(np.float32)
    v = rng.normal(size=(2, 7, 2, 4)).astype(np.float32)
    qm = km = None
    if masked:
        qm = np.array([[1, 1, 1, 0, 1], [1, 1, 1, 1, 1]], bool)
        km = np.array([[1, 0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]], bool)
    got = jax.jit(linear_attention)(q, k, v, qm, km)
    want = naive_linear_attention(q, k, v, qm, km)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    if masked:
        assert np.all(np.asarray(got)[0, 3] == 0.0)  # a masked query outputs 0


def test_full_attention_matches_softmax_reference_and_masks():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(1, 3, 2, 4)).astype(np.float32)
    k = rng.normal(size=(1, 6, 2, 4)).astype(np.float32)
    v = rng.normal(size=(1, 6, 2, 4)).astype(np.float32)
    km = np.array([[1, 1, 0, 1, 0, 1]], bool)
    got = np.asarray(full_attention(q, k, v, None, km))
    keep = np.flatnonzero(km[0])
    for h in range(2):
        logits = q[0, :, h] @ k[0, keep, h].T / 2.0  # √D = 2
        a = np.exp(logits - logits.max(1, keepdims=True))
        a /= a.sum(1, keepdims=True)
        np.testing.assert_allclose(got[0, :, h], a @ v[0, keep, h], rtol=1e-5, atol=1e-6)


def test_position_encoding_layout_and_buggy_frequencies():
    # buggy: -log(10000)/256//2 == -1 -> w_k = exp(-2k); fixed: exp(-2k ln(1e4)/128).
    np.testing.assert_allclose(frequencies(256, "buggy")[:3], np.exp([0.0, -2.0, -4.0]), rtol=1e-6)
    np.testing.assert_allclose(frequencies(256, "fixed")[1], np.exp(-2 * np.log(1e4) / 128),
                               rtol=1e-6)
    pe = sine_position_encoding(3, 5, 8, "fixed")  # w = [1, 1e-2]
    x, y = 4, 2  # 1-based positions of column 3, row 1
    np.testing.assert_allclose(pe[1, 3, 0:4], [np.sin(x), np.cos(x), np.sin(y), np.cos(y)],
                               rtol=1e-6)
    np.testing.assert_allclose(pe[1, 3, 4], np.sin(x * 1e-2), rtol=1e-5)


def test_upsample_align_corners_matches_definition():
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
    up = np.asarray(upsample2x_align_corners(jnp.asarray(x)))[0, :, :, 0]
    assert up.shape == (6, 8)
    # align_corners=True: corners map exactly, output row r samples input row r*(3-1)/(6-1).
    assert up[0, 0] == 0 and up[-1, -1] == 11 and up[0, -1] == 3
    np.testing.assert_allclose(up[1, 0], 4 * (2 / 5), rtol=1e-6)  # row 0.4 of column 0 (0, 4, 8)


def test_dual_softmax_and_mutual_nn_on_hand_built_matrix():
    # 4x4 grids would be all border with border_rm=1; use 2 rows x 4 cols, border 0 here.
    conf = np.full((1, 4, 4), 0.01, np.float32)
    conf[0, 0, 1] = 0.9  # mutual
    conf[0, 1, 1] = 0.5  # row 1's max is column 1, but column 1's max is row 0 -> not mutual
    conf[0, 2, 3] = 0.15  # mutual but below threshold 0.2
    conf[0, 3, 2] = 0.3  # mutual, above threshold
    m = match_coarse(jnp.asarray(conf), (1, 4), (1, 4), threshold=0.2, border_rm=0)
    assert m.valid.tolist() == [[True, False, False, True]]
    assert m.j_ids[0, 0] == 1 and m.j_ids[0, 3] == 2
    np.testing.assert_allclose(np.asarray(m.mconf[0]), [0.9, 0, 0, 0.3], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(m.mkpts0_c[0, 3]), [24.0, 0.0])  # cell 3 -> x = 3*8
    np.testing.assert_allclose(np.asarray(m.mkpts1_c[0, 0]), [8.0, 0.0])
    top = top_k_matches(m, 2)
    assert sorted(np.asarray(top.i_ids[0]).tolist()) == [0, 3] and bool(top.valid.all())

    # Border removal on a 5x5 grid: only the centre cell (index 12) survives border_rm=2.
    conf = np.full((1, 25, 25), 1e-3, np.float32)
    conf[0, 12, 12] = conf[0, 0, 0] = 0.9
    m = match_coarse(jnp.asarray(conf), (5, 5), (5, 5), threshold=0.2, border_rm=2)
    assert np.flatnonzero(np.asarray(m.valid[0])).tolist() == [12]


def test_dual_softmax_definition():
    rng = np.random.default_rng(2)
    f0 = rng.normal(size=(1, 3, 8)).astype(np.float32)
    f1 = rng.normal(size=(1, 4, 8)).astype(np.float32)
    p = np.asarray(dual_softmax(f0, f1, 0.1))
    s = (f0[0] / np.sqrt(8)) @ (f1[0] / np.sqrt(8)).T / 0.1
    def sm(a, ax):
        return np.exp(a - a.max(ax, keepdims=True)) / np.exp(a - a.max(ax, keepdims=True)).sum(
            ax, keepdims=True)

    np.testing.assert_allclose(p[0], sm(s, 0) * sm(s, 1), rtol=1e-5, atol=1e-7)


def test_unfold_windows_matches_direct_indexing():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(1, 8, 12, 2)).astype(np.float32)  # fine map of a 16x24 image (coarse 2x3)
    win = np.asarray(unfold_windows(jnp.asarray(f), (2, 3), 5))
    assert win.shape == (1, 6, 25, 2)
    padded = np.pad(f, ((0, 0), (2, 2), (2, 2), (0, 0)))
    cell = 4  # row 1, col 1 -> fine centre (4, 4)
    want = padded[0, 4:9, 4:9].reshape(25, 2)  # rows 4-2..4+2 in unpadded coordinates
    np.testing.assert_allclose(win[0, cell], want)


@pytest.fixture(scope="module")
def tiny_model():
    cfg = config.tiny()
    model = LoFTR(cfg.loftr, rngs=nnx.Rngs(0))
    model.eval()
    return cfg, model


@pytest.mark.parametrize("shape1", [(64, 64), (48, 80)])
def test_loftr_shapes_under_jit(tiny_model, shape1):
    cfg, model = tiny_model
    b = 2
    x0 = jnp.asarray(np.random.default_rng(0).random((b, 64, 64, 1)), jnp.float32)
    x1 = jnp.asarray(np.random.default_rng(1).random((b, *shape1, 1)), jnp.float32)

    @nnx.jit
    def run(m, a, c):
        out = m(a, c, fine=True)
        return {k: v for k, v in out.items() if k not in ("hw0_c", "hw1_c")}

    out = run(model, x0, x1)
    l_len, s_len = 64, (shape1[0] // 8) * (shape1[1] // 8)
    c, cf = cfg.loftr.coarse.d_model, cfg.loftr.fine_d_model
    assert out["feat_c0"].shape == (b, l_len, c) and out["feat_c1"].shape == (b, s_len, c)
    assert out["conf_matrix"].shape == (b, l_len, s_len)
    for k in ("i_ids", "j_ids", "valid", "mconf"):
        assert out[k].shape == (b, l_len)
    for k in ("mkpts0_c", "mkpts1_c", "mkpts0_f", "mkpts1_f"):
        assert out[k].shape == (b, l_len, 2)
    assert out["expec_f"].shape == (b, l_len, 3)
    conf = np.asarray(out["conf_matrix"])
    assert np.all(np.isfinite(conf)) and conf.min() >= 0 and conf.max() <= 1
    # Fine offsets stay inside the 5x5 window at the 1/2 level: |Δ| <= 2 * 2 px.
    delta = np.asarray(out["mkpts1_f"] - out["mkpts1_c"])
    assert np.abs(delta).max() <= 4.0 + 1e-5
    assert cf == model.backbone.layer1_outconv2_3.out_features


def test_siamese_weights_and_sequential_cross_update(tiny_model):
    """A cross layer must update f1 with the *new* f0, using the same weights for both images."""
    _, model = tiny_model
    rng = np.random.default_rng(4)
    f0 = jnp.asarray(rng.normal(size=(1, 6, 16)), jnp.float32)
    f1 = jnp.asarray(rng.normal(size=(1, 6, 16)), jnp.float32)
    tr = model.loftr_coarse  # layers: self, cross
    o0, o1 = tr(f0, f1)
    l0, l1 = tr.layer(0), tr.layer(1)
    a0, a1 = l0(f0, f0), l0(f1, f1)
    b0 = l1(a0, a1)
    b1 = l1(a1, b0)
    np.testing.assert_allclose(np.asarray(o0), np.asarray(b0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(o1), np.asarray(b1), rtol=1e-6, atol=1e-6)
    assert not np.allclose(np.asarray(o1), np.asarray(l1(a1, a0)), atol=1e-4)


def test_self_only_model_matches_identical_images_on_the_diagonal():
    """Without cross layers both images get identical tokens, so P is symmetric and every match is
    (i, i). (With cross layers LoFTR's sequential update makes P asymmetric on purpose.)"""
    import dataclasses

    cfg = config.tiny().loftr
    cfg = dataclasses.replace(cfg, coarse=dataclasses.replace(cfg.coarse, layer_names=("self",)))
    model = LoFTR(cfg, rngs=nnx.Rngs(2))
    model.eval()
    x = jnp.asarray(np.random.default_rng(5).random((1, 64, 64, 1)), jnp.float32)
    out = nnx.jit(lambda m, a: m(a, a, fine=False))(model, x)
    conf = np.asarray(out["conf_matrix"][0])
    np.testing.assert_allclose(conf, conf.T, atol=1e-6)
    v = np.asarray(out["valid"][0])
    assert np.all(np.asarray(out["j_ids"][0])[v] == np.flatnonzero(v))


def test_gradients_are_finite_in_train_mode():
    cfg = config.tiny()
    model = LoFTR(cfg.loftr, rngs=nnx.Rngs(1))
    model.train()
    x0 = jnp.asarray(np.random.default_rng(6).random((2, 64, 64, 1)), jnp.float32)

    def loss_fn(m):
        out = m(x0, x0[:, ::-1], fine=True)
        return -jnp.log(out["conf_matrix"].max(axis=2) + 1e-6).mean() + out["expec_f"].mean()

    grads = nnx.jit(nnx.grad(loss_fn))(model)
    leaves = jax.tree.leaves(nnx.state(grads, nnx.Param))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in leaves)
    assert sum(float(jnp.abs(g).sum()) > 0 for g in leaves) > 0.9 * len(leaves)
