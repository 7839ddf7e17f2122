"""Failure to acquire (`ifvit_data.quality`): images that are not fingerprints are refused, ridge
prints (the synthetic generator's, oriented ridges on a disc) are acquired. Real prints: the
calibration in `benchmarks/quality_floor.py` and ifvit-train's tests with the real FVC prints."""

import cv2
import numpy as np
import pytest

from ifvit_data.quality import QUALITY_FLOOR, assess_print

S = 400


def _u8(a):
    return np.clip(a, 0, 255).astype(np.uint8)


def _non_prints():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)
    text = np.full((S, S), 255, np.uint8)
    for i in range(14):
        cv2.putText(text, "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 14)),
                    (5, 25 + 27 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    blobs = cv2.GaussianBlur(rng.standard_normal((S, S)), (0, 0), 12) * 2000 + 128
    for _ in range(40):
        cv2.circle(blobs, tuple(int(v) for v in rng.integers(0, S, 2)), int(rng.integers(5, 60)),
                   float(rng.integers(0, 255)), -1)
    return {
        "white": np.full((S, S), 255, np.uint8), "black": np.zeros((S, S), np.uint8),
        "grey": np.full((S, S), 128, np.uint8),
        "uniform noise": rng.integers(0, 256, (S, S)).astype(np.uint8),
        "gaussian noise": _u8(128 + 40 * rng.standard_normal((S, S))),
        "gradient": _u8(xx / S * 255), "radial gradient": _u8(np.hypot(xx - 200, yy - 200)),
        "checkerboard 4": _u8(((xx // 4 + yy // 4) % 2) * 255),
        "checkerboard 8": _u8(((xx // 8 + yy // 8) % 2) * 255),
        "checkerboard 32": _u8(((xx // 32 + yy // 32) % 2) * 255),
        "text": text, "random blobs": _u8(cv2.GaussianBlur(blobs, (0, 0), 1.5)),
    }


@pytest.mark.parametrize("name", list(_non_prints()))
def test_images_that_are_not_fingerprints_are_refused(name):
    q = assess_print(_non_prints()[name])
    assert not q.acquired and q.quality < QUALITY_FLOOR and q.reason
    assert 0.0 <= q.foreground <= 1.0


def test_blank_and_uniform_images_have_no_print_at_all():
    for v in (0, 128, 255):
        q = assess_print(np.full((S, S), v, np.uint8))
        assert (q.quality, q.foreground, q.acquired) == (0.0, 0.0, False)
        assert q.reason.startswith("no print found")
    assert assess_print(np.full((20, 20), 255, np.uint8)).reason.startswith("no print found")


def test_ridge_prints_are_acquired(tmp_path):
    from ifvit_data.synth import SynthConfig, generate_dataset

    generate_dataset(tmp_path, 3, 1, 7, SynthConfig(size=(160, 160)), workers=1)
    files = sorted(tmp_path.glob("*.png"))
    assert len(files) == 3
    for f in files:
        q = assess_print(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE))
        assert q.acquired and q.reason is None and q.quality > 2 * QUALITY_FLOOR, (f, q)
    # oriented ridges of a 0.45 mm period on a disc, with noise (the shape of ifvit-train's tests)
    yy, xx = np.mgrid[0:200, 0:200].astype(np.float64)
    ridges = 0.5 + 0.5 * np.cos(2 * np.pi * 0.11 * (0.6 * xx + 0.8 * yy) + 0.002 * (xx - 100) ** 2)
    disc = np.hypot(xx - 100, yy - 100) < 90
    img = _u8(np.where(disc, ridges + 0.1 * np.random.default_rng(0).standard_normal(disc.shape),
                       1.0) * 255)
    q = assess_print(img)
    assert q.acquired and q.quality > 0.5 and 0.5 < q.foreground < 0.9
    # the same ridges drowned in noise are not a print any more; the floor is a parameter
    noisy = _u8(img.astype(np.float64) + 400 * np.random.default_rng(1).standard_normal(img.shape))
    assert assess_print(noisy).quality < q.quality / 2
    assert not assess_print(img, floor=0.99).acquired


def test_to_dict_is_json_ready():
    d = assess_print(np.full((S, S), 255, np.uint8)).to_dict()
    assert d == {"acquired": False, "quality": 0.0, "foreground": 0.0, "reason": d["reason"]}
    assert isinstance(d["reason"], str)


def test_the_calibration_benchmark_runs(tmp_path):
    """`benchmarks/quality_floor.py --smoke`: synthetic prints acquired, every non-print refused."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "benchmarks" / "quality_floor.py"
    proc = subprocess.run([sys.executable, str(script), "--smoke"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == f"floor {QUALITY_FLOOR}"
    assert any(line.startswith("synthetic") and line.endswith("below floor 0") for line in lines)
    refused = [line for line in lines if line.endswith("refused")]
    assert len(refused) == 15 and not any("not refused" in line for line in refused)
