"""The fine stage on a fixed top-K of coarse rows: same per-row results as refining every row."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ifvit_core import config
from ifvit_core.loftr import LoFTR
from ifvit_core.loftr.fine import gather_windows, num_fine_rows, unfold_windows


def test_gather_windows_equals_unfold_then_index():
    rng = np.random.default_rng(0)
    f = jnp.asarray(rng.normal(size=(2, 12, 16, 3)), jnp.float32)  # fine map of a 24x32 image
    cells = jnp.asarray([[0, 5, 11, 7], [3, 3, 10, 1]], jnp.int32)  # coarse grid 3x4
    full = np.asarray(unfold_windows(f, (3, 4), 5))  # [B, 12, 25, 3]
    got = np.asarray(gather_windows(f, cells, 4, 5))
    want = np.stack([full[b, np.asarray(cells[b])] for b in range(2)])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("border", "cap", "want"),
    [(0, None, 64), (2, None, 16), (2, 5, 5), (0, 100, 64), (4, None, 1)],
)
def test_num_fine_rows(border, cap, want):
    assert num_fine_rows(64, (8, 8), border, cap) == want


def _model(threshold: float, border: int, max_matches):
    cfg = config.tiny().loftr
    cfg = dataclasses.replace(
        cfg,
        matching=dataclasses.replace(cfg.matching, threshold=threshold, border_rm=border),
        fine=dataclasses.replace(cfg.fine, max_matches=max_matches),
    )
    return LoFTR(cfg, rngs=nnx.Rngs(0))


def _run(model, state, x0, x1):
    graphdef, _ = nnx.split(model)
    m = nnx.merge(graphdef, state)
    m.eval()
    out = nnx.jit(lambda mm, a, b: {k: v for k, v in mm(a, b, fine=True).items()
                                    if k not in ("hw0_c", "hw1_c")})(m, x0, x1)
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(1)
    x0 = rng.random((2, 64, 64, 1)).astype(np.float32)
    x1 = np.clip(x0 + 0.05 * rng.standard_normal(x0.shape), 0, 1).astype(np.float32)
    return jnp.asarray(x0), jnp.asarray(x1)


def test_capped_rows_equal_the_all_rows_result(pair):
    x0, x1 = pair
    full_model = _model(0.0, 0, None)  # every row refined (K = L)
    state = nnx.state(full_model)
    full = _run(full_model, state, x0, x1)
    cap = 5
    capped = _run(_model(0.0, 0, cap), state, x0, x1)
    # Same coarse stage.
    for k in ("conf_matrix", "valid", "j_ids", "mconf", "mkpts1_c"):
        np.testing.assert_array_equal(capped[k], full[k])
    assert full["fine_valid"].tolist() == full["valid"].tolist()
    assert full["valid"].sum(axis=1).min() > cap  # the cap binds
    fv = capped["fine_valid"]
    assert fv.sum(axis=1).tolist() == [cap, cap]
    for b in range(2):
        # The refined rows are the cap most confident valid rows.
        score = np.where(full["valid"][b], full["mconf"][b], -1.0)
        assert set(np.flatnonzero(fv[b])) == set(np.argsort(-score, kind="stable")[:cap])
    np.testing.assert_allclose(capped["expec_f"][fv], full["expec_f"][fv], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(capped["mkpts1_f"][fv], full["mkpts1_f"][fv], rtol=1e-5, atol=1e-4)
    # Rows not refined keep the coarse keypoint and a zero expectation.
    rest = ~fv
    np.testing.assert_array_equal(capped["mkpts1_f"][rest], capped["mkpts1_c"][rest])
    np.testing.assert_array_equal(capped["expec_f"][rest], 0.0)
    assert np.abs(full["expec_f"][rest]).max() > 0  # ... which the full run did refine


def test_default_refines_every_match_after_border_removal(pair):
    x0, x1 = pair
    full_model = _model(0.0, 0, None)
    state = nnx.state(full_model)
    full = _run(full_model, state, x0, x1)
    bordered = _run(_model(0.0, 2, None), state, x0, x1)  # K = 16 interior cells of 64
    v = bordered["valid"]
    assert v.any()
    np.testing.assert_array_equal(bordered["fine_valid"], v)
    np.testing.assert_allclose(bordered["expec_f"][v], full["expec_f"][v], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bordered["mkpts1_f"][v], full["mkpts1_f"][v], rtol=1e-5, atol=1e-4)
