"""1:N identification: template search in a gallery, then re-ranking with the pairwise IFViT score.

For each probe file: the training preprocessing, its template (`gallery.Embedder`), the top k
gallery rows by template cosine (`search.top_k`, or `search.sharded_top_k` over a mesh), then the
first `rerank` of them are scored with the full pairwise model (`infer.Verifier`: Module 1
alignment, Module 2 on the overlap and the ROI) against their enrolled files and re-ordered by that
score; the other candidates follow in template order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from ifvit_train.serving.bundle import LoadedBundle
from ifvit_train.serving.gallery import Embedder, Gallery, GalleryError, load_gallery, model_hash
from ifvit_train.serving.infer import PreparedImage, Verifier
from ifvit_train.serving.search import shard_gallery, sharded_top_k, top_k

RERANK_BATCH = 8  # pairs per compiled call when re-ranking


def rerank_scores(verifier: Verifier, probes: Sequence[PreparedImage],
                  candidates: Sequence[Sequence[PreparedImage]], batch_size: int) -> np.ndarray:
    """The one re-ranking step of 1:N search (`Identifier` and the identification protocol of
    `ifvit_train.evaluation.identification`): the pairwise decision score of each probe against
    each of its first r candidates, float [P, r], in one `Verifier.score_pairs` call (probe-major
    order). The caller puts the re-scored candidates first, in the order of these scores."""
    r = len(candidates[0]) if candidates else 0
    if any(len(c) != r for c in candidates) or len(candidates) != len(probes):
        raise ValueError("every probe needs the same number of candidates")
    pairs = [(p, c) for p, cands in zip(probes, candidates, strict=True) for c in cands]
    if not pairs:
        return np.zeros((len(probes), 0))
    return verifier.score_pairs(pairs, batch_size)["score"].reshape(len(probes), r)


class Identifier:
    """Searches one gallery with one model (the gallery must have been enrolled with it).

    Args:
      bundle: the Module 2 bundle; gallery: the gallery folder;
      mesh: optional mesh (`ifvit_train.serving.mesh.make_mesh`) to shard the gallery rows over.
    """

    def __init__(self, bundle: LoadedBundle, gallery: str | Path, mesh: Mesh | None = None):
        self.gallery: Gallery = load_gallery(gallery, expect_model=model_hash(bundle))
        mode = self.gallery.meta["template"]["mode"]
        self.embedder = Embedder(bundle, batch_size=1, mode=mode)
        self.bundle, self.mesh = bundle, mesh
        self._verifier: Verifier | None = None
        t = np.asarray(self.gallery.templates)
        self._rows = shard_gallery(t, mesh) if mesh is not None else jax.device_put(t)

    @property
    def verifier(self) -> Verifier:
        if self._verifier is None:
            self._verifier = Verifier(self.bundle)
        return self._verifier

    def search(self, templates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """[P, D] probe templates -> (scores [P, k], gallery rows [P, k]) by template cosine."""
        n = len(self.gallery)
        if not 1 <= k <= n:
            raise ValueError(f"top-k {k} must be between 1 and the gallery size {n}")
        if self.mesh is not None:
            s, i = sharded_top_k(self.mesh, self._rows, templates, k, n)
        else:
            s, i = top_k(self._rows, templates, k)
        return np.asarray(s), np.asarray(i)

    def identify(self, probes: Sequence[PreparedImage], k: int = 10,
                 rerank: int = 0) -> list[dict[str, Any]]:
        """Candidates of each probe, best first.

        Returns one dict per probe: {'probe': path, 'quality': its quality (`ifvit_data.quality`),
        'candidates': [{'rank', 'id', 'subject', 'impression', 'path', 'template_score', 'score'
        (pairwise; None if not re-ranked)}]}.

        Raises:
          GalleryError: an enrolled file needed for re-ranking is gone.
          ValueError: a probe's template is not finite.
        """
        k = min(k, len(self.gallery))
        rerank = min(rerank, k)
        templates = self.embedder.embed(probes)
        for probe, t in zip(probes, templates, strict=True):
            if not np.isfinite(t).all():
                raise ValueError(f"{probe.path}: its template is not finite (NaN or inf); this "
                                 "model cannot search with this print")
        scores, rows = self.search(templates, k)
        out = []
        for probe, s_row, i_row in zip(probes, scores, rows, strict=True):
            cands = []
            for s, i in zip(s_row, i_row, strict=True):
                e = self.gallery.entries[int(i)]
                cands.append({"id": int(e["id"]), "subject": e["subject"],
                              "impression": e["impression"], "path": e["path"],
                              "template_score": round(float(s), 6), "score": None})
            if rerank:  # batched pairs, one compiled graph per window shapes
                got = rerank_scores(self.verifier, [probe],
                                    [[self._enrolled(c) for c in cands[:rerank]]], RERANK_BATCH)[0]
                # only the first `rerank` candidates were re-scored: zip stops at `got`'s end
                for c, v in zip(cands, got, strict=False):
                    c["score"] = round(float(v), 6)
            cands[:rerank] = sorted(cands[:rerank], key=lambda c: -c["score"])
            for r, c in enumerate(cands, start=1):
                c["rank"] = r
            out.append({"probe": str(probe.path), "quality": round(probe.quality.quality, 4),
                        "candidates": cands})
        return out

    def _enrolled(self, cand: dict[str, Any]) -> PreparedImage:
        path = Path(cand["path"])
        if not path.is_file():
            raise GalleryError(f"{path}: enrolled file of gallery entry {cand['id']} is gone; "
                               "re-ranking needs it (restore it, or pass --rerank 0)")
        entry = self.gallery.entries[cand["id"]]
        # enrolled deliberately (a print below the floor only with `enroll --allow-low-quality`)
        return self.verifier.prepare(path, entry.get("dpi"), require_print=False)
