"""Contact sheets: a grid of grey images saved as one PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ifvit_data.outputs import atomic_path


def contact_sheet(
    images: Sequence[np.ndarray], cols: int, out_png: str | os.PathLike[str], pad: int = 4
) -> np.ndarray:
    """Tile images (uint8 [H, W], sizes may differ) row-major into a grid and save it as PNG.

    Args:
        images: Grey images; smaller ones are centred in cells of the largest size.
        cols: Number of columns (>= 1).
        out_png: Output path (written atomically; check it first with
            `ifvit_data.outputs.check_output_file`, this function replaces an existing file).
        pad: White gap between cells (px).

    Returns:
        uint8 [rows * (Hc + pad) + pad, cols * (Wc + pad) + pad] sheet.
    """
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    hc = max(im.shape[0] for im in images)
    wc = max(im.shape[1] for im in images)
    rows = (len(images) + cols - 1) // cols
    sheet = np.full((rows * (hc + pad) + pad, cols * (wc + pad) + pad), 255, np.uint8)
    for k, im in enumerate(images):
        r, c = divmod(k, cols)
        y = pad + r * (hc + pad) + (hc - im.shape[0]) // 2
        x = pad + c * (wc + pad) + (wc - im.shape[1]) // 2
        sheet[y : y + im.shape[0], x : x + im.shape[1]] = np.asarray(im, np.uint8)
    with atomic_path(out_png) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    return sheet
