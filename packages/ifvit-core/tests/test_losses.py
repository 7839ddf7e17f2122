"""Tests for ifvit_core.losses against hand-computed values and naive numpy references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ifvit_core import config, losses, scores

# Jitted entry points: one compile per shape instead of eager op-by-op compiles (keeps the suite
# fast); scale/margin/eps stay traced, which also checks that they may be traced values.
_dense = jax.jit(losses.dense_loss, static_argnames=("focal",))
_cos_loss = jax.jit(losses.cosine_embedding_loss)
_arc_loss = jax.jit(losses.arcface_loss)
_arc_logits = jax.jit(losses.arcface_logits)

# --------------------------------------------------------------------------------------------------
# L_D
# --------------------------------------------------------------------------------------------------

# Pair 0: GT matches (0,0) and (1,1); pair 1: GT match (2,1); one padded slot each (index 0 / junk).
CONF = np.array(
    [
        [[0.7, 0.1, 0.2], [0.05, 0.8, 0.15], [0.3, 0.3, 0.4]],
        [[0.2, 0.2, 0.6], [0.1, 0.1, 0.8], [0.25, 0.5, 0.25]],
    ],
    np.float32,
)
GT_I = np.array([[0, 1, 0], [2, 0, 0]], np.int32)
GT_J = np.array([[0, 1, 0], [1, 0, 0]], np.int32)
GT_VALID = np.array([[True, True, False], [True, False, False]])


def test_dense_loss_nll_hand_value():
    loss, aux = _dense(CONF, GT_I, GT_J, GT_VALID)
    expected = -(math.log(0.7) + math.log(0.8) + math.log(0.5)) / 3.0
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(aux["num_gt"], [2.0, 1.0])
    np.testing.assert_allclose(aux["num_gt_total"], 3.0)
    per_pair = [-(math.log(0.7) + math.log(0.8)) / 2.0, -math.log(0.5)]
    np.testing.assert_allclose(aux["per_pair"], per_pair, rtol=1e-6)


def test_dense_loss_focal_hand_value():
    loss, _ = _dense(CONF, GT_I, GT_J, GT_VALID, focal=True, alpha=0.25, gamma=2.0)
    terms = [-0.25 * (1 - p) ** 2 * math.log(p) for p in (0.7, 0.8, 0.5)]
    np.testing.assert_allclose(loss, sum(terms) / 3.0, rtol=1e-6)


def test_dense_loss_clamps_zero_probability():
    conf = np.zeros((1, 2, 2), np.float32)
    conf[0, 1, 0] = 1.0
    loss, _ = _dense(
        conf, np.array([[0, 1]]), np.array([[0, 0]]), np.array([[True, True]]), eps=1e-6
    )
    # log(1e-6) for the zero entry, log(1 - 1e-6) for the one entry.
    expected = -(math.log(1e-6) + math.log(1 - 1e-6)) / 2.0
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_dense_loss_impostor_only_batch_is_zero_with_zero_grads():
    conf = np.zeros((2, 3, 3), np.float32)  # degenerate probabilities on purpose
    valid = np.zeros((2, 3), bool)
    loss, aux = _dense(conf, GT_I, GT_J, valid)
    assert float(loss) == 0.0
    np.testing.assert_array_equal(aux["per_pair"], [0.0, 0.0])
    for focal in (False, True):
        # the lambda is traced right here, within this iteration
        g = jax.jit(jax.grad(lambda c: _dense(c, GT_I, GT_J, valid, focal=focal)[0]))(conf)  # noqa: B023
        assert np.all(np.isfinite(g))
        assert np.all(np.asarray(g) == 0.0)


def test_dense_loss_mixed_batch_ignores_impostor():
    conf = CONF.copy()
    conf[1] = 0.0  # impostor pair with garbage probabilities and garbage indices
    gt_i = GT_I.copy()
    gt_i[1] = [2, 2, 2]
    valid = GT_VALID.copy()
    valid[1] = False
    loss, aux = _dense(conf, gt_i, GT_J, valid)
    np.testing.assert_allclose(loss, -(math.log(0.7) + math.log(0.8)) / 2.0, rtol=1e-6)
    np.testing.assert_allclose(aux["num_gt"], [2.0, 0.0])
    g = jax.jit(jax.grad(lambda c: _dense(c, gt_i, GT_J, valid)[0]))(conf)
    assert np.all(np.asarray(g)[1] == 0.0)
    # d/dP of -(log P00 + log P11)/2 is -1/(2P) at the GT entries, 0 elsewhere.
    expected = np.zeros_like(conf)
    expected[0, 0, 0] = -1 / (2 * 0.7)
    expected[0, 1, 1] = -1 / (2 * 0.8)
    np.testing.assert_allclose(g, expected, rtol=1e-5)


def test_dense_loss_grad_through_dual_softmax_logits_is_finite():
    logits = 3.0 * np.random.default_rng(0).normal(size=(2, 4, 4)).astype(np.float32)
    logits[0, 0, :] = -1e4  # a row whose probabilities underflow to 0

    @jax.jit
    def loss_fn(s):
        conf = jax.nn.softmax(s, axis=1) * jax.nn.softmax(s, axis=2)
        gi = jnp.array([[0, 1, 2], [3, 0, 0]])
        gj = jnp.array([[1, 2, 3], [0, 0, 0]])
        gv = jnp.array([[True, True, True], [True, False, False]])
        return losses.dense_loss(conf, gi, gj, gv)[0]

    g = np.asarray(jax.jit(jax.grad(loss_fn))(logits))
    assert np.all(np.isfinite(g))
    assert np.abs(g).sum() > 0.0
    # Finite differences on one logit agree with the gradient.
    h = 1e-2
    e = np.zeros_like(logits)
    e[1, 3, 0] = h
    fd = (float(loss_fn(logits + e)) - float(loss_fn(logits - e))) / (2 * h)
    np.testing.assert_allclose(g[1, 3, 0], fd, rtol=2e-2, atol=1e-4)


# --------------------------------------------------------------------------------------------------
# L_E
# --------------------------------------------------------------------------------------------------


def test_cosine_embedding_loss_hand_cases():
    z1 = np.array([[1.0, 2.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], np.float32)
    s3 = math.sqrt(3.0) / 2.0
    z2 = np.array([[2.0, 4.0], [0.0, 3.0], [0.5, s3], [-0.5, s3]], np.float32)
    y = np.array([1, 1, 0, 0])
    # genuine identical direction: 0; genuine orthogonal: 1; impostor cos 0.5, margin 0.2: 0.3;
    # impostor cos -0.5: 0.
    per = [0.0, 1.0, 0.3, 0.0]
    out = _cos_loss(z1, z2, y, margin=0.2)
    np.testing.assert_allclose(out, np.mean(per), atol=1e-6)
    for k in range(4):
        one = _cos_loss(z1[k : k + 1], z2[k : k + 1], y[k : k + 1], margin=0.2)
        np.testing.assert_allclose(one, per[k], atol=1e-6)
    # PyTorch-style labels -1 mean impostor too.
    np.testing.assert_allclose(
        _cos_loss(z1[2:3], z2[2:3], np.array([-1]), margin=0.0), 0.5, atol=1e-6
    )


def test_cosine_embedding_loss_zero_vector_is_safe():
    z1 = np.zeros((2, 4), np.float32)
    z2 = np.ones((2, 4), np.float32)
    y = np.array([1, 0])
    out = _cos_loss(z1, z2, y)
    np.testing.assert_allclose(out, (1.0 + 0.0) / 2, atol=1e-6)  # cos(0, z) = 0
    g1, g2 = jax.jit(jax.grad(lambda a, b: _cos_loss(a, b, y), argnums=(0, 1)))(z1, z2)
    assert np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))


# --------------------------------------------------------------------------------------------------
# L_A
# --------------------------------------------------------------------------------------------------


def _np_arcface_loss(z, w, labels, s, m):
    """Naive numpy ArcFace using explicit angles (arccos), mean over known labels."""
    z = np.asarray(z, np.float64)
    w = np.asarray(w, np.float64)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    wn = w / np.linalg.norm(w, axis=0, keepdims=True)
    cos = np.clip(zn @ wn, -1, 1)
    total, n = 0.0, 0
    for b, y in enumerate(labels):
        if y < 0:
            continue
        logits = s * cos[b].copy()
        theta = math.acos(cos[b, y])
        target = math.cos(theta + m) if theta + m < math.pi else cos[b, y] - m * math.sin(m)
        logits[y] = s * target
        mx = logits.max()
        lse = mx + math.log(np.exp(logits - mx).sum())
        total += lse - logits[y]
        n += 1
    return total / max(n, 1)


def _rand(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_arcface_loss_matches_numpy_reference():
    z, w = _rand((6, 8), 1), _rand((8, 5), 2)
    labels = np.array([0, 4, 2, 2, 1, 3])
    for s, m in ((64.0, 0.4), (30.0, 0.5), (8.0, 0.0)):
        got = _arc_loss(z, w, labels, scale=s, margin=m)
        np.testing.assert_allclose(got, _np_arcface_loss(z, w, labels, s, m), rtol=1e-4)


def test_arcface_guard_branch_matches_reference():
    # Embeddings nearly opposite to their class centre exercise the cos θ <= cos(π - m) branch.
    w = _rand((4, 3), 3)
    labels = np.array([0, 1, 2])
    z = -w.T + 0.05 * _rand((3, 4), 4)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    cos_t = np.sum(zn * (w / np.linalg.norm(w, axis=0)).T, 1)
    assert np.all(cos_t < math.cos(math.pi - 0.4))
    got = _arc_loss(z, w, labels, scale=64.0, margin=0.4)
    np.testing.assert_allclose(got, _np_arcface_loss(z, w, labels, 64.0, 0.4), rtol=1e-4)


def test_arcface_margin_lowers_target_logit_and_raises_loss():
    w = _rand((8, 4), 5)
    z = w[:, 2][None] + 0.3 * _rand((1, 8), 6)  # close to class 2
    labels = np.array([2])
    l0 = _arc_logits(z, w, labels, scale=64.0, margin=0.0)
    l1 = _arc_logits(z, w, labels, scale=64.0, margin=0.4)
    assert float(l1[0, 2]) < float(l0[0, 2]) - 1.0
    np.testing.assert_allclose(np.delete(l1, 2, axis=1), np.delete(l0, 2, axis=1), rtol=1e-6)
    # s=8 so the loss is not saturated at 0 in fp32.
    hi = _arc_loss(z, w, labels, scale=8.0, margin=0.4)
    lo = _arc_loss(z, w, labels, scale=8.0, margin=0.0)
    assert float(lo) > 0.0 and float(hi) > float(lo)


@pytest.mark.parametrize("margin", [0.2, 0.4, 0.5])
def test_arcface_target_logit_monotonic_in_theta(margin):
    theta = np.linspace(0.0, math.pi, 721)
    z = np.stack([np.cos(theta), np.sin(theta)], axis=1).astype(np.float32)  # angle θ to class 0
    w = np.eye(2, dtype=np.float32)
    labels = np.zeros(len(theta), np.int32)
    target = np.asarray(_arc_logits(z, w, labels, scale=1.0, margin=margin))[:, 0]
    assert np.all(np.diff(target) <= 1e-5)
    np.testing.assert_allclose(target[0], math.cos(margin), atol=1e-3)
    np.testing.assert_allclose(target[-1], -1.0 - margin * math.sin(margin), atol=1e-5)
    # Unguarded cos(θ + m) would rise again past θ = π - m; the guarded one keeps falling.
    k = np.searchsorted(theta, math.pi - margin + 0.05)
    assert target[k] < -1.0


def test_arcface_unknown_labels_masked():
    z, w = _rand((4, 6), 7), _rand((6, 3), 8)
    labels = np.array([2, -1, 0, -1])
    got = _arc_loss(z, w, labels)
    ref = _np_arcface_loss(z[[0, 2]], w, labels[[0, 2]], 64.0, 0.4)
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    none = _arc_loss(z, w, np.full(4, -1))
    assert float(none) == 0.0
    g = jax.jit(jax.grad(lambda ww: _arc_loss(z, ww, np.full(4, -1))))(w)
    assert np.all(np.asarray(g) == 0.0)


def test_arcface_weight_gradient_finite_and_nonzero():
    z, w = _rand((5, 6), 9), _rand((6, 4), 10)
    labels = np.array([0, 1, 2, 3, -1])
    g = jax.jit(jax.grad(lambda ww: _arc_loss(z, ww, labels)))(w)
    assert np.all(np.isfinite(g))
    assert np.all(np.linalg.norm(np.asarray(g), axis=0) > 0)
    # Exactly aligned embedding (θ = 0) must not give an infinite gradient.
    g2 = jax.jit(jax.grad(lambda zz: _arc_loss(zz, w, np.array([1]))))(w[:, 1][None])
    assert np.all(np.isfinite(g2))


# --------------------------------------------------------------------------------------------------
# Module 2 total and fusion
# --------------------------------------------------------------------------------------------------


def _module2_example():
    b, d, c, m = 3, 6, 4, 5
    rng = np.random.default_rng(11)
    outputs, batch = {}, {}
    for name, (n0, s) in (("global", (6, 5)), ("local", (4, 4))):
        logits = rng.normal(size=(b, n0, s))
        conf = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        conf = conf * np.exp(logits) / np.exp(logits).sum(2, keepdims=True)
        outputs[name] = {
            "conf": conf.astype(np.float32),
            "z0": rng.normal(size=(b, d)).astype(np.float32),
            "z1": rng.normal(size=(b, d)).astype(np.float32),
            "arcface_weight": rng.normal(size=(d, c)).astype(np.float32),
        }
        batch[f"{name}_gt_i"] = rng.integers(0, n0, size=(b, m)).astype(np.int32)
        batch[f"{name}_gt_j"] = rng.integers(0, s, size=(b, m)).astype(np.int32)
        batch[f"{name}_gt_valid"] = np.array([[1, 1, 1, 0, 0], [1] * 5, [0] * 5], bool)
    batch["label0"] = np.array([0, 3, -1], np.int32)
    batch["label1"] = np.array([0, 1, 2], np.int32)
    batch["is_genuine"] = np.array([1, 0, 0], np.int32)
    return outputs, batch


def test_module2_loss_components_and_weighted_sum():
    outputs, batch = _module2_example()
    lam = dict(lambda_dense=0.7, lambda_embed=0.3, lambda_arcface=2.0)
    fn = jax.jit(lambda o, b: losses.module2_loss(o, b, cosine_margin=0.1, **lam))
    total, comps = fn(outputs, batch)
    ref = {}
    for name in ("global", "local"):
        o = outputs[name]
        bi, bj = batch[f"{name}_gt_i"], batch[f"{name}_gt_j"]
        v = batch[f"{name}_gt_valid"]
        p = np.stack([o["conf"][b, bi[b], bj[b]] for b in range(3)])
        ref[f"dense_{name}"] = -np.log(np.clip(p, 1e-6, 1 - 1e-6))[v].mean()
        n0, n1 = np.linalg.norm(o["z0"], axis=1), np.linalg.norm(o["z1"], axis=1)
        cos = np.sum(o["z0"] * o["z1"], 1) / n0 / n1
        per = np.where(batch["is_genuine"] > 0, 1 - cos, np.maximum(cos - 0.1, 0))
        ref[f"embed_{name}"] = per.mean()
        z = np.concatenate([o["z0"], o["z1"]])
        labels = np.concatenate([batch["label0"], batch["label1"]])
        ref[f"arcface_{name}"] = _np_arcface_loss(z, o["arcface_weight"], labels, 64.0, 0.4)
    for k, v in ref.items():
        np.testing.assert_allclose(comps[k], v, rtol=1e-4, err_msg=k)
    expected = sum(
        lam[f"lambda_{t}"] * 0.5 * (ref[f"{t}_global"] + ref[f"{t}_local"])
        for t in ("dense", "embed", "arcface")
    )
    np.testing.assert_allclose(total, expected, rtol=1e-4)
    np.testing.assert_allclose(comps["total"], total)


def test_module2_loss_jit_and_grad():
    outputs, batch = _module2_example()
    fn = jax.jit(lambda o: losses.module2_loss(o, batch)[0])
    g = jax.jit(jax.grad(fn))(outputs)
    for name in ("global", "local"):
        for k in ("conf", "z0", "z1", "arcface_weight"):
            assert np.all(np.isfinite(g[name][k])), (name, k)
        assert float(jnp.abs(g[name]["arcface_weight"]).sum()) > 0


def test_fuse_scores():
    fused = scores.fuse_scores(np.array([0.8, 0.2]), np.array([0.4, 0.6]))
    np.testing.assert_allclose(fused, [0.6, 0.4])
    np.testing.assert_allclose(scores.fuse_scores(0.9, 0.3, alpha=0.25), 0.25 * 0.9 + 0.75 * 0.3)
    rois = np.array([[0.2, 0.4, 0.9], [0.1, 0.3, 0.5]])
    np.testing.assert_allclose(
        scores.fuse_scores(np.array([1.0, 0.0]), rois, alpha=0.5), [0.5 + 0.5 * 0.5, 0.5 * 0.3]
    )
    mask = np.array([[True, True, False], [False, False, False]])
    fused = scores.fuse_scores(np.array([1.0, 0.2]), rois, 0.5, local_valid=mask)
    np.testing.assert_allclose(fused, [0.5 + 0.5 * 0.3, 0.2])


# --------------------------------------------------------------------------------------------------
# LoFTR fine loss
# --------------------------------------------------------------------------------------------------


def _fine_case():
    coords = np.array([[0.0, 0.0], [0.5, 0.5], [0.2, 0.2], [0.0, 0.0]], np.float32)
    std = np.array([0.5, 1.0, 0.1, 0.3], np.float32)
    target = np.array([[0.3, 0.4], [0.5, -0.5], [1.2, 0.0], [0.1, 0.1]], np.float32)
    valid = np.array([True, True, True, False])
    return coords, std, target, valid


def test_fine_loss_hand_case():
    from ifvit_core.losses import fine_loss

    coords, std, target, valid = _fine_case()
    loss, aux = fine_loss(coords, std, target, valid)
    # row 0: l2 0.09+0.16 = 0.25, w = 1/0.5 = 2; row 1: l2 0 + 1 = 1, w = 1;
    # row 2 lies outside the window (|1.2| >= 1), row 3 has no GT: (2*0.25 + 1*1) / (2 + 1) = 0.5
    assert float(loss) == pytest.approx(0.5, abs=1e-6)
    assert float(aux["num_inside"]) == 2
    assert list(np.asarray(aux["inside"])) == [True, True, False, False]
    assert float(aux["epe"]) == pytest.approx((0.5 + 1.0) / 2, abs=1e-5)
    g_c, g_s = jax.grad(lambda c, s: fine_loss(c, s, target, valid)[0], argnums=(0, 1))(
        jnp.asarray(coords), jnp.asarray(std))
    # d/dc of w0/Σw * ||t0 - c0||² = (2/3) * 2 * (c0 - t0) = (-0.4, -0.5333); std gets no gradient
    np.testing.assert_allclose(np.asarray(g_c[0]), [-0.4, -1.6 / 3], atol=1e-5)
    np.testing.assert_allclose(np.asarray(g_c[2:]), 0.0)
    np.testing.assert_allclose(np.asarray(g_s), 0.0)


def test_fine_loss_zero_at_target_and_grows_with_offset():
    from ifvit_core.losses import fine_loss

    target = np.array([[0.25, -0.5]], np.float32)
    std, valid = np.array([0.7], np.float32), np.array([True])
    assert float(fine_loss(target, std, target, valid)[0]) == 0.0
    for d in (0.1, 0.2, 0.4):  # one row: the weights cancel, the loss is the squared offset
        c = target + np.array([[d, 0.0]], np.float32)
        assert float(fine_loss(c, std, target, valid)[0]) == pytest.approx(d * d, rel=1e-5)
    # no row inside the window: exactly 0 with zero gradient
    outside = np.array([[1.0, 0.0]], np.float32)
    loss, g = jax.value_and_grad(lambda c: fine_loss(c, std, outside, valid)[0])(jnp.zeros((1, 2)))
    assert float(loss) == 0.0 and not np.any(np.asarray(g))


def test_fine_offset_target_inverts_the_fine_keypoint():
    from ifvit_core.loftr.fine import fine_offset_target

    # cell 5 of a 4-wide grid is (col 1, row 1): corner (8, 8); window 5 at fine stride 2 reaches 4
    # px
    t = fine_offset_target(jnp.array([[10.0, 4.0]]), jnp.array([5]), 4, 5)
    np.testing.assert_allclose(np.asarray(t), [[0.5, -1.0]])


def test_evidence_weighted_by_hand():
    score, n = np.array([0.8, 0.8, -0.5, 0.9]), np.array([30, 0, 10, 1000])
    np.testing.assert_allclose(scores.evidence_weighted(score, n, 10.0),
                               [0.9 * 30 / 40, 0.0, 0.25 * 10 / 20, 0.95 * 1000 / 1010], rtol=1e-6)
    # k = 0 is the paper's score, unchanged
    np.testing.assert_array_equal(scores.evidence_weighted(score, n, 0.0), score.astype(np.float32))


def test_evidence_k_must_not_be_negative():
    with pytest.raises(ValueError, match="evidence_k"):
        config.Module2Config(evidence_k=-1.0)


# --------------------------------------------------------------------------------------------------
# Template losses
# --------------------------------------------------------------------------------------------------


def _template_case():
    b, d, c = 3, 6, 4
    single = {f"{br}{k}": _rand((b, d), 40 + 2 * i + k) for i, br in enumerate(("global", "local"))
              for k in (0, 1)}
    weights = {"global": _rand((d, c), 50), "local": _rand((d, c), 51)}
    labels = np.array([0, 1, 2, 0, 3, -1], np.int32)  # image 0 rows, then image 1 rows
    is_genuine = np.array([1, 0, 0], np.int32)
    score = np.array([0.9, -0.2, 0.1], np.float32)
    return single, weights, labels, is_genuine, score


def test_template_loss_matches_numpy_reference():
    single, weights, labels, gen, score = _template_case()
    got = jax.jit(lambda *a: losses.template_loss(*a, fusion_alpha=0.3, cosine_margin=0.1,
                                                  arcface_scale=16.0, arcface_margin=0.2))(
        single, weights, labels, gen, score)

    def unit(x):
        x = np.asarray(x, np.float64)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    cos = {br: np.sum(unit(single[f"{br}0"]) * unit(single[f"{br}1"]), axis=1)
           for br in ("global", "local")}
    fused = 0.3 * cos["global"] + 0.7 * cos["local"]
    want_cons = np.mean((fused - score) ** 2)
    emb = [np.mean(np.where(gen > 0, 1 - cos[br], np.maximum(cos[br] - 0.1, 0)))
           for br in ("global", "local")]
    arc = [_np_arcface_loss(np.concatenate([single[f"{br}0"], single[f"{br}1"]]), weights[br],
                            labels, 16.0, 0.2) for br in ("global", "local")]
    np.testing.assert_allclose(float(got["consistency"]), want_cons, rtol=1e-5)
    np.testing.assert_allclose(float(got["embed"]), np.mean(emb), rtol=1e-5)
    np.testing.assert_allclose(float(got["arcface"]), np.mean(arc), rtol=1e-4)


def test_template_consistency_does_not_train_the_pair_score():
    single, weights, labels, gen, score = _template_case()

    def cons(s, z):
        return losses.template_loss({**single, "global0": z}, weights, labels, gen,
                                    s)["consistency"]

    g_score, g_z = jax.grad(cons, argnums=(0, 1))(jnp.asarray(score),
                                                 jnp.asarray(single["global0"]))
    assert np.all(np.asarray(g_score) == 0)  # the pair is the target, not trained by this term
    assert np.abs(np.asarray(g_z)).sum() > 0  # the template is
