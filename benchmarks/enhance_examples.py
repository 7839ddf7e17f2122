"""Ridge enhancement (`ifvit_core.enhance`) on real prints: a picture and the cost.

Run:  uv run python benchmarks/enhance_examples.py [--out docs/images/enhance_examples.png]

For a few prints of FVC2002 DB2-B and FVC2004 DB3-B (never DB1-B, the evaluation set), prepared
exactly as the commands prepare them (500 ppi, `crop_print` window at the foreground centroid,
`foreground_mask`), it writes a PNG grid: the model-input window, the orientation field drawn over
it (short lines, every 8 px, foreground only), and the enhanced window. It prints the measured
ridge period of each print (peak of the radially averaged power spectrum of the foreground; the
enhancement uses one fixed period, `EnhanceConfig.for_downscale`) and the time of one jitted
`enhance` call on CPU per batch of 128x128 and 256x256 windows (median of repeats, compilation
excluded), with the ratio of the 256 to the 128 time.

`--smoke` (no real data needed): 2 synthetic fingers x 2 impressions written to a temp folder (or
the folders of `--data`), 2 prints per set, batch 2, one timed call; the picture goes to `--out`
(default: a temp folder, never docs/): checks that every step still runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from ifvit_core.enhance import EnhanceConfig, enhance, orientation_field
from ifvit_data.preprocess import CropConfig, crop_print
from ifvit_data.readers import DatasetReader
from ifvit_data.synth import SynthConfig, generate_dataset

REAL = Path("/work/shared/data/real")
# never fvc2002_db1_b (evaluation only)
SETS = tuple(REAL / s for s in ("fvc2002_db2_b", "fvc2004_db3_b"))


def load_windows(sets: list[Path], size: int, downscale: float,
                 per_set: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """float32 [N, S, S] windows, bool [N, S, S] masks and names of `per_set` prints per set."""
    wins, masks, names = [], [], []
    for folder in sets:
        name = folder.name
        reader = DatasetReader(folder, "fvc")
        for entry in reader.entries[::max(1, len(reader.entries) // per_set)][:per_set]:
            rec = reader.load(entry)
            w, _, m = crop_print(rec["image"], CropConfig(size=(size, size), downscale=downscale))
            wins.append(w)
            masks.append(m)
            names.append(f"{name}/{entry.rel}")
    return np.stack(wins), np.stack(masks), names


def ridge_period(window: np.ndarray, mask: np.ndarray) -> float:
    """Ridge period (px) of one window: peak of the radially averaged power spectrum of the
    foreground (mean removed, Hann-windowed), between periods of 3 and 25 px."""
    x = np.where(mask, window - window[mask].mean(), 0.0)
    n = x.shape[0]
    x = x * np.outer(np.hanning(n), np.hanning(n))
    p = np.abs(np.fft.fftshift(np.fft.fft2(x))) ** 2
    yy, xx = np.indices(p.shape) - n // 2
    r = np.hypot(yy, xx).round().astype(int)
    radial = np.bincount(r.ravel(), p.ravel()) / np.maximum(np.bincount(r.ravel()), 1)
    lo, hi = int(np.ceil(n / 25)), int(np.floor(n / 3))
    k = lo + int(np.argmax(radial[lo:hi + 1]))
    return n / k


def draw_orientation(window: np.ndarray, mask: np.ndarray, theta: np.ndarray,
                     step: int = 8) -> np.ndarray:
    """RGB uint8 picture of the window with a red line per `step` px along the ridge orientation."""
    rgb = cv2.cvtColor((window * 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    rgb = (0.6 * rgb + 0.4 * 255).astype(np.uint8)  # lighter, so the lines stand out
    half = 0.4 * step
    for y in range(step // 2, window.shape[0], step):
        for x in range(step // 2, window.shape[1], step):
            if mask[y, x]:
                dx, dy = half * np.cos(theta[y, x]), half * np.sin(theta[y, x])
                cv2.line(rgb, (round(x - dx), round(y - dy)), (round(x + dx), round(y + dy)),
                         (220, 0, 0), 1, cv2.LINE_AA)
    return rgb


def grid_png(path: Path, wins: np.ndarray, masks: np.ndarray, theta: np.ndarray, out: np.ndarray,
             scale: int = 2) -> None:
    rows = []

    def gap(h: int) -> np.ndarray:
        return np.full((h, 4, 3), 255, np.uint8)

    def g(a: np.ndarray) -> np.ndarray:
        return cv2.cvtColor((np.clip(a, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)

    for w, m, t, e in zip(wins, masks, theta, out, strict=True):
        o = draw_orientation(w, m, t)
        row = np.concatenate([g(w), gap(w.shape[0]), o, gap(w.shape[0]), g(e)], axis=1)
        rows += [row, np.full((4, row.shape[1], 3), 255, np.uint8)]
    img = np.concatenate(rows[:-1], axis=0)
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def time_call(fn, args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="the picture (default: docs/images/enhance_examples.png)")
    ap.add_argument("--data", type=Path, nargs="+", default=None,
                    help="print folders, FVC naming (default: FVC2002 DB2-B and FVC2004 DB3-B)")
    ap.add_argument("--downscale", type=float, default=1.6, help="as `ifvit train --downscale`")
    ap.add_argument("--size", type=int, default=192,
                    help="window side of the picture (default 192: larger than the model's 128, so "
                         "the print's border and the background show)")
    ap.add_argument("--per-set", type=int, default=3, help="prints per dataset in the picture")
    ap.add_argument("--batch", type=int, default=8, help="windows per timed call")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true",
                    help="synthetic prints, 2 per set, batch 2, one call: checks that it runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="enhance_examples_") as tmp:
        if args.smoke:
            args.per_set, args.batch, args.repeats, per_set_500 = 2, 2, 1, 2
            if args.out is None:
                args.out = Path(tmp) / "enhance_examples.png"
            if args.data is None:
                generate_dataset(Path(tmp) / "synth", 2, 2, 0, SynthConfig(), workers=1)
                args.data = [Path(tmp) / "synth"]
        else:
            per_set_500 = 16
        run(args, args.data or list(SETS), args.out or Path("docs/images/enhance_examples.png"),
            per_set_500)


def run(args: argparse.Namespace, sets: list[Path], out_png: Path, per_set_500: int) -> None:
    """The picture, the ridge periods and the timings of `sets` (print folders)."""
    cfg = EnhanceConfig.for_downscale(args.downscale)
    print(f"EnhanceConfig: {cfg}")

    wins, masks, names = load_windows(sets, args.size, args.downscale, args.per_set)
    x, m = jnp.asarray(wins[..., None]), jnp.asarray(masks)
    theta, _ = jax.jit(orientation_field, static_argnums=2)(x, m, cfg)
    out = jax.jit(enhance, static_argnums=2)(x, m, cfg)
    grid_png(out_png, wins, masks, np.asarray(theta), np.asarray(out)[..., 0])
    print(f"wrote {out_png}: rows = {', '.join(names)}; columns = window, orientation, enhanced")

    # ridge period at 500 ppi (downscale 1) of more prints, to justify the fixed period
    w500, m500, _ = load_windows(sets, 256, 1.0, per_set_500)
    periods = np.array([ridge_period(w, k) for w, k in zip(w500, m500, strict=True)])
    print(f"ridge period at 500 ppi over {len(periods)} prints: "
          f"median {np.median(periods):.2f} px, "
          f"p10 {np.percentile(periods, 10):.2f}, p90 {np.percentile(periods, 90):.2f} "
          f"(fixed: {cfg.ridge_period * args.downscale:.2f} px at 500 ppi, "
          f"{cfg.ridge_period:.2f} px in the model input)")

    fn = jax.jit(enhance, static_argnums=2)
    times = {}
    for size in (128, 256):
        wb, mb, _ = load_windows(sets, size, args.downscale, -(-args.batch // len(sets)))
        xb, mbb = jnp.asarray(wb[: args.batch, ..., None]), jnp.asarray(mb[: args.batch])
        times[size] = time_call(fn, (xb, mbb, cfg), args.repeats)
        print(f"enhance {len(xb)} x {size}x{size} on {jax.devices()[0].platform}: "
              f"{times[size] * 1e3:.1f} ms per batch, "
              f"{times[size] / len(xb) * 1e3:.2f} ms per window")
    print(f"ratio 256/128: {times[256] / times[128]:.2f} (4.00 = linear in the pixel count)")


if __name__ == "__main__":
    main()
