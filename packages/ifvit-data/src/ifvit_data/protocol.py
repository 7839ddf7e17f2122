"""Evaluation pair lists: the FVC protocol and all pairs (SPEC §6.1)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np


def fvc_pairs(fingers: np.ndarray, impressions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of the FVC 2000/2002/2004 protocol (bias.csr.unibo.it/fvc2002/perfeval.asp).

    Genuine: every impression against every other impression of the same finger, symmetric matches
    skipped (100 fingers x 8 impressions -> 2,800). Impostor: the first impression (the smallest
    impression number) of each finger against the first impression of every other finger, symmetric
    skipped (100 fingers -> 4,950).

    Args:
      fingers: int `[N]` finger id per record.
      impressions: int `[N]` impression number per record.

    Returns:
      `(pairs int32 [P, 2] record indices, is_genuine int32 [P])`, genuine pairs first, each group
      in ascending (finger, impression) order.
    """
    fingers, impressions = np.asarray(fingers), np.asarray(impressions)
    if fingers.shape != impressions.shape or fingers.ndim != 1:
        raise ValueError(
            f"fingers and impressions must be [N], got {fingers.shape}, {impressions.shape}"
        )
    order = np.lexsort((impressions, fingers))
    genuine: list[tuple[int, int]] = []
    firsts: list[int] = []
    for f in np.unique(fingers):
        idx = [int(i) for i in order if fingers[i] == f]
        firsts.append(idx[0])
        genuine.extend(combinations(idx, 2))
    impostor = list(combinations(firsts, 2))
    pairs = np.asarray(genuine + impostor, dtype=np.int32).reshape(-1, 2)
    labels = np.concatenate([np.ones(len(genuine), np.int32), np.zeros(len(impostor), np.int32)])
    return pairs, labels


def all_pairs(fingers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair of records (the official IFViT `eval/EER.py` protocol).

    Args:
      fingers: int `[N]` finger id per record.

    Returns:
      `(pairs int32 [N(N-1)/2, 2], is_genuine int32)`, genuine iff same finger (no O(N^3) lookups).
    """
    fingers = np.asarray(fingers)
    i, j = np.triu_indices(len(fingers), k=1)
    pairs = np.stack([i, j], axis=1).astype(np.int32)
    return pairs, (fingers[i] == fingers[j]).astype(np.int32)


def sampled_impostor_pairs(
    fingers: np.ndarray, impressions: np.ndarray, n_impostor: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Every genuine pair plus a seeded sample of the cross-finger impostor pairs.

    The protocol of the project's classical baselines (`data/BASELINES.md`): genuine = each
    impression against every later impression of the same finger (10x8 -> 280); impostor =
    `numpy.random.default_rng(seed).choice(N, n_impostor, replace=False)` over the N cross-finger
    pairs (record a of finger f, impression i; record b of finger g > f, impression j) in
    lexicographic (f, i, g, j) order (10x8 -> N = 2,880), kept in that order. With n_impostor >= N
    every cross-finger pair is used.

    Returns:
      `(pairs int32 [P, 2] record indices, is_genuine int32 [P])`, genuine pairs first.
    """
    fingers, impressions = np.asarray(fingers), np.asarray(impressions)
    if fingers.shape != impressions.shape or fingers.ndim != 1:
        raise ValueError(
            f"fingers and impressions must be [N], got {fingers.shape}, {impressions.shape}"
        )
    order = np.lexsort((impressions, fingers))  # records in (finger, impression) order
    genuine, impostor = [], []
    for x in range(len(order)):
        for y in range(x + 1, len(order)):
            a, b = int(order[x]), int(order[y])
            (genuine if fingers[a] == fingers[b] else impostor).append((a, b))
    if n_impostor < len(impostor):
        pick = np.random.default_rng(seed).choice(len(impostor), n_impostor, replace=False)
        impostor = [impostor[k] for k in np.sort(pick)]
    pairs = np.asarray(genuine + impostor, dtype=np.int32).reshape(-1, 2)
    labels = np.concatenate([np.ones(len(genuine), np.int32), np.zeros(len(impostor), np.int32)])
    return pairs, labels


PROTOCOLS = ("fvc", "all-pairs", "baselines")


def protocol_pairs(entries: Sequence[Any], protocol: str) -> tuple[np.ndarray, np.ndarray]:
    """`(pairs int32 [P, 2] entry indices, is_genuine int32 [P])` of an evaluation protocol.

    'fvc': FVC2000-2004 (genuine: all impressions of a finger; impostor: first impressions of
    different fingers; 10x8 -> 280 / 45). 'all-pairs': every unordered pair. 'baselines': the
    protocol of the project's classical figures (data/BASELINES.md): every genuine pair and 2,000
    seeded cross-finger impostor pairs (10x8 -> 280 / 2,000; `sampled_impostor_pairs`).
    """
    fingers = np.array([e.finger for e in entries])
    if protocol == "fvc":
        return fvc_pairs(fingers, np.array([e.impression for e in entries]))
    if protocol == "all-pairs":
        return all_pairs(fingers)
    if protocol == "baselines":
        return sampled_impostor_pairs(fingers, np.array([e.impression for e in entries]), 2000, 0)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
