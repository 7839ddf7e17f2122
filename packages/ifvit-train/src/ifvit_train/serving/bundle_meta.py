"""A bundle's description (bundle.json) read and checked without jax: the quick refusals of every
command come from here, before a model is loaded (`ifvit_train.serving.bundle` loads the
weights)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BUNDLE_FILE = "bundle.json"
FORMAT = "ifvit-bundle"
FORMAT_VERSION = 1
KINDS = ("dense", "match")
REQUIRED_KEYS = ("config", "train", "preprocessing")  # what loading and matching read


class BundleError(ValueError):
    """A folder is not a usable model bundle (the message names it and says what to do)."""


def read_meta(path: str | Path) -> dict[str, Any]:
    """Parsed and checked bundle.json of a bundle folder."""
    p = Path(path) / BUNDLE_FILE
    if not p.is_file():
        raise BundleError(f"{path}: not a model bundle (no {BUNDLE_FILE}); pass the --workdir of "
                          "`ifvit train` or a shipped bundle")
    damaged = "the bundle is damaged: re-copy or re-export it (`ifvit export`), or retrain it"
    try:
        meta = json.loads(p.read_text("utf-8"))
    except (OSError, ValueError) as e:  # ValueError: bad JSON or not UTF-8
        raise BundleError(f"{p}: unreadable ({e}); {damaged}") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{p}: holds a JSON {type(meta).__name__}, not a bundle description; "
                          f"{damaged}")
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{p}: not an {FORMAT} of version {FORMAT_VERSION}")
    if meta.get("kind") not in KINDS:
        raise BundleError(f"{p}: unknown bundle kind {meta.get('kind')!r}")
    missing = [k for k in REQUIRED_KEYS if not isinstance(meta.get(k), dict)]
    if missing:
        raise BundleError(f"{p}: lacks {', '.join(map(repr, missing))}; {damaged}")
    return meta
