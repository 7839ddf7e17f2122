"""Galleries of per-print templates: enrolment (files -> templates -> folder) and loading.

    GALLERY/
      .ifvit-output.json   output marker, kind "gallery" (`ifvit_data.outputs`)
      templates-<sha>.npy  float32 [N, D] unit templates (`np.load(..., allow_pickle=False)`), named
                           by the first 16 hex digits of its SHA-256
      gallery.json         format name/version, the model (bundle path, step, hash), the template
                           definition (mode, embed_dim, fusion alpha), preprocessing, the templates
                           file (shape, dtype, sha256) and one entry per row: id, subject,
                           impression, path of the enrolled file (absolute), dpi, quality (and
                           acquired: False only for a print enrolled with `allow_low_quality`)

`gallery.json` is written last, so a folder without it is an unfinished enrolment, and a
re-enrolment (--force) that fails leaves the previous gallery.json and its templates file intact.
Templates come from `ifvit_core.ifvit.embed_images` on the training preprocessing
(`ifvit_train.serving.infer.prepare_image`).
They are only comparable with templates of the same model: `model_hash` identifies the weights, and
loading a gallery for another model is refused. A print below the quality floor (no fingerprint:
`ifvit_data.quality`) is not enrolled unless asked, and a template that is not finite never is.
Loading checks the templates file against its SHA-256 (in its name and in gallery.json) and refuses
non-finite templates. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from ifvit_core.ifvit.template import DEFAULT_MODE, embed_images, template_alpha
from ifvit_data.outputs import atomic_write_bytes, claimed_output_dir
from ifvit_train.serving.bundle import LoadedBundle, library_versions, state_hash, write_json_atomic
from ifvit_train.serving.gallery_file import (  # noqa: F401 (re-exported)
    ENTRY_KEYS,
    FORMAT,
    FORMAT_VERSION,
    GALLERY_FILE,
    OUTPUT_KIND,
    Gallery,
    GalleryError,
    check_templates,
    load_gallery,
)
from ifvit_train.serving.infer import PreparedImage, prepare_for_bundle, print_arrays, shape_groups
from ifvit_train.serving.preprocessing import enhance_inputs, enhancement


def model_hash(bundle: LoadedBundle) -> str:
    """SHA-256 of the weights a template depends on: the Module 2 checkpoint and Module 1."""
    h = hashlib.sha256()
    h.update(state_hash(bundle.path / "checkpoints" / str(bundle.step)).encode())
    if (bundle.path / "module1").is_dir():
        h.update(state_hash(bundle.path / "module1").encode())
    return h.hexdigest()


class Embedder:
    """Templates of prepared prints with a loaded Module 2 bundle (fixed batch: one compiled graph
    per window shape).

    `embed(prints)` -> float32 [n, 2 * embed_dim] unit templates, in order.
    """

    def __init__(self, bundle: LoadedBundle, batch_size: int = 8, mode: str = DEFAULT_MODE):
        if bundle.matcher is None:
            raise GalleryError(f"{bundle.path}: a Module 1 bundle; "
                               "templates need a Module 2 bundle")
        self.bundle, self.batch_size, self.mode = bundle, int(batch_size), mode
        self.dim = 2 * bundle.cfg.module2.embed_dim
        cfg = bundle.cfg
        enh = enhancement(bundle.meta["preprocessing"])  # the bundle's input enhancement, if any
        self._fn = nnx.jit(lambda m, x, k: embed_images(cfg, m, enhance_inputs(enh, x, k), k,
                                                        mode=mode)["template"])

    def prepare(self, path: str | Path, dpi: float | None = None,
                require_print: bool = True) -> PreparedImage:
        return prepare_for_bundle(self.bundle.meta, path, dpi, require_print)

    def embed(self, prints: Sequence[PreparedImage]) -> np.ndarray:
        out = np.zeros((len(prints), self.dim), np.float32)
        for idx in shape_groups([p.window.shape for p in prints], self.batch_size):
            x, m = print_arrays([prints[i] for i in idx], self.batch_size)  # templates: per print
            out[idx] = np.asarray(jax.device_get(self._fn(self.bundle.matcher, x, m)))[:len(idx)]
        return out


@dataclass(frozen=True)
class Enrolee:
    """One file to enrol: path, identity (subject) and impression number."""

    path: Path
    subject: str
    impression: int


def template_spec(bundle: LoadedBundle, mode: str) -> dict[str, Any]:
    return {"mode": mode, "embed_dim": bundle.cfg.module2.embed_dim,
            "dim": 2 * bundle.cfg.module2.embed_dim,
            "fusion_alpha": template_alpha(bundle.cfg),
            "template_neck": bundle.cfg.module2.template_neck,
            "definition": "[sqrt(a) z_global, sqrt(1-a) z_local] (ifvit_core.ifvit.embed_images)"}


def enroll(
    bundle: LoadedBundle,
    enrolees: Sequence[Enrolee],
    out: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    dpi: float | None = None,
    batch_size: int = 8,
    force: bool = False,
    allow_low_quality: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[Gallery, list[tuple[str, str]]]:
    """Prepares, embeds and writes every readable file into a new gallery folder.

    The folder is claimed before any work (`ifvit_data.outputs`: never an input, never a user's
    folder or another kind of output unless `force`, never an earlier gallery unless `force`);
    an interrupted or failed run leaves no gallery.json (and no new folder if it made it).

    Args:
      bundle: a loaded Module 2 bundle; enrolees: the files; out: the gallery folder;
      inputs: paths the output must not touch (the data folder, the model);
      dpi: resolution of every file (default: metadata, else 500);
      allow_low_quality: enrol prints below the quality floor too (default: skipped, as failures
        to acquire);
      progress: called with the number of files done so far.

    Returns:
      (the gallery, [(file, reason)] of files skipped: unreadable, not acquired, or whose template
      is not finite).

    Raises:
      GalleryError: no file could be read. OutputError: the output folder is refused.
    """
    from ifvit_data.imagefile import ImageReadError

    embedder = Embedder(bundle, batch_size)
    with claimed_output_dir(out, OUTPUT_KIND, inputs=list(inputs), force=force,
                            resume=False) as folder:
        kept: list[Enrolee] = []
        skipped: list[tuple[str, str]] = []
        blocks: list[np.ndarray] = []
        pending: list[PreparedImage] = []
        info: list[dict[str, Any]] = []
        for done, e in enumerate(enrolees, start=1):
            try:
                p = embedder.prepare(e.path, dpi, require_print=not allow_low_quality)
            except (ImageReadError, ValueError) as err:
                skipped.append((str(e.path), str(err)))
            else:
                kept.append(e)
                pending.append(p)
                info.append({"dpi": p.dpi, "quality": round(p.quality.quality, 4),
                             **({} if p.quality.acquired else {"acquired": False})})
            if len(pending) == batch_size:
                blocks.append(embedder.embed(pending))
                pending = []
            if progress is not None:
                progress(done)
        if pending:
            blocks.append(embedder.embed(pending))
        templates = np.concatenate(blocks, 0) if blocks else np.zeros((0, embedder.dim), np.float32)
        finite = np.isfinite(templates).all(1)
        for i in np.flatnonzero(~finite):
            skipped.append((str(kept[i].path), "its template is not finite (NaN or inf)"))
        kept = [e for e, ok in zip(kept, finite, strict=True) if ok]
        info = [d for d, ok in zip(info, finite, strict=True) if ok]
        templates = np.ascontiguousarray(templates[finite])
        if not kept:
            raise GalleryError(f"{out}: none of the {len(enrolees)} files could be enrolled "
                               f"(first: {skipped[0][1]})" if skipped else
                               f"{out}: no files to enrol")
        buf = io.BytesIO()
        np.save(buf, templates, allow_pickle=False)
        digest = hashlib.sha256(buf.getvalue()).hexdigest()
        tname = f"templates-{digest[:16]}.npy"
        atomic_write_bytes(folder / tname, buf.getvalue())
        meta = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "model": {"path": str(Path(bundle.path).resolve()), "step": bundle.step,
                      "sha256": model_hash(bundle)},
            "template": template_spec(bundle, embedder.mode),
            "preprocessing": bundle.meta["preprocessing"],
            "templates": {"file": tname, "shape": list(templates.shape), "dtype": "float32",
                          "sha256": digest},
            "count": len(kept), "skipped": len(skipped), "versions": library_versions(),
            "entries": [{"id": i, "subject": e.subject, "impression": e.impression,
                         "path": str(Path(e.path).resolve()), **d}
                        for i, (e, d) in enumerate(zip(kept, info, strict=True))],
        }
        write_json_atomic(folder / GALLERY_FILE, meta)
    return Gallery(folder, meta, templates), skipped
