"""Shared fixtures of ifvit-train's tests: a tiny synthetic shard folder (made here, no downloads)
and the tiny Module 1 + Module 2 bundles trained on it."""

import numpy as np
import pytest

from ifvit_data.shards import write_shards


def _print(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """A ridge-like uint8 print: oriented cosine ridges on a white background disc."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    theta, f = rng.uniform(0, np.pi), rng.uniform(0.1, 0.13)
    phase = 2 * np.pi * f * (xx * np.cos(theta) + yy * np.sin(theta)) + 0.002 * (xx - size / 2) ** 2
    ridges = 0.5 + 0.5 * np.cos(phase) + 0.1 * rng.standard_normal((size, size))
    disc = np.hypot(xx - size / 2, yy - size / 2) < size * 0.45
    img = np.where(disc, ridges, 1.0)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> str:
    """8 fingers x 2 impressions of synthetic ridge prints as ArrayRecord shards."""
    rng = np.random.default_rng(0)
    records = []
    for f in range(8):
        base = _print(rng)
        for k in range(2):
            img = np.roll(base, shift=(2 * k, -k), axis=(0, 1))
            records.append({"image": img, "subject": f"s{f}", "finger": f, "impression": k + 1,
                            "dpi": 500.0, "source": f"{f}_{k + 1}.png"})
    out = tmp_path_factory.mktemp("shards") / "shards"
    write_shards(records, out, fingerprint="tiny-test-shards")
    return str(out)


@pytest.fixture(scope="session")
def make_print():
    """The `_print(rng, size)` factory (test modules cannot import conftest under importlib
    mode)."""
    return _print


@pytest.fixture(scope="session")
def tiny_bundle(tiny_shards, tmp_path_factory):
    """`tiny` Module 1 (`dense/`) then Module 2 (`match/`) bundles, 2 steps each on tiny_shards.

    Shared by the tests that need a trained bundle: read it, never write into it."""
    from ifvit_core import config
    from ifvit_train.training.config import TrainConfig
    from ifvit_train.training.run import train_dense, train_match

    root = tmp_path_factory.mktemp("bundle")
    tc = TrainConfig(steps=2, batch_size=8, warmup_steps=1, validate_every=0, val_pairs=8,
                     val_prints=8, holdout=0.4, checkpoint_every=2,
                     input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    def quiet(s: str) -> None:
        pass

    train_dense(tiny_shards, root / "dense", config.tiny(), tc, log=quiet, progress=False)
    train_match(tiny_shards, root / "match", root / "dense", tc, log=quiet, progress=False)
    return root


# Cross-order comparisons. Two runs of the same training that differ only in the order of their
# floating-point reductions (2 processes vs 1, 8 devices vs 1) do not give identical parameters, and
# how far apart they end depends on the CPU (XLA's kernels split sums differently on AVX2 and
# AVX-512), on the step count and on AdamW, which divides each gradient element by its own running
# magnitude and so turns the rounding of a near-zero gradient element into an O(lr) update change.
# A fixed tolerance tuned on one CPU fails on another; instead every such test measures, in the
# same run and on the same machine, the *spread* that reduction order alone produces: a third run
# of the same computation with another reduction order (`alt`). The run under test must stay
# within SPREAD_FACTOR times that spread, per tensor, relative to the tensor's total update.
#
# Measured (AMD EPYC, tiny Module 1, 3 AdamW steps, batch 8): 2 processes vs 1 process sits at
# 0.4-1.9x the 1-device-vs-2-device spread per tensor (relative spread ~1e-5); a wrong shard or a
# missing all-reduce sits at 1e4-1e5x (relative error ~1, the update itself). SPREAD_FACTOR = 100
# leaves a 50x margin above rounding and a 100x margin below the smallest real bug seen.
# The spread has a floor, FLOOR_ULPS fp32 ulps per step relative to the update, so that a machine
# on which the alt run happens to be bit-identical still allows the rounding of the other order.
SPREAD_FACTOR = 100.0
FLOOR_ULPS = 64


def _check_same_training(got, ref, alt, init, steps):
    """Asserts that `got` trained like `ref` up to reduction-order rounding.

    Args:
      got, ref, alt, init: {name: array} of trained (got, ref, alt) and initial parameters; `alt`
        is `ref`'s computation with another reduction order, measured in the same run.
      steps: optimizer steps taken.
    Returns the largest ratio (error / allowed) over the tensors, for reporting.
    """
    assert got.keys() == ref.keys() == alt.keys() == init.keys() and len(got) > 10
    eps = float(np.finfo(np.float32).eps)
    floor = FLOOR_ULPS * eps * steps
    upd = {k: float(np.linalg.norm(ref[k] - init[k])) for k in ref}
    spread = {k: float(np.linalg.norm(alt[k] - ref[k])) for k in ref}
    total = max(np.sqrt(sum(u * u for u in upd.values())), np.finfo(np.float32).tiny)
    spread_all = np.sqrt(sum(s * s for s in spread.values())) / total  # relative, whole model
    worst, bad = 0.0, []
    for k in ref:
        err = float(np.linalg.norm(got[k] - ref[k]))
        # Allowed: the factor times this tensor's spread or the model-wide relative spread (or the
        # floor), times the size of this tensor's update. A tensor that did not move (frozen) in
        # `ref` must not move in `got` beyond the floor of its values.
        rel = max(spread[k] / upd[k] if upd[k] else 0.0, spread_all, floor)
        allowed = SPREAD_FACTOR * rel * max(upd[k], floor * float(np.linalg.norm(ref[k])))
        ratio = err / allowed if allowed else (np.inf if err else 0.0)
        worst = max(worst, ratio)
        if ratio > 1:
            bad.append(f"{k}: |got - ref| = {err:.3g}, update {upd[k]:.3g}, spread {spread[k]:.3g}")
    assert not bad, (f"{len(bad)} of {len(ref)} tensors differ by more than {SPREAD_FACTOR:g}x "
                     f"the reduction-order spread (model-wide relative spread {spread_all:.3g}):\n"
                     + "\n".join(bad[:10]))
    return worst


def _check_same_losses(got, ref, alt, steps):
    """Per-step losses: the same rule as the parameters, relative to the loss value."""
    eps = float(np.finfo(np.float32).eps)
    got, ref, alt = (np.asarray(x, np.float64) for x in (got, ref, alt))
    allowed = SPREAD_FACTOR * np.maximum(np.abs(alt - ref), FLOOR_ULPS * eps * steps * np.abs(ref))
    assert np.all(np.abs(got - ref) <= allowed), (
        f"losses {got} vs {ref}: differences {np.abs(got - ref)} exceed {allowed} "
        f"({SPREAD_FACTOR:g}x the reduction-order spread {np.abs(alt - ref)})")


@pytest.fixture(scope="session")
def same_training():
    """`check(got, ref, alt, init, steps)` and `check.losses(got, ref, alt, steps)` (see above)."""
    _check_same_training.losses = _check_same_losses
    return _check_same_training
