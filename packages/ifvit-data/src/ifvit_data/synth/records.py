"""Exact correspondences between shard records that came from an `ifvit synth` folder.

    synth_dir = find_synth_dir("data/shards")        # follows the ingest manifest's source_dir
    corr = synth_correspondence(synth_dir) if synth_dir else None
    maps = corr(record_a, record_b)                   # (forward a->b, backward b->a) or None

A record (`ifvit_data.schema`) carries `source` (the file name, e.g. "3_2.png") and `image`. The
adapter looks the file up in the synth manifest, checks that the record's pixels are that file's
pixels (a SHA-256 the manifest stores), and recomputes the impression's geometry from (seed, finger,
impression, config): only the finger's silhouette and the impression's contact, distortion and
placement, no ridge growth, so a pair costs a few milliseconds. Synth images are 500 dpi, so
ingest stores them unchanged and the maps are in stored-image pixels.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ifvit_data.synth.config import SynthConfig
from ifvit_data.synth.correspondence import Correspondence
from ifvit_data.synth.dataset import (
    GENERATOR_VERSION,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    pixels_sha256,
)
from ifvit_data.synth.geometry import ImpressionGeometry, impression_geometry, master_silhouette
from ifvit_data.synth.silhouette import Silhouette

PointMap = Callable[[np.ndarray], np.ndarray]


class SynthDirError(ValueError):
    """A folder is not a usable `ifvit synth` output (the message says why and what to do)."""


def config_from_manifest(manifest: dict[str, Any]) -> SynthConfig:
    """The `SynthConfig` a synth manifest records (`SynthConfig.from_dict`)."""
    return SynthConfig.from_dict(manifest["config"])


def load_synth_manifest(synth_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check the manifest of a synth folder made by this generator version.

    Checks: `manifest.json` parses, was written by `ifvit_data.synth` with this manifest format and
    generator version, its config is valid, every image entry has a pixel hash, and every listed
    file exists.

    Raises:
        SynthDirError: Any check fails (one line: which folder, what is wrong, what to do).
    """
    d = Path(synth_dir)
    path = d / MANIFEST_NAME
    try:
        man = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        what = e.__class__.__name__
        raise SynthDirError(f"{path}: no readable synth manifest ({what})") from None
    if not isinstance(man, dict) or man.get("generator") != "ifvit_data.synth":
        raise SynthDirError(f"{path}: not written by `ifvit synth`")
    if man.get("format_version") != MANIFEST_FORMAT:
        got = man.get("format_version")
        raise SynthDirError(f"{path}: manifest format {got}, need {MANIFEST_FORMAT}")
    if man.get("generator_version") != GENERATOR_VERSION:
        raise SynthDirError(
            f"{path}: made by generator {man.get('generator_version')}, this is "
            f"{GENERATOR_VERSION}; regenerate the set with `ifvit synth` for exact correspondences"
        )
    try:
        config_from_manifest(man)
        int(man["seed"])
        images = man["images"]
        for e in images:
            e["file"], int(e["finger"]), int(e["impression"]), e["pixels_sha256"]
    except (KeyError, TypeError, ValueError) as e:
        raise SynthDirError(f"{path}: incomplete or invalid manifest ({e})") from None
    missing = [e["file"] for e in images if not (d / e["file"]).is_file()]
    if missing:
        raise SynthDirError(f"{d}: {len(missing)} listed images are missing (e.g. {missing[0]})")
    return man


def find_synth_dir(shard_dir: str | os.PathLike[str]) -> Path | None:
    """The synth folder a shard folder was ingested from, if it still holds that synth set.

    Follows `source_dir` of the shard folder's `manifest.json` (written by `ifvit ingest`) and
    returns it if `load_synth_manifest` accepts it; None otherwise (real prints, a moved or changed
    folder, another generator version, or no readable shard manifest).

    Args:
        shard_dir: A folder written by `ifvit ingest`.

    Returns:
        The synth folder (absolute) or None.
    """
    try:
        shard_manifest = json.loads((Path(shard_dir) / MANIFEST_NAME).read_text())
        source = Path(shard_manifest["source_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        load_synth_manifest(source)
    except SynthDirError:
        return None
    return source.resolve()


class SynthCorrespondence:
    """`(record_a, record_b) -> (forward a->b, backward b->a) | None` for records of one synth set.

    Matches `ifvit_data.pipeline.Correspondence`. The maps take float64 (N, 2) stored-image points
    (x, y) and return (N, 2), NaN where a point is outside its own frame or contact region or lands
    outside the other's. Returns None when a record's `source` is not an image of this set, its
    pixels differ from that image, or the two records are different fingers.

    Picklable for Grain worker processes: the caches (finger silhouettes, and a bounded LRU of
    impression geometries, about 0.2 MB each at the default master size) are rebuilt lazily in each
    process and are safe to share between threads.

    Args:
        synth_dir: The synth folder (`load_synth_manifest` must accept it).
        cache_size: Impression geometries kept per process.
    """

    def __init__(self, synth_dir: str | os.PathLike[str], cache_size: int = 128):
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
        man = load_synth_manifest(synth_dir)
        self.synth_dir = Path(synth_dir).resolve()
        self.seed = int(man["seed"])
        self.config = config_from_manifest(man)
        self.cache_size = int(cache_size)
        self._files = {
            e["file"]: (int(e["finger"]), int(e["impression"]), e["pixels_sha256"])
            for e in man["images"]
        }
        self._init_caches()

    def _init_caches(self) -> None:
        self._lock = threading.Lock()
        self._silhouettes: dict[int, Silhouette] = {}
        self._geometries: OrderedDict[tuple[int, int], ImpressionGeometry] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for k in ("_lock", "_silhouettes", "_geometries"):
            state.pop(k)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_caches()

    def identify(self, record: dict[str, Any]) -> tuple[int, int] | None:
        """(synth finger, impression) of a record, or None if it is not an image of this set."""
        source = record.get("source")
        entry = self._files.get(Path(str(source)).as_posix()) if source is not None else None
        if entry is None:
            return None
        image = np.asarray(record.get("image"))
        if image.dtype != np.uint8 or image.shape != tuple(self.config.size):
            return None
        if pixels_sha256(image) != entry[2]:
            return None
        return entry[0], entry[1]

    def geometry(self, finger: int, impression: int) -> ImpressionGeometry:
        """The (cached) geometry of impression `impression` of synth finger `finger`."""
        key = (finger, impression)
        with self._lock:
            g = self._geometries.get(key)
            if g is not None:
                self._geometries.move_to_end(key)
                return g
            sil = self._silhouettes.get(finger)
        if sil is None:
            sil = master_silhouette(self.seed, finger, self.config)
        g = impression_geometry(self.seed, finger, impression, self.config, sil)
        with self._lock:
            self._silhouettes[finger] = sil
            self._geometries[key] = g
            while len(self._geometries) > self.cache_size:
                self._geometries.popitem(last=False)
        return g

    def __call__(
        self, record_a: dict[str, Any], record_b: dict[str, Any]
    ) -> tuple[PointMap, PointMap] | None:
        """Point maps between two records of one synth finger, or None (see the class)."""
        ka, kb = self.identify(record_a), self.identify(record_b)
        if ka is None or kb is None or ka[0] != kb[0]:
            return None
        fwd = Correspondence(self.geometry(*ka), self.geometry(*kb))
        return fwd, fwd.reverse


def synth_correspondence(
    synth_dir: str | os.PathLike[str], cache_size: int = 128
) -> SynthCorrespondence:
    """The record correspondence of a synth folder (see `SynthCorrespondence`).

    Raises:
        SynthDirError: The folder is not a usable synth output of this generator version.
    """
    return SynthCorrespondence(synth_dir, cache_size)
