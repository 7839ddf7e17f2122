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


def test_growing_window_holds_the_whole_print(make_ridges: Callable[..., np.ndarray]) -> None:
    from ifvit_data.preprocess import window_size

    # A tall print (like FVC2002 DB2 at 500 ppi): 480 x 200, the ridge pattern filling it.
    img = make_ridges(480, 200, seed=3)
    fixed = CropConfig((256, 256), downscale=1.25)
    grow = CropConfig((256, 256), downscale=1.25, max_size=(512, 512))
    # 480 / 1.25 = 384 -> 384 (a multiple of 64); 200 / 1.25 = 160 -> at least 256.
    assert window_size(grow, (384, 160)) == (384, 256)
    assert window_size(grow, (385, 160)) == (448, 256)  # rounded up to the next step
    assert window_size(grow, (900, 700)) == (512, 512)  # clipped: cut around the centroid
    assert window_size(fixed, (384, 160)) == (256, 256)
    win_f, c_f, _ = crop_print(img, fixed)
    win_g, c, mask_g = crop_print(img, grow)
    assert win_g.shape == mask_g.shape == (384, 256)
    ys, xs = np.nonzero(img < 255)
    print_px = np.stack([xs, ys], 1).astype(np.float64)  # every pixel of the print

    def inside(cc: np.ndarray, hw: tuple[int, int]) -> float:
        """Fraction of the print's pixels that land in a window of `hw`."""
        q = apply_affine(cc, print_px)
        return float(np.mean(np.all((q >= -0.5) & (q <= np.array(hw[::-1]) - 0.5), axis=1)))

    assert inside(c, (384, 256)) == 1.0  # the growing window holds the whole print
    assert inside(c_f, (256, 256)) < 0.85  # the fixed one cuts it along its length
    # The same print, same centre: the fixed window is the middle of the growing one.
    np.testing.assert_array_equal(win_g[64:320], win_f)
    with pytest.raises(ValueError, match="smaller than size"):
        CropConfig((256, 256), max_size=(128, 512))
    with pytest.raises(ValueError, match="step"):
        CropConfig(max_size=(256, 256), step=12)
