"""FVC-style dataset folders: `{finger}_{impression}.png` + `manifest.json`, written atomically.

The folder follows `ifvit_data.outputs` (kind `"synth"`): checked and claimed before any print is
generated, refused when it holds files but no synth marker, when it holds another synth dataset
(other seed, counts or config), or when it lies under a file or cannot be written, unless `force`.
Images are written under temp names and renamed; `manifest.json` is written last. Worker processes
ignore Ctrl-C (the parent terminates them), exit when the parent dies, and remove their temp files
when terminated.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ifvit_data.outputs import (
    OutputError,
    atomic_path,
    atomic_write_text,
    claimed_output_dir,
    raise_if_interrupted,
    read_marker,
    remove_stale_temps,
)
from ifvit_data.synth.config import SynthConfig
from ifvit_data.synth.impression import render_impression
from ifvit_data.synth.master import generate_master

#: Version of the manifest layout.
MANIFEST_FORMAT = 1
#: Version of the generator algorithm; bump when outputs for the same seed change.
GENERATOR_VERSION = "2.0"
MANIFEST_NAME = "manifest.json"
OUTPUT_KIND = "synth"
"""Kind recorded in the output marker of a synthetic dataset folder (`ifvit_data.outputs`)."""
GENERATOR = "ifvit_data.synth"


def pixels_sha256(image: np.ndarray) -> str:
    """SHA-256 (hex) of a uint8 [H, W] image's shape and row-major pixels (stored per image)."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    h = hashlib.sha256(f"{img.shape[0]}x{img.shape[1]}\n".encode())
    h.update(img.tobytes())
    return h.hexdigest()


def image_name(finger: int, impression: int) -> str:
    """FVC file name of an impression (both numbered from 1)."""
    return f"{finger}_{impression}.png"


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
        with atomic_path(Path(out_dir) / name) as tmp:
            img.save(tmp, format="PNG", dpi=dpi)
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
        "generator": GENERATOR,
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
    if {k: old.get(k) for k in header if k != "config"} != {
        k: v for k, v in header.items() if k != "config"
    }:
        return False
    try:  # compared as configs: a manifest written before `realism` was recorded still matches
        if SynthConfig.from_dict(old["config"]) != SynthConfig.from_dict(header["config"]):
            return False
    except (AttributeError, KeyError, TypeError, ValueError):
        return False
    return all((out / e["file"]).is_file() for e in old.get("images", []))


def _old_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest of a synthetic dataset already in `out`, or None."""
    try:
        old = json.loads((out / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) and old.get("generator") == GENERATOR else None


def check_output(
    out_dir: str | os.PathLike[str],
    fingers: int,
    impressions: int,
    seed: int,
    cfg: SynthConfig,
    *,
    force: bool = False,
) -> bool:
    """True if the synth output `out_dir` already holds exactly this dataset (nothing is written).

    Raises:
        OutputError: `out_dir` holds a different synthetic dataset (the message names its seed and
            counts), unless `force`.
    """
    out = Path(out_dir)
    if not out.is_dir():
        return False
    header = _header(fingers, impressions, seed, cfg)
    if _complete(out, header):
        return True
    old = _old_manifest(out)
    if old is not None and not force:
        what = f"seed {old.get('seed')}, {old.get('fingers')}x{old.get('impressions')}"
        try:
            what += f", realism {SynthConfig.from_dict(old['config']).realism}"
        except (AttributeError, KeyError, TypeError, ValueError):
            pass
        raise OutputError(
            f"{out}: holds a different synthetic dataset ({what}); choose another folder, the same "
            "flags, or pass --force to replace it"
        )
    return False


def generate_dataset(
    out_dir: str | os.PathLike[str],
    fingers: int,
    impressions: int,
    seed: int,
    cfg: SynthConfig | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    force: bool = False,
) -> dict[str, Any]:
    """Write an FVC-style synthetic dataset; outputs do not depend on `workers`.

    Files: `{finger}_{impression}.png` (fingers 1..fingers, impressions 1..impressions; 8-bit grey,
    dpi metadata) and `manifest.json` (written last), plus the output marker. The folder is claimed
    (`ifvit_data.outputs.claim_output_dir`, kind `"synth"`) before any work; every file is written
    to a temporary name and renamed. If `out_dir` already holds the complete dataset for the same
    arguments, nothing is rewritten. Otherwise the old manifest is removed before any image is
    written (a killed run leaves no manifest, never one that lists mixed files), and once the new
    manifest is written the folder holds exactly its images: images of the replaced dataset, and,
    when the folder already was a synth output, every `F_I.png` of earlier (e.g. killed) runs that
    the new dataset lacks, are deleted. In a folder taken over with `force` that was not a synth
    output, no file of the user's is deleted.

    Args:
        out_dir: Output folder (created if missing).
        fingers: Number of fingers (>= 1).
        impressions: Impressions per finger (>= 1).
        seed: Dataset seed (>= 0).
        cfg: Generator configuration.
        workers: Worker processes (default `os.cpu_count()`); 1 runs in this process. Workers are
            started with "spawn", so a calling script needs the `if __name__ == "__main__":` guard.
        progress: Called as `progress(images_done, images_total)` as fingers complete.
        force: Write into a non-empty folder that is not a synth output, or over another dataset.

    Returns:
        The manifest dict.

    Raises:
        ValueError: Bad counts or seed.
        OutputError: The folder must not be written (one line saying why and what to do).
    """
    cfg = cfg or SynthConfig()
    if fingers < 1 or impressions < 1:
        raise ValueError(f"fingers and impressions must be >= 1, got {fingers} and {impressions}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    total = fingers * impressions
    ours = _is_synth_output(out_dir)  # before the claim: --force may re-mark a user's folder
    with claimed_output_dir(out_dir, OUTPUT_KIND, force=force) as out:
        if check_output(out, fingers, impressions, seed, cfg, force=force):
            if progress:
                progress(total, total)
            return json.loads((out / MANIFEST_NAME).read_text())
        old = _old_manifest(out)
        # While this run writes, the folder must not claim to hold the old dataset: a run killed
        # now leaves no manifest, so the next run regenerates instead of trusting mixed files.
        (out / MANIFEST_NAME).unlink(missing_ok=True)
        results = _run_jobs(out, fingers, impressions, seed, cfg, workers, progress)
        manifest = _header(fingers, impressions, seed, cfg)
        manifest["images"] = [e for f in sorted(results) for e in results[f]]
        text = json.dumps(manifest, indent=1, sort_keys=True, allow_nan=False) + "\n"
        atomic_write_text(out / MANIFEST_NAME, text)
    keep = {e["file"] for e in manifest["images"]}
    stale = set()
    if old is not None:  # images of the replaced dataset
        stale |= {str(e.get("file", "")) for e in old.get("images", []) if isinstance(e, dict)}
    if ours:  # images of earlier runs of this command here, e.g. one killed before its manifest
        stale |= {p.name for p in out.iterdir() if _IMAGE_NAME.fullmatch(p.name)}
    for name in sorted(stale - keep):
        if name and name == Path(name).name and name.endswith(".png"):
            (out / name).unlink(missing_ok=True)
    return manifest


_IMAGE_NAME = re.compile(r"[0-9]+_[0-9]+\.png")  # the names this command writes


def _is_synth_output(out_dir: str | os.PathLike[str]) -> bool:
    """Whether `out_dir` is already an output folder of `ifvit synth` (its marker says so)."""
    try:
        marker = read_marker(out_dir) if Path(out_dir).is_dir() else None
    except OutputError:
        return False
    return marker is not None and marker.get("kind") == OUTPUT_KIND


def _run_jobs(
    out: Path,
    fingers: int,
    impressions: int,
    seed: int,
    cfg: SynthConfig,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
) -> dict[int, list[dict[str, Any]]]:
    """Renders every finger (in worker processes when `workers` > 1); finger -> manifest entries."""
    jobs = [(str(out), f, impressions, seed, cfg) for f in range(1, fingers + 1)]
    workers = max(1, min(workers or os.cpu_count() or 1, fingers))
    total = fingers * impressions
    results: dict[int, list[dict[str, Any]]] = {}
    done = 0
    if workers == 1:
        for job in jobs:
            results[job[1]] = _finger_job(job)
            done += impressions
            if progress:
                progress(done, total)
            raise_if_interrupted()
        return results
    from ifvit_data.workers import init_worker

    # "spawn": forking a parent whose OpenCV/FFT thread pools are live can deadlock the child
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(workers, initializer=init_worker, initargs=(os.getpid(),))
    try:
        for job, entries in zip(jobs, pool.imap(_finger_job, jobs, chunksize=1), strict=True):
            results[job[1]] = entries
            done += impressions
            if progress:
                progress(done, total)
            raise_if_interrupted()
        pool.close()
    except BaseException:
        pool.terminate()  # SIGTERM: the workers remove their temp files and exit
        raise
    finally:
        pool.join()
        remove_stale_temps(out, recursive=False)  # temp files of workers that could not clean up
    return results
