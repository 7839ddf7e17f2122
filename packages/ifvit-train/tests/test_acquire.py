"""Failure to acquire in the one preparation path: an image with no fingerprint is never scored,
with the shipped model (whose score is weighted by Module 1's inliers) and with a bundle that does
not weight (`evidence_k = 0`, as `ifvit train all` makes them), and real prints are acquired."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ifvit_data.quality import QUALITY_FLOOR
from ifvit_train.serving.bundle import load_bundle
from ifvit_train.serving.infer import FailureToAcquire, Verifier
from ifvit_train.serving.shipped import shipped_bundle

DATA = Path(__file__).parent / "data" / "fvc2002_db1_b"


def _non_prints(folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:400, 0:400]
    images = {"white": np.full((400, 400), 255), "black": np.zeros((400, 400)),
              "grey": np.full((400, 400), 128), "noise": rng.integers(0, 256, (400, 400)),
              "checker": ((xx // 8 + yy // 8) % 2) * 255}
    for name, a in images.items():
        Image.fromarray(a.astype(np.uint8)).save(folder / f"{name}.png")
    return [folder / f"{n}.png" for n in images]


@pytest.fixture(scope="module")
def shipped_k0(tmp_path_factory):
    """The shipped bundle with its score not weighted by inliers (evidence_k 0)."""
    dst = tmp_path_factory.mktemp("k0") / "ifvit-small-k0"
    shutil.copytree(shipped_bundle(), dst)
    meta = json.loads((dst / "bundle.json").read_text())
    meta["config"]["module2"]["evidence_k"] = 0.0
    (dst / "bundle.json").write_text(json.dumps(meta))
    return dst


def test_real_prints_are_acquired_and_non_prints_never_scored(tmp_path, shipped_k0, tiny_bundle):
    bad = _non_prints(tmp_path)
    for path in (shipped_bundle(), shipped_k0, tiny_bundle / "match"):
        ver = Verifier(load_bundle(path, require="match"))
        for f in sorted(DATA.glob("*.png")):
            p = ver.prepare(f)
            assert p.quality.acquired and p.quality.quality >= 2 * QUALITY_FLOOR, (f, p.quality)
        for f in bad:
            with pytest.raises(FailureToAcquire, match="not acquired as a fingerprint") as e:
                ver.prepare(f)
            assert str(f) in str(e.value) and not e.value.quality.acquired
            assert isinstance(e.value, ValueError)  # every caller's failure path catches it
            # asked to, the path still prepares it, and says it is not a print
            assert not ver.prepare(f, require_print=False).quality.acquired
    assert load_bundle(shipped_k0, require="match").cfg.module2.evidence_k == 0.0


def test_evaluate_counts_failures_to_acquire_and_writes_quality(tmp_path, shipped_k0):
    from ifvit_train.evaluation import evaluate as ev

    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    white = np.full((300, 300), 255, np.uint8)
    Image.fromarray(white).save(data / "106_1.png")
    Image.fromarray(white).save(data / "106_2.png")
    ver = Verifier(load_bundle(shipped_k0, require="match"))
    prints = ev.load_prints(ver, data, "fvc")
    names = [e.rel for e in prints.entries]
    assert sorted(names[i] for i in prints.not_acquired) == ["106_1.png", "106_2.png"]
    assert set(prints.failures) == set(prints.not_acquired)
    pairs, gen, scores, rep = ev.evaluate_prints(ver, prints, "fvc")
    blank = np.isin(pairs, prints.not_acquired).any(1)
    assert blank.any() and np.isnan(scores["score"][blank]).all()
    assert np.isfinite(scores["score"][~blank]).all()
    # the white genuine pair (106_1, 106_2) is a failure, not a 0.99 accept
    assert rep["prints_failed_to_acquire"] == 2 and rep["pairs"]["failed"] == int(blank.sum())
    assert rep["quality"]["floor"] == QUALITY_FLOOR and rep["quality"]["min"] == 0.0
    q = prints.quality_values()
    assert (q[prints.not_acquired] == 0.0).all() and (np.delete(q, prints.not_acquired) > 0.1).all()
    text = ev.scores_csv([names[i] for i in pairs[:, 0]], [names[j] for j in pairs[:, 1]], scores,
                         gen, ver.thresholds)
    head, *rows = text.splitlines()
    assert head.split(",")[-2:] == ["quality0", "quality1"]
    for (i, j), row in zip(pairs, rows, strict=True):
        cells = row.split(",")
        assert float(cells[-2]) == pytest.approx(q[i], abs=1e-4)
        assert float(cells[-1]) == pytest.approx(q[j], abs=1e-4)
