"""Per-image templates (`embed_images`): inputs, shapes, norms, independence from the batch."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ifvit_core import config, scores
from ifvit_core.ifvit import Matcher, embed_images, template_inputs


@pytest.fixture(scope="module")
def setup():
    cfg = config.tiny()
    m2 = Matcher(cfg, rngs=nnx.Rngs(1))
    rng = np.random.default_rng(0)
    for b in (m2.global_branch, m2.local_branch):  # non-trivial running statistics of the neck
        b.embed_norm.mean[...] = jnp.asarray(rng.normal(0, 0.1, b.embed_norm.mean.shape),
                                             jnp.float32)
        b.embed_norm.var[...] = jnp.asarray(rng.uniform(0.5, 2.0, b.embed_norm.var.shape),
                                            jnp.float32)
    m2.eval()
    s = cfg.image_size
    yy, xx = np.mgrid[0:s, 0:s]
    images, masks = [], []
    for i in range(4):
        cx, cy, r = 24 + 4 * i, 36 - 3 * i, 16 + 2 * i
        masks.append(np.hypot(xx - cx, yy - cy) < r)
        images.append(rng.uniform(0, 1, (s, s)).astype(np.float32))
    images = jnp.asarray(np.stack(images)[..., None])
    masks = jnp.asarray(np.stack(masks))
    fn = nnx.jit(lambda m, x, k: embed_images(cfg, m, x, k))
    return cfg, m2, images, masks, fn


def test_inputs_use_the_print_alone(setup):
    cfg, _, images, masks, _ = setup
    inp = template_inputs(cfg, images, masks)
    m = np.asarray(masks)
    g = np.asarray(inp.global_image)[..., 0]
    assert g.shape == (4, cfg.module2.global_size, cfg.module2.global_size)  # tiny: no resize
    np.testing.assert_array_equal(g[~m], 1.0)  # white outside the foreground
    np.testing.assert_array_equal(g[m], np.asarray(images)[..., 0][m])
    r = cfg.module2.roi_size
    for b in range(4):  # ROI centred on the foreground centroid, clamped inside the window
        ys, xs = np.nonzero(m[b])
        want = np.clip(np.round([xs.mean() - (r - 1) / 2, ys.mean() - (r - 1) / 2]), 0,
                       cfg.image_size - r)
        np.testing.assert_array_equal(np.asarray(inp.roi_origin[b]), want)
        x0, y0 = want.astype(int)
        np.testing.assert_array_equal(np.asarray(inp.roi[b, ..., 0]),
                                      np.asarray(images)[b, y0:y0 + r, x0:x0 + r, 0])
    # token mask: the cells more than half inside the disc
    cells = m.reshape(4, 8, 8, 8, 8).mean(axis=(2, 4)).reshape(4, -1) > 0.5
    np.testing.assert_array_equal(np.asarray(inp.global_mask), cells)


def test_shapes_norms_and_fused_score(setup):
    cfg, m2, images, masks, fn = setup
    out = fn(m2, images, masks)
    e = cfg.module2.embed_dim
    assert out["z_global"].shape == (4, e) and out["z_local"].shape == (4, e)
    assert out["template"].shape == (4, 2 * e)
    for k in ("z_global", "z_local", "template"):
        np.testing.assert_allclose(np.linalg.norm(np.asarray(out[k]), axis=1), 1.0, atol=1e-5)
    # template . template = the fused score of the two branches' cosines
    t = np.asarray(out["template"])
    cg = scores.cosine_similarity(out["z_global"][:, None], out["z_global"][None, :])
    cl = scores.cosine_similarity(out["z_local"][:, None], out["z_local"][None, :])
    np.testing.assert_allclose(
        t @ t.T, np.asarray(scores.fuse_scores(cg, cl, cfg.module2.fusion_alpha)), atol=1e-5)
    assert np.abs(t @ t.T - np.eye(4)).max() > 1e-3  # distinct prints, distinct templates


def test_template_does_not_depend_on_the_batch(setup):
    _, m2, images, masks, fn = setup
    full = np.asarray(fn(m2, images, masks)["template"])
    perm = np.array([2, 0, 3, 1])
    permuted = np.asarray(fn(m2, images[perm], masks[perm])["template"])
    np.testing.assert_allclose(permuted, full[perm], atol=1e-5)
    for i in range(4):  # alone in a batch of one, or among copies of another print
        alone = np.asarray(fn(m2, images[i:i + 1], masks[i:i + 1])["template"])[0]
        np.testing.assert_allclose(alone, full[i], atol=1e-5)
    other = jnp.concatenate([images[:1], jnp.repeat(images[3:4], 3, 0)])
    other_m = jnp.concatenate([masks[:1], jnp.repeat(masks[3:4], 3, 0)])
    np.testing.assert_allclose(np.asarray(fn(m2, other, other_m)["template"])[0], full[0],
                               atol=1e-5)


def test_training_mode_is_refused(setup):
    cfg, m2, images, masks, _ = setup
    m2.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            embed_images(cfg, m2, images, masks)
    finally:
        m2.eval()


def test_modes(setup):
    cfg, m2, images, masks, _ = setup
    run = {mode: np.asarray(embed_images(cfg, m2, images, masks, mode=mode)["template"])
           for mode in ("self", "mirror", "skip")}
    # tiny has layers (self, cross): before the first cross layer both streams of (f, f) are
    # equal, so 'mirror' (stream 0 of the pair transformer) is exactly 'self'
    assert cfg.loftr.coarse.layer_names == ("self", "cross")
    np.testing.assert_allclose(run["mirror"], run["self"], atol=1e-5)
    assert np.abs(run["skip"] - run["self"]).max() > 1e-3  # the cross layer does run in 'self'
    with pytest.raises(ValueError, match="unknown single-image mode"):
        embed_images(cfg, m2, images, masks, mode="bogus")


def test_a_window_larger_than_training_keeps_its_shape(setup):
    """A whole tall print at inference: the global branch sees the window at the training scale
    (tiny: 1, so unresized), and the template is still a unit vector."""
    cfg, m2, images, masks, _ = setup
    tall = jnp.concatenate([jnp.ones_like(images[:, :32]), images], axis=1)  # [4, 96, 64, 1]
    tall_m = jnp.concatenate([jnp.zeros_like(masks[:, :32]), masks], axis=1)
    inp = template_inputs(cfg, tall, tall_m)
    assert inp.global_image.shape == (4, 96, 64, 1)
    np.testing.assert_array_equal(np.asarray(inp.global_image),
                                  np.where(np.asarray(tall_m)[..., None], np.asarray(tall), 1.0))
    assert not np.asarray(inp.global_mask)[:, :4 * 8].any()  # the padding rows: no token
    out = nnx.jit(lambda m, x, k: embed_images(cfg, m, x, k))(m2, tall, tall_m)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(out["template"]), axis=1), 1.0, atol=1e-5)


def test_template_neck_and_template_alpha(setup):
    """A template neck starts as the identity (same templates as without one); once set, each
    branch's embedding is L2norm(T(neck output)); template_alpha = 1 keeps the global branch
    only."""
    import dataclasses

    cfg, m2, images, masks, fn = setup
    base = fn(m2, images, masks)
    cfg_t = dataclasses.replace(cfg, module2=dataclasses.replace(
        cfg.module2, template_neck=True, template_alpha=1.0))
    m2t = Matcher(cfg_t, rngs=nnx.Rngs(1))
    _, params, stats = nnx.split(m2, nnx.Param, nnx.BatchStat)
    nnx.update(m2t, params, stats)
    m2t.eval()
    fn_t = nnx.jit(lambda m, x, k: embed_images(cfg_t, m, x, k))
    same = fn_t(m2t, images, masks)
    for k in ("z_global", "z_local"):
        np.testing.assert_allclose(np.asarray(same[k]), np.asarray(base[k]), atol=1e-6)
    e = cfg.module2.embed_dim
    np.testing.assert_allclose(np.asarray(same["template"])[:, :e], np.asarray(base["z_global"]),
                               atol=1e-6)
    np.testing.assert_array_equal(np.asarray(same["template"])[:, e:], 0.0)
    rng = np.random.default_rng(3)
    k_ = rng.standard_normal((e, e)).astype(np.float32)
    b_ = rng.standard_normal(e).astype(np.float32)
    m2t.global_branch.template_neck.kernel[...] = jnp.asarray(k_)
    m2t.global_branch.template_neck.bias[...] = jnp.asarray(b_)
    got = np.asarray(fn_t(m2t, images, masks)["z_global"], np.float64)
    # the neck output, recomputed from the branch's own pieces (eval-mode BatchNorm by hand)
    br = m2t.global_branch
    inp = template_inputs(cfg_t, images, masks)
    tok = np.asarray(br.encode_single(inp.global_image, inp.global_mask), np.float64)
    w = np.asarray(inp.global_mask, np.float64)[..., None]
    pooled = (tok * w).sum(1) / w.sum(1)
    h = pooled @ np.asarray(br.embed.kernel[...]) + np.asarray(br.embed.bias[...])
    n = br.embed_norm
    h = ((h - np.asarray(n.mean[...])) / np.sqrt(np.asarray(n.var[...]) + n.epsilon)
         * np.asarray(n.scale[...]) + np.asarray(n.bias[...]))
    want = h @ k_ + b_
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert np.abs(got - np.asarray(base["z_global"])).max() > 1e-2


def test_template_alpha_is_checked():
    with pytest.raises(ValueError, match="template_alpha"):
        config.Module2Config(template_alpha=1.5)
