"""Tests of the synthetic fingerprint generator (ifvit_data.synth)."""

from __future__ import annotations

import dataclasses
import json
import sys

import cv2
import numpy as np
import pytest

from ifvit_data.outputs import MARKER_NAME, OutputError
from ifvit_data.synth import (
    CLASS_NAMES,
    SFINGE_CLASS_PROBS,
    SynthConfig,
    correspondence,
    generate_dataset,
    generate_master,
    impression_geometry,
    master_silhouette,
    poincare_index,
    render_impression,
)
from ifvit_data.synth.orientation import sample_class

CFG = SynthConfig()


def _cfg_for(cls: str) -> SynthConfig:
    return SynthConfig(class_probs=tuple(1.0 if c == cls else 0.0 for c in CLASS_NAMES))


@pytest.fixture(scope="module")
def loop_finger():
    cfg = _cfg_for("left_loop")
    master = generate_master(7, 3, cfg)
    imps = [render_impression(master, 7, 3, k, cfg) for k in (1, 2)]
    return cfg, master, imps


@pytest.fixture(scope="module")
def clean_loop_finger():
    """Renderings that differ only in geometry, contrast and mild noise (no moisture, creases)."""
    cfg = dataclasses.replace(
        _cfg_for("left_loop"), thickness_levels=(0.0, 0.0), noise=0.1, scratch_prob=0.0,
        creases=(0, 0),
    )
    master = generate_master(7, 3, cfg)
    imps = [render_impression(master, 7, 3, k, cfg) for k in (1, 2)]
    return cfg, master, imps


def _dominant_period(img: np.ndarray, mask: np.ndarray) -> float:
    """Dominant ridge period (px) from the radial peak of the 2-D spectrum of the foreground."""
    ys, xs = np.nonzero(mask)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    half = 64
    patch = img[cy - half : cy + half, cx - half : cx + half].astype(np.float64)
    m = mask[cy - half : cy + half, cx - half : cx + half]
    assert m.mean() > 0.9, "test window must lie on the foreground"
    patch = (patch - patch.mean()) * np.outer(np.hanning(2 * half), np.hanning(2 * half))
    spec = np.abs(np.fft.fftshift(np.fft.fft2(patch))) ** 2
    fy, fx = np.meshgrid(np.arange(-half, half), np.arange(-half, half), indexing="ij")
    rad = np.hypot(fx, fy) / (2 * half)  # cycles / px
    bins = np.arange(0.03, 0.3, 1 / (2 * half))
    power = [spec[(rad >= lo) & (rad < lo + 1 / (2 * half))].sum() for lo in bins]
    f = bins[int(np.argmax(power))] + 0.5 / (2 * half)
    return 1.0 / f


def test_no_forbidden_imports() -> None:
    for name in ("jax", "flax", "torch"):
        assert name not in sys.modules


def test_determinism_and_variation(loop_finger) -> None:
    cfg, master, (a, b) = loop_finger
    again = render_impression(generate_master(7, 3, cfg), 7, 3, 1, cfg)
    assert again.image.tobytes() == a.image.tobytes()
    assert np.array_equal(again.imp_to_master, a.imp_to_master)
    assert a.image.shape == cfg.size and a.image.dtype == np.uint8
    assert not np.array_equal(a.image, b.image)
    other = generate_master(7, 4, cfg)
    assert not np.array_equal(other.binary, master.binary)


def test_ridge_period_in_range(loop_finger) -> None:
    """Ridge period like FVC2002 at 500 dpi (8.5-8.8 px measured on DB2 rescaled and DB3)."""
    _, master, (a, _) = loop_finger
    p_master = _dominant_period(((master.ridges + 1) * 127).astype(np.uint8), master.silhouette)
    p_imp = _dominant_period(a.image, a.mask)
    assert 7.5 <= p_master <= 9.8, p_master
    assert 7.5 <= p_imp <= 9.8, p_imp
    # the grown ridges follow the requested period map (in the same 128x128 window)
    ys, xs = np.nonzero(master.silhouette)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    want = float(np.median(master.period[cy - 64 : cy + 64, cx - 64 : cx + 64]))
    assert abs(p_master - want) < 0.1 * want, (p_master, want)


def test_ridges_dark_on_light(loop_finger) -> None:
    _, _, (a, _) = loop_finger
    assert a.image[~a.mask].mean() > a.image[a.mask].mean() + 30
    assert 0.15 < a.mask.mean() < 0.95


@pytest.mark.parametrize("cls", ["left_loop", "right_loop", "whorl", "tented_arch"])
def test_poincare_index_at_singular_points(cls: str) -> None:
    master = generate_master(11, 1, _cfg_for(cls))
    pts = master.singular_points
    expect = {"left_loop": 2, "right_loop": 2, "whorl": 4, "tented_arch": 2}[cls]
    assert len(pts) == expect
    assert sum(p.kind == "core" for p in pts) == expect // 2
    for p in pts:
        others = [np.hypot(p.x - q.x, p.y - q.y) for q in pts if q is not p]
        r = min(10.0, 0.45 * min(others))
        want = 0.5 if p.kind == "core" else -0.5
        assert poincare_index(master.orientation, p.x, p.y, r) == pytest.approx(want, abs=0.05)
    # a loop that encloses every singular point has index (cores - deltas) / 2 = 0
    xs = [p.x for p in pts]
    ys = [p.y for p in pts]
    cx, cy = float(np.mean(xs)), float(np.mean(ys))
    r_all = max(np.hypot(x - cx, y - cy) for x, y in zip(xs, ys, strict=True)) + 8
    h, w = master.orientation.shape
    if r_all < min(cx, cy, w - 1 - cx, h - 1 - cy):
        assert poincare_index(master.orientation, cx, cy, r_all) == pytest.approx(0.0, abs=0.05)
    # small loops away from every singular point have index 0
    ys_, xs_ = np.nonzero(master.silhouette[::40, ::40])
    for y, x in zip(ys_ * 40, xs_ * 40, strict=True):
        far = min(np.hypot(x - q.x, y - q.y) for q in pts) > 30
        if far and 15 <= x < w - 15 and 15 <= y < h - 15:
            assert poincare_index(master.orientation, x, y, 12) == pytest.approx(0.0, abs=0.05)


def test_arch_has_no_singularity() -> None:
    master = generate_master(5, 2, _cfg_for("arch"))
    assert master.class_name == "arch" and master.singular_points == ()
    h, w = master.orientation.shape
    ys, xs = np.nonzero(master.silhouette[::24, ::24])
    for y, x in zip(ys * 24, xs * 24, strict=True):
        if 15 <= x < w - 15 and 15 <= y < h - 15:
            assert poincare_index(master.orientation, x, y, 12) == pytest.approx(0.0, abs=0.05)


def test_ridges_follow_orientation_field(loop_finger) -> None:
    """Orientation estimated from the rendered master ridges agrees with the model field."""
    _, master, _ = loop_finger
    img = master.ridges.astype(np.float32)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), 6)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), 6)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), 6)
    est = 0.5 * np.arctan2(2 * jxy, jxx - jyy) + np.pi / 2  # ridge direction = normal + 90 deg
    inner = cv2.erode(master.silhouette.astype(np.uint8), np.ones((31, 31), np.uint8)) > 0
    diff = np.abs(np.angle(np.exp(2j * (est - master.orientation)))) / 2
    assert np.median(diff[inner]) < np.deg2rad(8)


def test_maps_are_mutually_inverse(loop_finger) -> None:
    _, _, (a, _) = loop_finger
    from ifvit_data.synth import sample_field

    ys, xs = np.nonzero(a.mask[::7, ::7])
    q = np.stack([xs * 7.0, ys * 7.0], axis=1)
    back = sample_field(a.master_to_imp, sample_field(a.imp_to_master, q))
    assert np.nanmax(np.abs(back - q)) < 0.05


def _ncc(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def _warp_a_into_b(a, b, shift=(0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    h, w = b.image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    q = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64)
    p = correspondence(b, a)(q).reshape(h, w, 2).astype(np.float32)
    common = np.isfinite(p[..., 0])
    p = np.nan_to_num(p, nan=-10.0) + np.asarray(shift, np.float32)
    warped = cv2.remap(a.image.astype(np.float32), p[..., 0], p[..., 1], cv2.INTER_LINEAR)
    return warped, common


def _centre_window_nccs(master, a, b, warped, common) -> tuple[float, float]:
    """NCC in a 60x60 window at the centre of the overlap: exact map, and map off by half a period.

    The half-period shift is along the ridge normal (the master normal rotated by a's rotation), so
    it puts a's ridges on b's valleys: the NCC must turn negative if the map is exact.
    """
    ys, xs = np.nonzero(common)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    mx, my = a.imp_to_master[cy, cx]
    th = float(master.orientation[int(my), int(mx)])
    per = float(master.period[int(my), int(mx)])
    win = np.zeros_like(common)
    win[cy - 30 : cy + 30, cx - 30 : cx + 30] = True
    win &= common
    rot = np.arctan2(a.affine[1, 0], a.affine[0, 0])
    n = np.array([-np.sin(th + rot), np.cos(th + rot)]) * per / 2
    shifted, _ = _warp_a_into_b(a, b, shift=(float(n[0]), float(n[1])))
    target = b.image[win].astype(np.float32)
    return _ncc(warped[win], target), _ncc(shifted[win], target)


def test_correspondence_reproduces_ridges(clean_loop_finger) -> None:
    """Warping a into b via the correspondence lines up the ridges (NCC), unrelated prints do not.

    Two clean renderings of one ridge pattern differ only by contrast and mild noise, so their NCC
    over the common foreground is high (> 0.5). For independent fingers the ridges have random
    relative phase: the expected NCC is 0 with a standard deviation of about
    1/sqrt(#independent samples) ~ 1/sqrt(overlap / period^2) ~ 0.05, so 0.2 is a > 4 sigma bound.
    A half-period shift of the exact map turns ridges onto valleys and must make the NCC negative,
    which shows the map is exact to well under a ridge period.
    """
    cfg, master, (a, b) = clean_loop_finger
    warped, common = _warp_a_into_b(a, b)
    assert common.mean() > 0.2
    ncc = _ncc(warped[common], b.image[common].astype(np.float32))
    assert ncc > 0.5, ncc
    assert np.array_equal(common, common & b.mask)
    exact, half = _centre_window_nccs(master, a, b, warped, common)
    assert exact > 0.5 and half < 0.0, (exact, half)
    # an unrelated finger, same frame
    other = render_impression(generate_master(7, 9, cfg), 7, 9, 1, cfg)
    both = b.mask & other.mask
    unrelated = _ncc(other.image[both].astype(np.float32), b.image[both].astype(np.float32))
    assert abs(unrelated) < 0.2, unrelated
    # points outside b's contact region map to NaN
    out = correspondence(a, b)(np.array([[-5.0, -5.0], [1e4, 3.0]]))
    assert np.isnan(out).all()


def test_correspondence_maps_ridges_onto_ridges_with_default_rendering(loop_finger) -> None:
    """With dry/wet fragmentation, creases and noise the ridges still line up under the map.

    The default renderings of one finger differ in moisture (ridge width, fragments), so the NCC is
    lower than for clean renderings but stays well above the unrelated-finger bound (0.2, see
    above); half a period off turns it negative.
    """
    _, master, (a, b) = loop_finger
    warped, common = _warp_a_into_b(a, b)
    assert _ncc(warped[common], b.image[common].astype(np.float32)) > 0.3
    exact, half = _centre_window_nccs(master, a, b, warped, common)
    assert exact > 0.3 and half < 0.0, (exact, half)
    # a's pixels on master ridges land on the same master points in b, where b's image is dark
    from ifvit_data.synth import sample_field

    ys, xs = np.nonzero(a.mask)
    prof = sample_field(master.profile[..., None], a.imp_to_master[ys, xs])[:, 0]
    q = correspondence(a, b)(np.stack([xs, ys], axis=1).astype(np.float64))
    ok = np.isfinite(q[:, 0])
    m_b = sample_field(b.imp_to_master, q[ok])
    assert np.nanmax(np.abs(m_b - a.imp_to_master[ys[ok], xs[ok]])) < 0.05
    grey = sample_field(b.image[..., None].astype(np.float32), q[ok])[:, 0]
    on_ridge, on_valley = grey[prof[ok] > 0.5], grey[prof[ok] < -0.5]
    r, v = np.nanmean(on_ridge), np.nanmean(on_valley)
    assert r < v - 30, (r, v)


def test_singular_points_in_image_coords(loop_finger) -> None:
    _, master, (a, _) = loop_finger
    for p, (x, y, kind) in zip(master.singular_points, a.singular_points, strict=True):
        assert kind == p.kind
        aff = a.affine @ np.array([p.x, p.y, 1.0])
        assert np.hypot(aff[0] - x, aff[1] - y) < 15  # affine best fit vs exact (distortion)


def test_class_distribution_sampling() -> None:
    rng = np.random.default_rng(0)
    n = 20000
    counts = {c: 0 for c in CLASS_NAMES}
    for _ in range(n):
        counts[sample_class(rng, SFINGE_CLASS_PROBS)] += 1
    for c, p in zip(CLASS_NAMES, SFINGE_CLASS_PROBS, strict=True):
        assert abs(counts[c] / n - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3, (c, counts[c])


def test_dataset_manifest_idempotent_and_worker_independent(tmp_path) -> None:
    cfg = SynthConfig(size=(160, 144), master_size=(240, 208))
    one, two = tmp_path / "w1", tmp_path / "w2"
    calls = []
    m1 = generate_dataset(one, 2, 2, 3, cfg, workers=1, progress=lambda d, t: calls.append((d, t)))
    generate_dataset(two, 2, 2, 3, cfg, workers=2)
    names = sorted(p.name for p in one.iterdir() if p.name != MARKER_NAME)
    assert names == ["1_1.png", "1_2.png", "2_1.png", "2_2.png", "manifest.json"]
    assert (one / MARKER_NAME).is_file()
    assert sorted(p.name for p in two.iterdir() if p.name != MARKER_NAME) == names
    for n in names:
        assert (one / n).read_bytes() == (two / n).read_bytes(), n
    assert calls[-1] == (4, 4)
    man = json.loads((one / "manifest.json").read_text())
    assert man == m1
    assert man["seed"] == 3 and man["fingers"] == 2 and man["impressions"] == 2
    assert man["config"]["size"] == [160, 144]
    assert [e["file"] for e in man["images"]] == names[:-1]
    e = man["images"][0]
    assert e["finger"] == 1 and e["impression"] == 1 and e["class"] in CLASS_NAMES
    assert np.asarray(e["affine"]).shape == (2, 3)
    assert all(sp["type"] in ("core", "delta") for sp in e["singular_points"])
    from PIL import Image

    with Image.open(one / "1_1.png") as im:
        assert im.mode == "L" and im.size == (144, 160)
        assert tuple(round(v) for v in im.info["dpi"]) == (500, 500)
    import hashlib

    for e in man["images"]:  # the manifest's pixel hash is the PNG's pixels (shape + raw bytes)
        with Image.open(one / e["file"]) as im:
            px = np.asarray(im)
        want = hashlib.sha256(f"{px.shape[0]}x{px.shape[1]}\n".encode() + px.tobytes()).hexdigest()
        assert e["pixels_sha256"] == want
    before = {n: (one / n).stat().st_mtime_ns for n in names}
    generate_dataset(one, 2, 2, 3, cfg, workers=1)
    assert {n: (one / n).stat().st_mtime_ns for n in names} == before
    assert not [p for p in one.iterdir() if p.name.startswith(".") and p.name != MARKER_NAME]
    with pytest.raises(OutputError, match="different synthetic dataset"):
        generate_dataset(one, 2, 2, 4, cfg, workers=1)
    assert {n: (one / n).stat().st_mtime_ns for n in names} == before
    # --force replaces it; images of the old set that the new one lacks are removed (ours)
    generate_dataset(one, 1, 1, 4, cfg, workers=1, force=True)
    assert sorted(p.name for p in one.iterdir() if p.name != MARKER_NAME) == [
        "1_1.png", "manifest.json"
    ]


def test_dataset_refuses_a_users_folder(tmp_path) -> None:
    cfg = SynthConfig(size=(64, 64), master_size=(96, 96))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "1_1.png").write_bytes(b"the user's own print")
    with pytest.raises(OutputError, match="not empty"):
        generate_dataset(mine, 1, 1, 0, cfg, workers=1)
    assert sorted(p.name for p in mine.iterdir()) == ["1_1.png"]
    assert (mine / "1_1.png").read_bytes() == b"the user's own print"


def test_minutiae_extraction_on_known_shapes() -> None:
    from ifvit_data.synth import BIFURCATION, ENDING, extract_minutiae

    img = np.zeros((60, 80), np.uint8)
    cv2.line(img, (10, 30), (40, 30), 1, 3)  # stem
    cv2.line(img, (40, 30), (70, 10), 1, 3)  # two branches: a "Y" lying on its side
    cv2.line(img, (40, 30), (70, 50), 1, 3)
    mn = extract_minutiae(img > 0, np.ones_like(img, bool), border=2)
    assert (mn[:, 2] == ENDING).sum() == 3
    assert (mn[:, 2] == BIFURCATION).sum() >= 1
    bif = mn[mn[:, 2] == BIFURCATION][:, :2]
    assert np.all(np.hypot(bif[:, 0] - 40, bif[:, 1] - 30) < 5)


def test_masters_have_minutiae(loop_finger) -> None:
    from ifvit_data.synth import BIFURCATION, ENDING, extract_minutiae

    _, master, _ = loop_finger
    mn = extract_minutiae(master.binary, master.silhouette)
    n_end = int((mn[:, 2] == ENDING).sum())
    n_bif = int((mn[:, 2] == BIFURCATION).sum())
    # real full prints at 500 dpi carry roughly 30-100 minutiae; noise would give hundreds
    assert n_end >= 8 and n_bif >= 5, (n_end, n_bif)
    assert n_end + n_bif < 150


@pytest.mark.parametrize("cls,lo", [("arch", 3.0), ("whorl", 5.0)])
def test_minutiae_density(cls: str, lo: float) -> None:
    """Masters carry minutiae at a plausible density (per 100x100 px at 500 dpi), arches fewer."""
    from ifvit_data.synth import extract_minutiae

    dens = []
    for f in (1, 2):
        m = generate_master(0, f, _cfg_for(cls))
        dens.append(len(extract_minutiae(m.binary, m.silhouette)) / m.silhouette.sum() * 1e4)
    assert lo < np.mean(dens) < 14.0, dens


def test_geometry_without_rendering_matches_impression(loop_finger) -> None:
    """`impression_geometry` (no ridge growth) reproduces the rendered impression's maps exactly."""
    from ifvit_data.synth import impression_geometry, master_silhouette

    cfg, master, (a, _) = loop_finger
    assert master_silhouette(7, 3, cfg) == master.shape
    g = impression_geometry(7, 3, 1, cfg)
    assert np.array_equal(g.contact, a.geometry.contact)
    assert g.distortion == a.geometry.distortion and g.placement == a.geometry.placement
    # the mask is the geometry's visibility at pixel centres, point by point or on the grid
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(0, cfg.size[0], 3000), rng.integers(0, cfg.size[1], 3000)
    m, seen = g.seen(np.stack([xs, ys], axis=1).astype(np.float64))
    assert np.array_equal(seen, a.mask[ys, xs])
    assert np.array_equal(m.astype(np.float32), a.imp_to_master[ys, xs])


def test_distortion_is_invertible_pointwise() -> None:
    """Strongest distortion drawn: forward then inverse is the identity; one point = a batch."""
    from ifvit_data.synth.distortion import PlasticDistortion

    d = PlasticDistortion(170.0, 240.0, 40.0, 60.0, 45.0, np.deg2rad(6.0), 12.0, -12.0)
    yy, xx = np.mgrid[0:480:3, 0:336:3].astype(np.float64)
    fx, fy = d.forward(xx, yy)
    jac = np.gradient(fx, axis=1) * np.gradient(fy, axis=0) - np.gradient(fx, axis=0) * np.gradient(
        fy, axis=1
    )
    assert jac.min() > 0.1  # no folds
    bx, by = d.inverse(fx, fy)
    assert max(np.abs(bx - xx).max(), np.abs(by - yy).max()) < 1e-4
    one = d.inverse(fx[40:41, 50], fy[40:41, 50])
    assert one[0][0] == bx[40, 50] and one[1][0] == by[40, 50]
    nan = d.inverse(np.array([np.nan, 3.0]), np.array([1.0, 2.0]))
    assert np.isnan(nan[0][0]) and np.isfinite(nan[0][1])


def test_partial_contact_and_varying_overlap(loop_finger) -> None:
    """Impressions of one finger are cut by the frame and overlap each other by varying amounts."""
    cfg, master, _ = loop_finger
    imps = [render_impression(master, 7, 3, k, cfg) for k in range(1, 9)]
    h, w = cfg.size
    yy, xx = np.mgrid[0:h, 0:w]
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64)
    overlaps = []
    for i in range(8):
        for j in range(i + 1, 8):
            q = correspondence(imps[i], imps[j])(grid)
            overlaps.append(np.isfinite(q[:, 0]).sum() / imps[i].mask.sum())
    assert min(overlaps) < 0.6 and max(overlaps) > 0.85, (min(overlaps), max(overlaps))
    cut = [a.mask[0].any() or a.mask[-1].any() or a.mask[:, 0].any() or a.mask[:, -1].any()
           for a in imps]
    assert sum(cut) >= 4
    fg = [a.mask.mean() for a in imps]
    assert max(fg) - min(fg) > 0.15, fg


def test_dry_and_wet_rendering() -> None:
    """Dry skin: thin ridges broken into fragments; wet: thick, merged ridges; same ridge lines."""
    import cv2 as _cv2

    out = {}
    for level in (-1.0, 1.0):
        cfg = dataclasses.replace(_cfg_for("left_loop"), thickness_levels=(level, level))
        master = generate_master(7, 3, cfg)
        a = render_impression(master, 7, 3, 1, cfg)
        bg = float(np.median(a.image[~a.mask]))
        dark = (a.image < bg - 60) & a.mask
        n, _ = _cv2.connectedComponents(dark.astype(np.uint8))
        ys, xs = np.nonzero(a.mask)
        from ifvit_data.synth import sample_field

        prof = sample_field(master.profile[..., None], a.imp_to_master[ys, xs])[:, 0]
        on_ridge = dark[ys, xs][prof > 0.5].mean()
        on_valley = dark[ys, xs][prof < -0.5].mean()
        out[level] = (dark.sum() / a.mask.sum(), n / a.mask.sum() * 1000, on_ridge, on_valley)
    dry, wet = out[-1.0], out[1.0]
    assert dry[0] < wet[0] - 0.2, (dry, wet)  # less ink
    assert dry[1] > 10 * wet[1], (dry, wet)  # many more fragments per area
    for _, _, on_ridge, on_valley in (dry, wet):
        assert on_ridge > on_valley + 0.3  # ink stays on the master's ridges


@pytest.mark.parametrize("style,lo,hi", [(0, 220, 256), (1, 170, 215), (2, 110, 170)])
def test_sensor_styles(style: int, lo: float, hi: float) -> None:
    """Style 0 is a white background; every style keeps dark ridges on a lighter background."""
    cfg = dataclasses.replace(_cfg_for("whorl"), sensor_style=style)
    a = render_impression(generate_master(2, 1, cfg), 2, 1, 1, cfg)
    far = cv2.erode((~a.mask).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert far.mean() > 0.02
    bg = float(np.median(a.image[far]))
    assert lo <= bg <= hi, bg
    assert np.percentile(a.image[a.mask], 20) < bg - 50


def test_creases_are_shared_by_impressions() -> None:
    """Creases belong to the finger: on them ridges render light in every impression."""
    from ifvit_data.synth import sample_field

    cfg = dataclasses.replace(_cfg_for("left_loop"), creases=(8, 8), thickness_levels=(0.3, 0.3))
    master = generate_master(4, 2, cfg)
    assert (master.creases > 0.8).sum() > 100
    for k in (1, 2):
        a = render_impression(master, 4, 2, k, cfg)
        ys, xs = np.nonzero(a.mask)
        m = a.imp_to_master[ys, xs]
        crease = sample_field(master.creases[..., None], m)[:, 0]
        ridge = sample_field(master.profile[..., None], m)[:, 0] > 0.5
        on = a.image[ys, xs][ridge & (crease > 0.5)]
        off = a.image[ys, xs][ridge & (crease < 0.01)]
        assert len(on) > 20
        assert on.mean() > off.mean() + 40, (on.mean(), off.mean())


def test_same_class_fingers_vary() -> None:
    """Loops differ in where the delta sits and in their flow (smooth per-finger perturbation)."""
    from ifvit_data.synth.orientation import perturbation, sample_orientation_model
    from ifvit_data.synth.silhouette import Silhouette

    sil = Silhouette(168.0, 240.0, 130.0, 130.0, 140.0, 100.0, 110.0)
    rng = np.random.default_rng(0)
    models = [sample_orientation_model(rng, "left_loop", sil) for _ in range(12)]
    offs = np.array([[d.x - c.x, d.y - c.y] for c, d in (m.points for m in models)])
    assert offs[:, 0].std() > 15 and offs[:, 1].std() > 15, offs.std(axis=0)
    fields = [perturbation(m, (480, 336)) for m in models]
    diffs = [np.abs(fields[i] - fields[i + 1]).mean() for i in range(11)]
    assert min(diffs) > 0.03, diffs


# generator 1.x's defaults (commit 04735d1's config.py) and the off values the plain preset
# documents
PLAIN_EXPECTED = {
    "period_range": (8.3, 9.6),
    "n_seeds": (24, 48),
    "max_translation_px": 25.0,
    "contact_shift_px": 30.0,
    "contact_scale": (0.8, 1.05),
    "distortion": 0.6,
    "thickness_levels": (0.0, 0.0),
    "scratch_prob": 0.0,
    "creases": (0, 0),
}


def test_plain_preset_differs_where_documented() -> None:
    from ifvit_data.synth.config import REALISM_PLAIN, REALISM_PRESETS

    plain, full = SynthConfig.plain(), SynthConfig()
    changed = {f.name for f in dataclasses.fields(SynthConfig)
               if getattr(plain, f.name) != getattr(full, f.name)}
    assert changed == set(PLAIN_EXPECTED) == set(REALISM_PLAIN)
    assert {k: getattr(plain, k) for k in PLAIN_EXPECTED} == PLAIN_EXPECTED
    for name in PLAIN_EXPECTED:  # the docstring's table names every changed field
        assert f"#: | {name} |" in open(sys.modules[SynthConfig.__module__].__file__).read()
    assert (full.realism, plain.realism) == ("full", "plain")
    assert REALISM_PRESETS == ("full", "plain")
    assert SynthConfig.preset("plain", size=(128, 112)) == SynthConfig.plain(size=(128, 112))
    assert SynthConfig.preset("plain", size=(128, 112)).realism == "plain"  # size is not realism
    assert SynthConfig.plain(distortion=1.0).realism == "custom"
    with pytest.raises(ValueError, match="unknown realism preset"):
        SynthConfig.preset("ultra")
    d = plain.to_dict()
    assert d["realism"] == "plain" and SynthConfig.from_dict(json.loads(json.dumps(d))) == plain
    with pytest.raises(ValueError, match="realism 'full'"):
        SynthConfig.from_dict({**d, "realism": "full"})


def test_plain_geometry_is_milder() -> None:
    """Plain impressions stay near the centre, touch with most of the finger, distort little."""
    stats = {}
    for name, cfg in (("full", SynthConfig()), ("plain", SynthConfig.plain())):
        geoms = [impression_geometry(3, f, k, cfg) for f in range(1, 5) for k in range(1, 9)]
        t = [max(abs(g.placement.tx - 149.5), abs(g.placement.ty - 149.5)) for g in geoms]
        disp = [max(abs(g.distortion.dx), abs(g.distortion.dy)) for g in geoms]
        contact = [g.contact.sum() / master_silhouette(3, f, cfg).mask(cfg.master_size).sum()
                   for f in range(1, 5) for g in geoms[(f - 1) * 8 : f * 8]]
        stats[name] = (max(t), max(disp), min(contact), float(np.mean(contact)))
    full, plain = stats["full"], stats["plain"]
    assert plain[0] <= 25.0 < full[0] and plain[1] <= 0.6 * 12 < full[1], stats
    assert plain[2] > full[2] and plain[3] > full[3] + 0.05, stats


def test_plain_images_differ_and_have_no_creases() -> None:
    cfg_full = SynthConfig(size=(160, 160), master_size=(240, 208))
    cfg_plain = SynthConfig.plain(size=(160, 160), master_size=(240, 208))
    full = render_impression(generate_master(2, 1, cfg_full), 2, 1, 1, cfg_full)
    master_plain = generate_master(2, 1, cfg_plain)
    plain = render_impression(master_plain, 2, 1, 1, cfg_plain)
    assert full.image.shape == plain.image.shape
    assert np.abs(full.image.astype(int) - plain.image.astype(int)).mean() > 10
    assert not master_plain.creases.any()


def test_a_manifest_without_the_realism_label_still_matches(tmp_path) -> None:
    """Sets written before `realism` was recorded are still complete (no regeneration)."""
    cfg = SynthConfig(size=(64, 64), master_size=(96, 96))
    generate_dataset(tmp_path / "s", 1, 1, 0, cfg, workers=1)
    path = tmp_path / "s" / "manifest.json"
    man = json.loads(path.read_text())
    del man["config"]["realism"]
    path.write_text(json.dumps(man))
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "s").iterdir()}
    generate_dataset(tmp_path / "s", 1, 1, 0, cfg, workers=1)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "s").iterdir()} == before
    with pytest.raises(OutputError, match="realism full"):
        generate_dataset(tmp_path / "s", 1, 1, 0, SynthConfig.plain(size=(64, 64),
                                                                   master_size=(96, 96)), workers=1)


def test_a_killed_run_leaves_nothing_that_a_rerun_keeps(tmp_path) -> None:
    """A run killed before its manifest leaves images (here: a 3 x 2 set without manifest); a rerun
    with other flags, with or without --force, ends with exactly the images its manifest lists."""
    cfg = SynthConfig(size=(64, 64), master_size=(96, 96))
    for force in (False, True):
        out = tmp_path / f"force{force}"
        generate_dataset(out, 3, 2, 5, cfg, workers=1)
        (out / "manifest.json").unlink()  # what a SIGKILL before the manifest leaves behind
        man = generate_dataset(out, 2, 1, 6, cfg, workers=1, force=force)
        listed = sorted(e["file"] for e in man["images"])
        assert listed == ["1_1.png", "2_1.png"]
        assert sorted(p.name for p in out.iterdir() if p.name != MARKER_NAME) == [
            *listed, "manifest.json"]


def test_a_run_killed_while_replacing_a_dataset_leaves_no_manifest(tmp_path) -> None:
    """--force replacing a complete dataset first removes its manifest: killed half-way, the folder
    never claims the old dataset over a mix of old and new images (rerunning the old flags
    regenerates instead of returning early)."""
    cfg = SynthConfig(size=(64, 64), master_size=(96, 96))
    out = tmp_path / "s"
    generate_dataset(out, 2, 1, 5, cfg, workers=1)
    reference = (out / "1_1.png").read_bytes()

    def killed(done, total):
        raise KeyboardInterrupt  # interrupted after its first image

    with pytest.raises(KeyboardInterrupt):
        generate_dataset(out, 2, 1, 6, cfg, workers=1, force=True, progress=killed)
    assert not (out / "manifest.json").exists()
    generate_dataset(out, 2, 1, 5, cfg, workers=1, force=True)
    assert (out / "1_1.png").read_bytes() == reference


def test_force_on_a_users_folder_deletes_none_of_their_files(tmp_path) -> None:
    cfg = SynthConfig(size=(64, 64), master_size=(96, 96))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "7_7.png").write_bytes(b"the user's own print")
    generate_dataset(mine, 1, 1, 0, cfg, workers=1, force=True)
    assert (mine / "7_7.png").read_bytes() == b"the user's own print"
