"""Alignment geometry between Module 1 and Module 2 (SPEC §2.8, §4.5), jit-able with fixed shapes.

Modules:
  affine  — identity / apply / invert / compose of `[..., 2, 3]` affine maps (OpenCV convention).
  fit     — weighted similarity / affine least squares and fixed-iteration RANSAC.
  warp    — `warp_image` (cv2.warpAffine convention) with its validity mask.
  regions — `overlap_roi` (overlap of aligned masks + ROI origin), `crop` and `on_mask`.

Foreground segmentation is not here: the project has one, `ifvit_data.foreground`, computed where
images are read; Module 2 warps image 1's mask with the fitted alignment.
"""

from ifvit_core.geometry.affine import apply_affine, compose_affine, identity_affine, invert_affine
from ifvit_core.geometry.fit import RansacResult, fit_affine, fit_similarity, ransac_similarity
from ifvit_core.geometry.regions import crop, on_mask, overlap_roi
from ifvit_core.geometry.warp import warp_image

__all__ = [
    "RansacResult", "apply_affine", "compose_affine", "crop", "fit_affine", "fit_similarity",
    "identity_affine", "invert_affine", "on_mask", "overlap_roi", "ransac_similarity", "warp_image",
]
