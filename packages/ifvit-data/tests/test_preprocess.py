"""Crops around the foreground: centring, the stored->window map under downscaling, masks."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from ifvit_data.augment.geometric import apply_affine
from ifvit_data.foreground import foreground_mask
from ifvit_data.preprocess import CropConfig, crop_print, foreground_centroid


def test_foreground_mask_finds_the_print(make_ridges: Callable[..., np.ndarray]) -> None:
    img = make_ridges(160, 144, seed=2)
    truth = img < 255  # inside the ellipse (the ridge pattern never reaches pure white)
    m = foreground_mask(img)
    recall, precision = (m & truth).sum() / truth.sum(), (m & truth).sum() / m.sum()
    assert recall > 0.95 and precision > 0.7, (recall, precision)  # ~8-px accurate boundary
    assert not foreground_mask(np.full((64, 64), 255, np.uint8)).any()


def test_crop_centres_print_and_maps_points(make_ridges: Callable[..., np.ndarray]) -> None:
    img = np.full((300, 260), 255, np.uint8)
    img[150:310, 140:284] = make_ridges(160, 144)[
        :150, :120
    ]  # print off-centre, clipped at the border
    cx, cy = foreground_centroid(img)
    assert 170 < cx < 230 and 190 < cy < 250
    for d in (1.0, 1.5, 2.0):
        win, c, mask = crop_print(img, CropConfig((64, 64), downscale=d))
        assert win.shape == (64, 64) and win.dtype == np.float32 and mask.dtype == bool
        # Points of the stored image land on the same content in the window.
        pts = np.array([[200.0, 220.0], [185.0, 205.0], [215.0, 240.0]])
        q = apply_affine(c, pts)
        assert np.all((q >= 0) & (q < 63))
        blur = cv2.GaussianBlur(img.astype(np.float32) / 255, (0, 0), d)
        ref = cv2.remap(
            blur,
            pts[:, None, 0].astype(np.float32),
            pts[:, None, 1].astype(np.float32),
            cv2.INTER_LINEAR,
        ).ravel()
        got = cv2.remap(
            cv2.GaussianBlur(win, (0, 0), 1.0),
            q[:, None, 0].astype(np.float32),
            q[:, None, 1].astype(np.float32),
            cv2.INTER_LINEAR,
        ).ravel()
        assert np.abs(ref - got).max() < 0.15, (d, ref, got)
    # Off the image: white padding, no foreground.
    win, _, mask = crop_print(img[:120, :120], CropConfig((128, 128)))
    assert (win == 1.0).all() and not mask.any()
    with pytest.raises(ValueError, match="multiples of 8"):
        CropConfig((60, 64))
    with pytest.raises(ValueError, match="downscale"):
        CropConfig(downscale=3.0)
    with pytest.raises(ValueError, match="rng"):
        crop_print(img, CropConfig(jitter=2.0))


def test_grid_window_matches_pixel_loop() -> None:
    from ifvit_data.preprocess import grid_window

    g = np.random.default_rng(0).random((13, 11)) > 0.5
    for ox, oy in [(-20, -5), (0, 0), (60, 70), (30, -40), (-200, 10)]:
        ref = np.zeros((24, 32), bool)
        for y in range(24):
            for x in range(32):
                yy, xx = y + oy, x + ox
                if 0 <= yy and 0 <= xx and yy // 8 < 13 and xx // 8 < 11:
                    ref[y, x] = g[yy // 8, xx // 8]
        np.testing.assert_array_equal(grid_window(g, 8, ox, oy, (24, 32)), ref)
