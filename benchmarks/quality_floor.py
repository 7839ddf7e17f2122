"""Calibration of the failure-to-acquire floor (`ifvit_data.quality.QUALITY_FLOOR`).

Run:  uv run python benchmarks/quality_floor.py [--data /work/shared/data]
      (`--smoke`: one set of 3 synthetic prints made here instead of the data: checks that it runs.)

Reads every print of every set under DATA/real/* and DATA/sfinge/* exactly as the commands do
(`ifvit_data.imagefile.read_image`, resampled to 500 ppi from the file's dpi, else 500) and prints
each set's lowest quality and how many prints fall below the floor (must be 0), then the quality of
non-prints made here (blank, uniform, noise, gradient, checkerboards, text, random blobs, and two
hard cases the floor does not refuse) and the time per print.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from ifvit_data.imagefile import read_image, resample_to
from ifvit_data.quality import QUALITY_FLOOR, assess_print


def non_prints(size: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """uint8 [size, size] images that are not fingerprints, by name."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)

    def u8(a: np.ndarray) -> np.ndarray:
        return np.clip(a, 0, 255).astype(np.uint8)

    out = {"white": np.full((size, size), 255, np.uint8), "black": np.zeros((size, size), np.uint8),
           "grey": np.full((size, size), 128, np.uint8),
           "noise": rng.integers(0, 256, (size, size)).astype(np.uint8),
           "gradient": u8(xx / size * 255), "sawtooth 40 px": u8((xx % 40) / 40 * 255)}
    for c in (2, 4, 8, 16, 32):
        out[f"checkerboard {c} px"] = u8(((xx // c + yy // c) % 2) * 255)
    text = np.full((size, size), 255, np.uint8)
    letters = list("abcdefghijklmnopqrstuvwxyzABCDEFG")
    for i in range(size // 28):
        cv2.putText(text, "".join(rng.choice(letters, 14)), (5, 25 + 27 * i),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    out["text"] = text
    blobs = cv2.GaussianBlur(rng.standard_normal((size, size)), (0, 0), 12) * 2000 + 128
    for _ in range(40):
        cv2.circle(blobs, tuple(int(v) for v in rng.integers(0, size, 2)),
                   int(rng.integers(5, 60)), float(rng.integers(0, 255)), -1)
    out["random blobs"] = u8(cv2.GaussianBlur(blobs, (0, 0), 1.5))
    for s in (1.0, 3.0):
        out[f"noise blurred sigma {s:g}"] = u8(
            cv2.GaussianBlur(rng.standard_normal((size, size)), (0, 0), s) * 300 * s + 128)
    lines = np.full((size, size), 255, np.uint8)
    for _ in range(80):  # not refused: a known limit (see ifvit_data.quality)
        p = [int(v) for v in rng.integers(0, size, 4)]
        cv2.line(lines, (p[0], p[1]), (p[2], p[3]), 0, int(rng.integers(1, 4)))
    out["random straight lines (not refused)"] = lines
    out["noise blurred sigma 2 (not refused)"] = u8(
        cv2.GaussianBlur(rng.standard_normal((size, size)), (0, 0), 2.0) * 600 + 128)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--smoke", action="store_true", help="3 synthetic prints instead of --data")
    args = ap.parse_args()
    if args.smoke:
        import tempfile

        from ifvit_data.synth import SynthConfig, generate_dataset

        tmp = Path(tempfile.mkdtemp())
        generate_dataset(tmp / "synthetic", 3, 1, 0, SynthConfig(size=(160, 160)), workers=1)
        sets = [tmp / "synthetic"]
    else:
        sets = sorted(p for p in (*args.data.glob("real/*"), *args.data.glob("sfinge/*"))
                      if p.is_dir())
    print(f"floor {QUALITY_FLOOR}")
    n, t = 0, 0.0
    for s in sets:
        files = sorted(f for f in s.rglob("*") if f.suffix.lower() in (".tif", ".jpeg", ".png"))
        q = []
        for f in files:
            gray, dpi = read_image(f)
            t0 = time.perf_counter()
            q.append(assess_print(resample_to(gray, float(dpi or 500.0))).quality)
            t += time.perf_counter() - t0
        n += len(q)
        i = int(np.argmin(q))
        print(f"{s.name:24s} {len(q):4d} prints  min {q[i]:.3f} ({files[i].relative_to(s)})  "
              f"median {np.median(q):.3f}  below floor {sum(v < QUALITY_FLOOR for v in q)}")
    print(f"{n} prints, {t / max(n, 1) * 1e3:.1f} ms per print (quality only)")
    for name, img in non_prints().items():
        r = assess_print(img)
        print(f"  {name:40s} quality {r.quality:.3f}  {'acquired' if r.acquired else 'refused'}")


if __name__ == "__main__":
    main()
