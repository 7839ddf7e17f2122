"""The one description of how a model's parameter tree splits into groups, for both trainers.

Groups (by '/'-joined parameter path, with or without a Module 2 branch prefix):

| group | what | Module 1 trainer | Module 2 trainer |
|---|---|---|---|
| `trunk` | backbone 1/8 path + coarse transformer | trained | trained (both branches) |
| `fpn_half` | the 1/2 FPN branch (`layer2_outconv*`, `layer1_outconv*`) | trained only with the fine stage | frozen (unused) |
| `fine` | fine stage (`fine_preprocess`, `loftr_fine`) | trained only with the fine stage | absent |
| `heads` | Module 2 embedding head (and template neck) and ArcFace centres | absent | trained |

Frozen groups get no update at all (AdamW's decoupled weight decay would otherwise shrink converted
weights that the forward pass never uses).
"""  # noqa: E501 (the table rows above cannot wrap in Markdown)

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import numpy as np

GROUPS = ("trunk", "fpn_half", "fine", "heads")
_PREFIXES = {
    "fpn_half": ("backbone/layer2_outconv", "backbone/layer1_outconv"),
    "fine": ("fine_preprocess/", "loftr_fine/"),
    "heads": ("embed/", "embed_norm/", "template_neck/", "arcface_weight"),
}
BRANCHES = ("global_branch/", "local_branch/")


def path_key(path: tuple[Any, ...]) -> str:
    """A pytree path (NNX state / jax key path) as the '/'-joined string used everywhere."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def group_of(key: str) -> str:
    """Group of a '/'-joined parameter path (a Module 2 branch prefix is ignored)."""
    for b in BRANCHES:
        if key.startswith(b):
            key = key[len(b):]
            break
    for group, prefixes in _PREFIXES.items():
        if key.startswith(prefixes):
            return group
    return "trunk"


def trainable_labels(tree: Any, trainable: Iterable[str]) -> Any:
    """Same-structure tree of 'train' / 'frozen' labels for `optax.multi_transform`."""
    keep = set(trainable)
    bad = keep - set(GROUPS)
    if bad:
        raise ValueError(f"unknown parameter groups {sorted(bad)}; known: {GROUPS}")
    return jax.tree_util.tree_map_with_path(
        lambda p, _: "train" if group_of(path_key(p)) in keep else "frozen", tree
    )


def group_counts(tree: Any) -> dict[str, int]:
    """Number of values per group (groups with no parameter are omitted)."""
    counts: dict[str, int] = {}
    for p, leaf in jax.tree_util.tree_leaves_with_path(tree):
        g = group_of(path_key(p))
        counts[g] = counts.get(g, 0) + int(np.prod(np.shape(leaf)))
    return {g: counts[g] for g in GROUPS if g in counts}
