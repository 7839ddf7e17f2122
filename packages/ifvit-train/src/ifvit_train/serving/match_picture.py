"""The picture of a verification (`ifvit match --viz`, the demo, the evidence gallery).

matplotlib with the Agg backend (no display needed); every writer is atomic (temp file + rename).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure_atomic(fig, path: str | Path, dpi: int = 120) -> Path:
    """Renders `fig` to `path` through the project's one atomic writer
    (`ifvit_data.outputs.atomic_path`) and closes it."""
    from ifvit_data.outputs import atomic_path

    path = Path(path)
    try:
        with atomic_path(path) as tmp, open(tmp, "xb") as f:
            fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        _plt().close(fig)
    return path


def score_text(result: dict, digits: int) -> str:
    """'score S (...)' of a `Verifier.verify` result: the branch cosines and, for a bundle with an
    evidence weight k, how the score was made from the fused cosine and the inliers n."""
    def f(x: float) -> str:
        return f"{x:.{digits}f}"

    k, n = result["evidence_k"], result["alignment"]["inliers"]
    evidence = f"(1 + cosine {f(result['cosine'])}) / 2 x inliers {n}/({n}+{k:g}); " if k else ""
    return (f"score {f(result['score'])} ({evidence}global {f(result['cos_global'])}, "
            f"ROI {f(result['cos_local'])})")


def plot_verification(image0: np.ndarray, image1: np.ndarray, result: dict, path: str | Path,
                      *, title: str = "", dpi: int = 120) -> Path:
    """The picture of one verification (`ifvit_train.serving.infer.Verifier.verify` result).

    Left: both prints side by side, Module 1's correspondences: RANSAC inliers (the evidence that
    counts) as lines coloured by confidence, outliers as thin dashed red lines. Right: image
    1 warped onto image 0 by the alignment (magenta = ridges of image 0 only, green = image 1 only,
    dark = both), with the overlap of the two prints the global branch saw (cyan) and the ROI
    (orange).
    image0, image1: [H, W] in [0, 1] (the user's files).
    """
    import cv2

    plt = _plt()
    a, b = np.squeeze(image0).astype(np.float32), np.squeeze(image1).astype(np.float32)
    m = result["correspondences"]["module1"]
    pts0 = np.array([[c["x0"], c["y0"]] for c in m]).reshape(-1, 2)
    pts1 = np.array([[c["x1"], c["y1"]] for c in m]).reshape(-1, 2)
    conf = np.array([c["confidence"] for c in m])
    inlier = np.array([c.get("inlier", True) for c in m], bool)
    h, gap = max(a.shape[0], b.shape[0]), 8
    canvas = np.ones((h, a.shape[1] + gap + b.shape[1]), np.float32)
    canvas[: a.shape[0], : a.shape[1]] = a
    canvas[: b.shape[0], a.shape[1] + gap :] = b
    off = a.shape[1] + gap
    width = canvas.shape[1] + a.shape[1]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 12 * h / width + 0.8),
                                   gridspec_kw={"width_ratios": [canvas.shape[1], a.shape[1]]})
    ax0.imshow(canvas, cmap="gray", vmin=0, vmax=1)
    cmap = plt.get_cmap("viridis")
    for k in np.flatnonzero(~inlier):  # outliers first, under the inliers
        ax0.plot([pts0[k, 0], pts1[k, 0] + off], [pts0[k, 1], pts1[k, 1]], color="red", lw=0.5,
                 ls="--", alpha=0.6)
    for k in np.argsort(conf):
        if inlier[k]:
            ax0.plot([pts0[k, 0], pts1[k, 0] + off], [pts0[k, 1], pts1[k, 1]],
                     color=cmap(float(conf[k])), lw=0.7, alpha=0.85)
    ax0.set_title(f"Module 1: {int(inlier.sum())} RANSAC inliers (colour = confidence), "
                  f"{int((~inlier).sum())} outliers (dashed red)", fontsize=9)
    # image 1 resampled at A(p0): aligned with image 0 (A maps image-0 pixels to image-1 pixels)
    A = np.asarray(result["alignment"]["matrix_image0_to_image1"], np.float64)
    warped = cv2.warpAffine(b, A, (a.shape[1], a.shape[0]),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=1.0)
    ax1.imshow(np.stack([a, warped, np.minimum(a, 1.0) * 0.5 + warped * 0.5], axis=-1).clip(0, 1))
    for name, colour in (("overlap", "cyan"), ("roi", "orange")):
        poly = np.array(result.get("regions_image0", {}).get(name, []), np.float64).reshape(-1, 2)
        if len(poly):
            ax1.plot(*np.vstack([poly, poly[:1]]).T, color=colour, lw=1.5, label=name)
    ax1.legend(loc="lower right", fontsize=7)
    al = result["alignment"]
    ax1.set_title(f"aligned overlay: rotation {al['rotation_deg']:.1f} deg, {al['inliers']} inliers"
                  + ("" if al["ok"] else " (alignment failed)"), fontsize=9)
    for ax in (ax0, ax1):
        ax.set_axis_off()
    fig.suptitle(f"{title}  {score_text(result, 3)}".strip(), fontsize=10)
    return save_figure_atomic(fig, path, dpi=dpi)
