"""A gallery folder read and checked without jax (`load_gallery`): `ifvit identify` refuses a
damaged gallery before a model is loaded. The format is described in `ifvit_train.serving.gallery`
(enrolment)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GALLERY_FILE = "gallery.json"
FORMAT = "ifvit-gallery"
FORMAT_VERSION = 1
OUTPUT_KIND = "gallery"


class GalleryError(ValueError):
    """A folder is not a usable gallery (one line: which folder, what is wrong, what to do)."""


@dataclass
class Gallery:
    """A loaded gallery: `templates` float32 [N, D] (memory-mapped) and `entries` (N dicts)."""

    path: Path
    meta: dict[str, Any]
    templates: np.ndarray

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.meta["entries"]

    def __len__(self) -> int:
        return len(self.meta["entries"])


def load_gallery(path: str | Path, *, expect_model: str | None = None) -> Gallery:
    """Reads and checks a gallery folder; `expect_model` = `model_hash` of the model in use.

    Raises:
      GalleryError: not a gallery, damaged (templates file not the one enrolled, non-finite
        templates), of another version, or made with another model.
    """
    path = Path(path)
    meta_file = path / GALLERY_FILE
    if not meta_file.is_file():
        raise GalleryError(f"{path}: not a gallery (no {GALLERY_FILE}); make one with "
                           "`ifvit enroll`")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GalleryError(f"{meta_file}: unreadable ({e}); re-run `ifvit enroll`") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise GalleryError(f"{meta_file}: not an {FORMAT} file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise GalleryError(f"{meta_file}: {FORMAT} version "
                           f"{meta.get('format_version')}; this ifvit reads version "
                           f"{FORMAT_VERSION}: re-run `ifvit enroll`")
    if expect_model is not None and meta.get("model", {}).get("sha256") != expect_model:
        raise GalleryError(
            f"{path}: enrolled with another model ({meta.get('model', {}).get('path')}, hash "
            f"{str(meta.get('model', {}).get('sha256'))[:12]}), not this one "
            f"({expect_model[:12]}); templates of different models are not comparable: pass that "
            "--model or re-enrol")
    tname = str(meta.get("templates", {}).get("file", ""))
    if not tname or Path(tname).name != tname:
        raise GalleryError(f"{meta_file}: bad templates file name {tname!r}; re-run `ifvit enroll`")
    tfile = path / tname
    try:
        templates = np.load(tfile, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise GalleryError(f"{tfile}: unreadable ({e}); re-run `ifvit enroll`") from None
    entries = meta.get("entries")
    if not isinstance(entries, list):
        raise GalleryError(f"{meta_file}: no list of entries; re-run `ifvit enroll`")
    for k, e in enumerate(entries):
        lacking = [key for key in ENTRY_KEYS if not isinstance(e, dict) or key not in e]
        if lacking or e["id"] != k:
            what = f"lacks {', '.join(lacking)}" if lacking else f"has id {e['id']!r}"
            raise GalleryError(f"{meta_file}: entry {k} {what}; the gallery is damaged: re-run "
                               "`ifvit enroll`")
    n = len(entries)
    if templates.dtype != np.float32 or templates.shape != (n, meta["template"]["dim"]):
        raise GalleryError(f"{tfile}: holds {templates.dtype} {templates.shape}, gallery.json says "
                           f"float32 ({n}, {meta['template']['dim']}); re-run `ifvit enroll`")
    check_templates(tfile, templates, str(meta.get("templates", {}).get("sha256", "")))
    return Gallery(path, meta, templates)


ENTRY_KEYS = ("id", "subject", "impression", "path")  # what a search result reads


def check_templates(tfile: Path, templates: np.ndarray, sha256: str) -> None:
    """The templates file is the one enrolled (its SHA-256 equals gallery.json's and starts with
    the hex digits in its name) and every value is finite; GalleryError (one line) otherwise."""
    h = hashlib.sha256()
    with tfile.open("rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    digest = h.hexdigest()
    named = tfile.stem.removeprefix("templates-")
    if digest != sha256 or not digest.startswith(named):
        raise GalleryError(f"{tfile}: SHA-256 {digest[:16]} is not the enrolled one "
                           f"({sha256[:16] or 'none in gallery.json'}): the file changed after "
                           "enrolment; re-run `ifvit enroll`")
    bad = int((~np.isfinite(templates).all(1)).sum()) if templates.size else 0
    if bad:
        raise GalleryError(f"{tfile}: {bad} of {len(templates)} templates hold NaN or inf values; "
                           "the gallery is damaged: re-run `ifvit enroll`")
