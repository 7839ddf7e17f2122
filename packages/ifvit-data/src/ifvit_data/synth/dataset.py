"""FVC-style dataset folders: `{finger}_{impression}.png` + `manifest.json`, written atomically."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ifvit_data.synth.config import SynthConfig
from ifvit_data.synth.impression import render_impression
from ifvit_data.synth.master import generate_master

#: Version of the manifest layout.
MANIFEST_FORMAT = 1
#: Version of the generator algorithm; bump when outputs for the same seed change.
GENERATOR_VERSION = "2.0"
MANIFEST_NAME = "manifest.json"


def pixels_sha256(image: np.ndarray) -> str:
    """SHA-256 (hex) of a uint8 [H, W] image's shape and row-major pixels (stored per image)."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    h = hashlib.sha256(f"{img.shape[0]}x{img.shape[1]}\n".encode())
    h.update(img.tobytes())
    return h.hexdigest()


def image_name(finger: int, impression: int) -> str:
    """FVC file name of an impression (both numbered from 1)."""
    return f"{finger}_{impression}.png"


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _finger_job(args: tuple[str, int, int, int, SynthConfig]) -> list[dict[str, Any]]:
    """Generate and write every impression of one finger; return their manifest entries."""
    out_dir, finger, impressions, seed, cfg = args
    cv2.setNumThreads(1)
    master = generate_master(seed, finger, cfg)
    entries = []
    for k in range(1, impressions + 1):
        imp = render_impression(master, seed, finger, k, cfg)
        name = image_name(finger, k)
        img = Image.fromarray(imp.image)
        dpi = (cfg.dpi, cfg.dpi)
        _write_atomic(Path(out_dir) / name, lambda p: img.save(p, format="PNG", dpi=dpi))
        entries.append(
            {
                "file": name,
                "finger": finger,
                "impression": k,
                "class": master.class_name,
                "singular_points": [
                    {"x": round(x, 3), "y": round(y, 3), "type": kind}
                    for x, y, kind in imp.singular_points
                ],
                "affine": np.round(imp.affine.astype(np.float64), 6).tolist(),
                "foreground_fraction": round(float(imp.mask.mean()), 6),
                "pixels_sha256": pixels_sha256(imp.image),
            }
        )
    return entries


def _header(fingers: int, impressions: int, seed: int, cfg: SynthConfig) -> dict[str, Any]:
    return {
        "format_version": MANIFEST_FORMAT,
        "generator": "ifvit_data.synth",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "fingers": int(fingers),
        "impressions": int(impressions),
        "dpi": cfg.dpi,
        "config": cfg.to_dict(),
    }


def _complete(out: Path, header: dict[str, Any]) -> bool:
    """Whether `out` already holds exactly this dataset (same header, every file present)."""
    try:
        old = json.loads((out / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return False
    if {k: old.get(k) for k in header} != header:
        return False
    return all((out / e["file"]).is_file() for e in old.get("images", []))


def check_output(
    out_dir: str | os.PathLike[str], fingers: int, impressions: int, seed: int, cfg: SynthConfig
) -> bool:
    """Whether `out_dir` can take this dataset; True if it already holds it complete.

    Raises:
        FileExistsError: `out_dir` is a file, or holds a manifest of a different dataset (the
            message names the old seed and counts).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    header = _header(fingers, impressions, seed, cfg)
    if _complete(out, header):
        return True
    path = out / MANIFEST_NAME
    if path.exists():
        try:
            old = json.loads(path.read_text())
            what = f"seed {old.get('seed')}, {old.get('fingers')}x{old.get('impressions')}"
        except (OSError, ValueError):
            what = "unreadable manifest"
        raise FileExistsError(f"{path} describes a different dataset ({what})")
    return False


def generate_dataset(
    out_dir: str | os.PathLike[str],
    fingers: int,
    impressions: int,
    seed: int,
    cfg: SynthConfig | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write an FVC-style synthetic dataset; outputs do not depend on `workers`.

    Files: `{finger}_{impression}.png` (fingers 1..fingers, impressions 1..impressions; 8-bit grey,
    dpi metadata) and `manifest.json` (written last). Every file is written to a temporary name in
    `out_dir` and renamed. If `out_dir` already holds the complete dataset for the same arguments,
    nothing is rewritten.

    Args:
        out_dir: Output folder (created if missing).
        fingers: Number of fingers (>= 1).
        impressions: Impressions per finger (>= 1).
        seed: Dataset seed (>= 0).
        cfg: Generator configuration.
        workers: Worker processes (default `os.cpu_count()`); 1 runs in this process. Workers are
            started with "spawn", so a calling script needs the `if __name__ == "__main__":` guard.
        progress: Called as `progress(images_done, images_total)` as fingers complete.

    Returns:
        The manifest dict.

    Raises:
        ValueError: Bad counts or seed.
        FileExistsError: `out_dir` holds a manifest of a different dataset, or is a file.
    """
    cfg = cfg or SynthConfig()
    if fingers < 1 or impressions < 1:
        raise ValueError(f"fingers and impressions must be >= 1, got {fingers} and {impressions}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    out = Path(out_dir)
    header = _header(fingers, impressions, seed, cfg)
    total = fingers * impressions
    if check_output(out, fingers, impressions, seed, cfg):
        if progress:
            progress(total, total)
        return json.loads((out / MANIFEST_NAME).read_text())
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(out), f, impressions, seed, cfg) for f in range(1, fingers + 1)]
    workers = max(1, min(workers or os.cpu_count() or 1, fingers))
    results: dict[int, list[dict[str, Any]]] = {}
    done = 0
    if workers == 1:
        for job in jobs:
            results[job[1]] = _finger_job(job)
            done += impressions
            if progress:
                progress(done, total)
    else:
        # "spawn": forking a parent whose OpenCV/FFT thread pools are live can deadlock the child
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for job, entries in zip(jobs, pool.map(_finger_job, jobs, chunksize=1), strict=True):
                results[job[1]] = entries
                done += impressions
                if progress:
                    progress(done, total)
    manifest = dict(header)
    manifest["images"] = [e for f in sorted(results) for e in results[f]]
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    _write_atomic(out / MANIFEST_NAME, lambda p: p.write_text(text))
    return manifest
