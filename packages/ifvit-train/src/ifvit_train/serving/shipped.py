"""The model bundle shipped inside this package (used when a command gets no --model)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_NAME = "ifvit-small"


def shipped_bundle() -> Path | None:
    """The folder of the shipped `small` Module 2 bundle, or None if this install has none."""
    path = Path(str(resources.files("ifvit_train.serving") / "shipped_models" / SHIPPED_NAME))
    return path if (path / "bundle.json").is_file() else None
