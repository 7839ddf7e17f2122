"""IFViT Module 2 and the verification graph: shapes under jit, weight transfer, embeddings."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ifvit_core import config, losses, params, scores
from ifvit_core.ifvit import Matcher, init_from_module1, verify_pairs
from ifvit_core.loftr import LoFTR


@pytest.fixture(scope="module")
def models():
    cfg = config.tiny()
    m1 = LoFTR(cfg.loftr, rngs=nnx.Rngs(0))
    m2 = Matcher(cfg, rngs=nnx.Rngs(1))
    return cfg, m1, m2


@pytest.fixture
def eval_models(models):
    """`models` in inference mode (BatchNorm running statistics)."""
    cfg, m1, m2 = models
    m1.eval()
    m2.eval()
    return cfg, m1, m2


def test_init_from_module1_copies_trunk_only(models):
    cfg, m1, m2 = models
    head_before = params.flat_state(m2.global_branch, prefix="embed/")
    n = init_from_module1(m2, m1)
    src = params.flat_state(m1)
    for branch in (m2.global_branch, m2.local_branch):
        dst = params.flat_state(branch)
        trunk = [k for k in dst if k.startswith(("backbone/", "loftr_coarse/"))]
        assert len(trunk) == n and n > 0
        for k in trunk:
            np.testing.assert_array_equal(dst[k], src[k])
    # heads untouched, and the two branches' ArcFace matrices are distinct parameters
    for k, v in head_before.items():
        np.testing.assert_array_equal(params.flat_state(m2.global_branch, prefix="embed/")[k], v)
    assert not np.array_equal(np.asarray(m2.global_branch.arcface_weight[...]),
                              np.asarray(m2.local_branch.arcface_weight[...]))


def test_verify_pairs_under_jit(eval_models):
    cfg, m1, m2 = eval_models
    rng = np.random.default_rng(0)
    x0 = jnp.asarray(rng.random((2, 64, 64, 1)), jnp.float32)
    x1 = jnp.asarray(rng.random((2, 64, 64, 1)), jnp.float32)

    m0 = jnp.ones((2, 64, 64), bool).at[:, :, :8].set(False)
    m1_ = jnp.ones((2, 64, 64), bool)

    @nnx.jit
    def run(a, b, k, i0, i1):
        out = verify_pairs(cfg, a, b, k, i0, i1, m0, m1_)
        return out["score"], out["module2"], out["inputs"], out["alignment"]

    score, out2, inp, ali = run(m1, m2, jax.random.key(0), x0, x1)
    a01 = ali.A01
    g, r = cfg.module2.global_size, cfg.module2.roi_size
    assert score.shape == (2,) and np.all(np.abs(np.asarray(score)) <= 1 + 1e-5)
    assert inp.global0.shape == (2, g, g, 1) and inp.roi1.shape == (2, r, r, 1)
    # the overlap never extends beyond image 0's foreground
    assert not np.asarray(ali.overlap)[:, :, :8].any()
    assert a01.shape == (2, 2, 3)
    for name in ("global", "local"):
        z0 = np.asarray(out2[name]["z0"])
        assert z0.shape == (2, cfg.module2.embed_dim)
        np.testing.assert_allclose(np.linalg.norm(z0, axis=1), 1.0, rtol=1e-5)
    side = r // 8
    assert out2["local"]["conf"].shape == (2, side * side, side * side)
    # the fused score is the configured mix of the branch cosines
    np.testing.assert_allclose(
        np.asarray(score),
        np.asarray(scores.fuse_scores(out2_cos(out2, "global"), out2_cos(out2, "local"),
                                      cfg.module2.fusion_alpha)),
        rtol=1e-5,
    )


def out2_cos(out2, name):
    z0, z1 = np.asarray(out2[name]["z0"]), np.asarray(out2[name]["z1"])
    return jnp.asarray(np.sum(z0 * z1, axis=1))


def test_module2_loss_gradients_reach_heads_and_arcface(models):
    cfg, _, m2 = models
    m2.train()
    rng = np.random.default_rng(1)
    b, g, r = 2, cfg.module2.global_size, cfg.module2.roi_size
    gl = jnp.asarray(rng.random((b, g, g, 1)), jnp.float32)
    ro = jnp.asarray(rng.random((b, r, r, 1)), jnp.float32)
    lg, ll = (g // 8) ** 2, (r // 8) ** 2
    batch = {
        "label0": jnp.array([0, 1]), "label1": jnp.array([0, 2]), "is_genuine": jnp.array([1, 0]),
        "global_gt_i": jnp.tile(jnp.arange(lg)[None], (b, 1)),
        "global_gt_j": jnp.tile(jnp.arange(lg)[None], (b, 1)),
        "global_gt_valid": jnp.array([[True] * lg, [False] * lg]),
        "local_gt_i": jnp.tile(jnp.arange(ll)[None], (b, 1)),
        "local_gt_j": jnp.tile(jnp.arange(ll)[None], (b, 1)),
        "local_gt_valid": jnp.array([[True] * ll, [False] * ll]),
    }

    def loss_fn(model):
        out = model(gl, gl[:, ::-1], ro, ro[:, :, ::-1])
        total, _ = losses.module2_loss(out, batch)
        return total

    loss, grads = nnx.jit(nnx.value_and_grad(loss_fn))(m2)
    assert np.isfinite(float(loss))
    for branch in ("global_branch", "local_branch"):
        gb = getattr(grads, branch)
        assert float(jnp.abs(gb.arcface_weight[...]).sum()) > 0
        assert float(jnp.abs(gb.embed.kernel[...]).sum()) > 0
        assert float(jnp.abs(gb.loftr_coarse.layers_0.q_proj.kernel[...]).sum()) > 0


def test_evidence_k_weights_the_decision_score_by_module1_inliers(eval_models):
    cfg, m1, m2 = eval_models
    k = 10.0
    ecfg = cfg.replace(module2=dataclasses.replace(cfg.module2, evidence_k=k))
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.random((2, 64, 64, 1)), jnp.float32)
    m = jnp.ones((2, 64, 64), bool)
    key = jax.random.key(0)
    plain = verify_pairs(cfg, m1, m2, key, x, x[::-1], m, m)
    ev = verify_pairs(ecfg, m1, m2, key, x, x[::-1], m, m)
    np.testing.assert_array_equal(np.asarray(plain["score"]), np.asarray(plain["cosine"]))
    np.testing.assert_array_equal(np.asarray(ev["cosine"]), np.asarray(plain["cosine"]))
    n = np.asarray(ev["alignment"].num_inliers, np.float64)
    want = (1 + np.asarray(plain["cosine"], np.float64)) / 2 * n / (n + k)
    np.testing.assert_allclose(np.asarray(ev["score"]), want, rtol=1e-6, atol=1e-7)


def test_global_shape_keeps_the_training_scale():
    from ifvit_core.ifvit import global_shape

    assert global_shape((256, 256), 256, 128) == (128, 128)  # a training window: global_size
    assert global_shape((320, 256), 256, 128) == (160, 128)  # a tall print: same scale, taller
    assert global_shape((64, 64), 64, 48) == (48, 48)
    assert global_shape((100, 64), 64, 64) == (96, 64)  # sides rounded to multiples of 8
    assert global_shape((8, 8), 256, 128) == (8, 8)  # never empty


def test_verify_pairs_on_a_whole_tall_print_keeps_its_shape_and_scale(eval_models):
    """A window larger than the training size (a tall print at inference) against a training-size
    one: Module 2's global input is image 0's window at the training scale (not squashed)."""
    cfg, m1, m2 = eval_models
    half = cfg.replace(module2=dataclasses.replace(cfg.module2, global_size=32))  # scale 1/2
    rng = np.random.default_rng(4)
    x0 = jnp.asarray(rng.random((2, 96, 64, 1)), jnp.float32)
    x1 = jnp.asarray(rng.random((2, 64, 64, 1)), jnp.float32)
    k0, k1 = jnp.ones((2, 96, 64), bool), jnp.ones((2, 64, 64), bool)
    for c, want in ((cfg, (96, 64)), (half, (48, 32))):
        # traced and called right here, within this iteration
        out = nnx.jit(lambda a, b, key, i0, i1: verify_pairs(c, a, b, key, i0, i1, k0, k1))(  # noqa: B023
            m1, m2, jax.random.key(0), x0, x1)
        inp = out["inputs"]
        assert inp.global0.shape == (2, *want, 1) and inp.global1.shape == (2, *want, 1)
        assert inp.global_mask.shape == (2, (want[0] // 8) * (want[1] // 8))
        frame = np.asarray(inp.global_frame[0])
        np.testing.assert_allclose(frame[0, 0], frame[1, 1], rtol=1e-6)  # one scale, both axes
        np.testing.assert_allclose(frame[0, 0], want[1] / 64, rtol=1e-6)
        assert out["alignment"].overlap.shape == (2, 96, 64)  # image 1 warped into image 0's frame
        assert np.all(np.isfinite(np.asarray(out["score"])))


def test_module1_matches_off_the_foreground_are_dropped(eval_models):
    """A match with an end on background is wrong: it never reaches RANSAC or the outputs."""
    cfg, m1, m2 = eval_models
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.random((2, 64, 64, 1)), jnp.float32)
    full = jnp.ones((2, 64, 64), bool)
    half = full.at[:, :, :32].set(False)  # image 0's print is its right half
    run = nnx.jit(lambda a, b, k0: verify_pairs(cfg, a, b, jax.random.key(0), x, x, k0, full))
    everywhere, restricted = run(m1, m2, full)["module1"], run(m1, m2, half)["module1"]
    v_all, v_half = np.asarray(everywhere["valid"]), np.asarray(restricted["valid"])
    x0 = np.asarray(everywhere["mkpts0_c"])[..., 0]
    assert (v_all & (x0 < 31.5)).any() and (v_all & (x0 > 31.5)).any()  # matches on both halves
    np.testing.assert_array_equal(v_half, v_all & (x0 > 31.5))  # only those on the print are kept


def test_pseudo_ground_truth_keeps_confident_inliers_and_their_points():
    from ifvit_core.ifvit.targets import pseudo_ground_truth

    valid = np.array([[True, True, True, False]])
    dense = {"i_ids": np.arange(4)[None], "valid": valid,
             "mconf": np.array([[0.9, 0.1, 0.6, 0.9]], np.float32),
             "mkpts1_c": np.array([[[0, 0], [8, 0], [16, 0], [24, 0]]], np.float32)}
    inliers = np.array([[True, True, False, True]])
    gi, gv, gp = pseudo_ground_truth(dense, inliers, 0.5)
    # row 0: confident inlier; row 1 below the floor; row 2 an outlier; row 3 no valid match
    np.testing.assert_array_equal(np.asarray(gv), [[True, False, False, False]])
    np.testing.assert_array_equal(np.asarray(gi), [[0, 1, 2, 3]])
    fine = {**dense, "mkpts1_f": dense["mkpts1_c"] + 2.5}
    np.testing.assert_array_equal(np.asarray(pseudo_ground_truth(fine, inliers, 0.5)[2]),
                                  fine["mkpts1_f"])  # the refined point when Module 1 has one
    np.testing.assert_array_equal(np.asarray(gp), dense["mkpts1_c"])
