"""prepare_image: the file -> model-window map is exact, also with the bundle's downscale."""

import numpy as np
import pytest
from PIL import Image

from ifvit_train.serving.infer import prepare_image


@pytest.mark.parametrize("downscale, dpi", [(1.0, None), (1.6, None), (2.0, 1000.0)])
def test_to_window_maps_a_file_pixel_onto_the_same_feature(tmp_path, downscale, dpi):
    h, w = 300, 260
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w), 255, np.uint8)
    disc = np.hypot(xx - 130, yy - 150) < 110
    img[disc] = (128 + 60 * np.cos(2 * np.pi * xx[disc] / 9.0)).astype(np.uint8)
    dot = (117.0, 163.0)  # (x, y) in file pixels: the centre of a black 13x13 square
    img[157:170, 111:124] = 0
    path = tmp_path / "p.png"
    Image.fromarray(img).save(path)
    p = prepare_image(path, 128, dpi=dpi, downscale=downscale)
    x, y = p.to_window[:2, :2] @ np.array(dot) + p.to_window[:2, 2]
    win = p.window
    ys, xs = np.nonzero(win < 0.1)  # the dot is the only black area
    assert len(xs) > 0
    assert abs(xs.mean() - x) < 0.75 and abs(ys.mean() - y) < 0.75, ((xs.mean(), ys.mean()), (x, y))
    # the scale of the map is the resampling times the downscale
    scale = (500.0 / (dpi or 500.0)) / downscale
    np.testing.assert_allclose(np.linalg.svd(p.to_window[:2, :2], compute_uv=False), [scale] * 2,
                               rtol=0.02)
