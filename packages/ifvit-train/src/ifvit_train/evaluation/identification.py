"""Closed-set identification on a folder of prints: template search, then pairwise re-ranking.

Gallery: the first impression (lowest number) of every finger; probes: every other print. Each
probe is ranked two ways (`metrics.cmc`): by template cosine alone (`gallery.Embedder`, one template
per print), and with its top `rerank` gallery candidates re-scored by the full pairwise IFViT score
(`infer.Verifier`: Module 1 registers the pair, both Module 2 branches), which is what
`ifvit identify --rerank` does. The report also scores the templates as a 1:1 matcher: the template
dot product of every pair of prepared prints (genuine: same finger), with its EER / FMR100 /
FMR1000 (`template_verification`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ifvit_train.evaluation.evaluate import PrintSet
from ifvit_train.evaluation.metrics import CMCResult, cmc, verification_report
from ifvit_train.serving.bundle import LoadedBundle
from ifvit_train.serving.gallery import Embedder
from ifvit_train.serving.identify import rerank_scores
from ifvit_train.serving.infer import Verifier

RERANK_OFFSET = 10.0  # re-ranked candidates sit above every other entry (scores are in [-1, 1])


def identification(bundle: LoadedBundle, prints: PrintSet, *, rerank: int = 10, max_rank: int = 10,
                   batch_size: int = 8) -> tuple[dict[str, Any], dict[str, CMCResult]]:
    """(report dict, {'template': CMC, 're-ranked': CMC}) of the prints' closed-set search.

    Raises ValueError when no finger has both a gallery print and a probe.
    """
    ok = [i for i, p in enumerate(prints.prepared) if p is not None]
    fingers = np.array([prints.entries[i].finger for i in ok])
    imps = np.array([prints.entries[i].impression for i in ok])
    first = {f: imps[fingers == f].min() for f in np.unique(fingers)}
    is_gallery = np.array([imps[k] == first[fingers[k]] for k in range(len(ok))])
    if is_gallery.all() or not is_gallery.any():
        raise ValueError(f"{prints.root}: identification needs fingers with two or more "
                         "impressions")
    t0 = time.perf_counter()
    templates = Embedder(bundle, batch_size=batch_size).embed([prints.prepared[i] for i in ok])
    t_embed = time.perf_counter() - t0
    g, p = np.flatnonzero(is_gallery), np.flatnonzero(~is_gallery)
    sims = templates[p] @ templates[g].T  # [P, G]
    curves = {"template": cmc(sims, fingers[p], fingers[g], max_rank)}
    r = min(rerank, len(g))
    t1 = time.perf_counter()
    if r > 0:
        verifier = Verifier(bundle)
        top = np.argsort(-sims, axis=1, kind="stable")[:, :r]  # [P, r] gallery columns
        scores = rerank_scores(verifier, [prints.prepared[ok[i]] for i in p],
                               [[prints.prepared[ok[g[b]]] for b in top[a]] for a in range(len(p))],
                               batch_size)
        reranked = sims - RERANK_OFFSET
        np.put_along_axis(reranked, top, scores + RERANK_OFFSET, axis=1)
        curves["re-ranked"] = cmc(reranked, fingers[p], fingers[g], max_rank)
    iu = np.triu_indices(len(ok), k=1)  # every unordered pair of prepared prints
    all_sims = (templates @ templates.T)[iu]
    same = fingers[iu[0]] == fingers[iu[1]]
    tv = None  # needs genuine and impostor pairs (one finger has none of the latter)
    if same.any() and not same.all():
        ver = verification_report(all_sims[same], all_sims[~same])
        tv = {"what": "template dot product of every pair of prints as a 1:1 score (all-pairs)",
              "eer": float(ver.eer), "fmr100": float(ver.fmr100), "fmr1000": float(ver.fmr1000),
              "n_genuine": int(same.sum()), "n_impostor": int((~same).sum())}
    report = {
        "protocol": "identification", "gallery": int(len(g)), "probes": int(len(p)),
        "rerank": r, "prints_failed": len(prints.entries) - len(ok),
        "seconds_per_template": t_embed / max(len(ok), 1),
        "seconds_per_reranked_pair": (time.perf_counter() - t1) / max(len(p) * r, 1),
        "template_verification": tv,
        **{name: {"rank1": c.rank(1), f"rank{min(10, max_rank)}": c.rank(min(10, max_rank)),
                  **c.to_dict()} for name, c in curves.items()},
    }
    return report, curves
