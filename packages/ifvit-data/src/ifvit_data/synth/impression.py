"""One impression of a master fingerprint with its exact geometric map (SFinGe part 2).

Order (Cappelli, Maio & Maltoni 2002): contact region, ridge thickness, plastic distortion, noise
and grey levels, global rotation + translation, background, crop to the sensor size. The geometric
steps compose into `q = G(D(p))` (master point `p`, distortion `D`, placement `G`); both directions
are stored as dense fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ifvit_data.augment.geometric import fit_affine
from ifvit_data.synth.background import (
    SENSOR_STYLES,
    background,
    fine_grain,
    low_frequency_field,
)
from ifvit_data.synth.config import SynthConfig
from ifvit_data.synth.geometry import ImpressionGeometry, sample_geometry
from ifvit_data.synth.master import MasterPrint
from ifvit_data.synth.rng import STAGE_IMPRESSION, make_rng


@dataclass(frozen=True)
class Impression:
    """A rendered impression and its exact relation to the master.

    Attributes:
        finger: Finger identifier.
        impression: Impression identifier.
        class_name: Class of the finger.
        image: uint8 [H, W], ridges dark on a light background.
        mask: bool [H, W] foreground (contact region seen by the sensor):
            `geometry.seen(pixel centres)`.
        imp_to_master: float32 [H, W, 2]: for each impression pixel its master-frame (x, y).
        master_to_imp: float32 [Hm, Wm, 2]: for each master pixel its impression-frame (x, y).
        affine: float32 [2, 3] least-squares affine from master to impression over the contact
            region (OpenCV convention: `p_imp = A @ [x_master, y_master, 1]`).
        singular_points: ((x, y, kind), ...) in impression pixels (may fall outside the frame).
        params: Scalar parameters drawn for this impression (for the manifest).
        geometry: The analytic maps behind the fields (`ifvit_data.synth.geometry`).
    """

    finger: int
    impression: int
    class_name: str
    image: np.ndarray
    mask: np.ndarray
    imp_to_master: np.ndarray
    master_to_imp: np.ndarray
    affine: np.ndarray
    singular_points: tuple[tuple[float, float, str], ...]
    params: dict[str, float]
    geometry: ImpressionGeometry


def _ink(
    rng: np.random.Generator,
    profile: np.ndarray,
    edge: np.ndarray,
    level: float,
    noise: float,
) -> np.ndarray:
    """Ridge ink in [0, 1] on the sensor grid: the ridge profile thresholded by skin moisture.

    The threshold is `-0.45 * level` (dry > 0: thin ridges; wet < 0: thick ones) plus dry and wet
    patches and a rise towards the contact edge, where the pressure drops. A fine skin grain added
    to the profile breaks thin ridges into fragments and opens pores in thick ones. The threshold
    never moves a ridge's centre line, so the geometry stays exact.

    Args:
        rng: Random stream.
        profile: float32 [H, W] smoothed ridge field in [-1, 1] remapped to the sensor.
        edge: float32 [H, W] in [0, 1]: 1 well inside the contact, falling to 0 at its edge.
        level: Moisture level in [-1, 1].
        noise: Noise level in [0, 1].

    Returns:
        float32 [H, W].
    """
    shape = profile.shape
    patches = low_frequency_field(rng, shape, 45.0)
    tau = -0.45 * level + 0.22 * patches + 0.5 * (1.0 - edge)
    dryness = float(np.clip(-level, 0.0, 1.0))
    grain = fine_grain(rng, shape, 1.1)
    amp = (0.15 + 0.25 * dryness + 0.08 * abs(level)) * (0.5 + noise)
    return 1.0 / (1.0 + np.exp(-(profile + amp * grain - tau) / 0.08))


def _add_blobs(
    rng: np.random.Generator, ink: np.ndarray, n: int, value: float, on_ridge: bool
) -> None:
    """Paint `n` small discs of `value` at random ridge (or valley) pixels, in place."""
    if n <= 0:
        return
    sel = ink > 0.5 if on_ridge else ink < 0.5
    ys, xs = np.nonzero(sel)
    if len(ys) == 0:
        return
    for k in rng.choice(len(ys), size=min(n, len(ys)), replace=False):
        r = int(rng.integers(1, 3))
        cv2.circle(ink, (int(xs[k]), int(ys[k])), r, value, -1)


def render_impression(
    master: MasterPrint, seed: int, finger: int, impression: int, cfg: SynthConfig | None = None
) -> Impression:
    """Render impression `impression` of `master`; fully determined by the arguments.

    Args:
        master: The finger's master print (from `generate_master(seed, finger, cfg)`).
        seed: Dataset seed.
        finger: Finger identifier.
        impression: Impression identifier (datasets number impressions from 1).
        cfg: Generator configuration (default `SynthConfig()`).

    Returns:
        The impression, with dense maps in both directions and the best-fit affine.
    """
    cfg = cfg or SynthConfig()
    rng = make_rng(seed, finger, impression, STAGE_IMPRESSION)
    h, w = cfg.size
    hm, wm = cfg.master_size
    geom = sample_geometry(rng, master.shape, cfg)
    contact, dist, place = geom.contact, geom.distortion, geom.placement

    # exact maps: impression -> master (inverse) on the sensor grid, master -> impression (forward)
    qy, qx = np.mgrid[0:h, 0:w].astype(np.float64)
    grid = np.stack([qx.ravel(), qy.ravel()], axis=1)
    m64, seen = geom.seen(grid)
    imp_to_master = m64.reshape(h, w, 2).astype(np.float32)
    mask = seen.reshape(h, w)
    py, px = np.mgrid[0:hm, 0:wm].astype(np.float64)
    fx, fy = place.forward(*dist.forward(px, py))
    master_to_imp = np.stack([fx, fy], axis=-1).astype(np.float32)

    mapx, mapy = imp_to_master[..., 0], imp_to_master[..., 1]
    border = {"borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    soft = cv2.GaussianBlur(contact.astype(np.float32), (0, 0), 2.5)
    soft_i = cv2.remap(soft, mapx, mapy, cv2.INTER_LINEAR, **border)
    edge_m = cv2.GaussianBlur(contact.astype(np.float32), (0, 0), 14.0)
    edge_i = np.clip(2.0 * cv2.remap(edge_m, mapx, mapy, cv2.INTER_LINEAR, **border) - 0.6, 0, 1)
    prof_i = cv2.remap(
        master.profile, mapx, mapy, cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0,
    )
    crease_i = cv2.remap(master.creases, mapx, mapy, cv2.INTER_LINEAR, **border)

    nz = cfg.noise
    level = float(rng.uniform(*cfg.thickness_levels))
    ink_i = _ink(rng, prof_i, edge_i, level, nz) * (1.0 - crease_i)

    # pores (white on ridges), dirt (dark in valleys), scratches
    area = float(mask.sum())
    _add_blobs(rng, ink_i, int(rng.poisson(nz * area / 900.0)), 0.0, on_ridge=True)
    _add_blobs(rng, ink_i, int(rng.poisson(nz * area / 4000.0)), 1.0, on_ridge=False)
    if rng.random() < cfg.scratch_prob:
        for _ in range(int(rng.integers(1, 4))):
            p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            ang, ln = rng.uniform(0, np.pi), rng.uniform(30, 150)
            p1 = (int(p0[0] + ln * np.cos(ang)), int(p0[1] + ln * np.sin(ang)))
            cv2.line(ink_i, p0, p1, 0.0, int(rng.integers(1, 3)))
    ink_i = cv2.GaussianBlur(ink_i, (0, 0), 0.7)

    style = SENSOR_STYLES[cfg.sensor_style]
    contrast = rng.uniform(*style.contrast)
    pressure = np.clip(0.9 + 0.1 * low_frequency_field(rng, (h, w), 60.0), 0.7, 1.0)
    bg = background(rng, (h, w), style)
    img = bg - contrast * ink_i * soft_i * pressure
    img += rng.normal(0.0, style.noise_sigma * (0.5 + nz), size=(h, w)).astype(np.float32)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    ys, xs = np.nonzero(contact[::4, ::4])
    src = np.stack([xs * 4.0, ys * 4.0], axis=1)
    dst = master_to_imp[ys * 4, xs * 4].astype(np.float64)
    affine = fit_affine(src, dst, fallback=place.matrix())

    sps = []
    for p in master.singular_points:
        x, y = place.forward(*dist.forward(np.array(p.x), np.array(p.y)))
        sps.append((float(x), float(y), p.kind))
    params = {
        "rotation_deg": float(np.rad2deg(place.alpha)),
        "translation_x": place.tx - (w - 1) / 2,
        "translation_y": place.ty - (h - 1) / 2,
        "thickness_level": level,
        "distortion_phi_deg": float(np.rad2deg(dist.phi)),
        "distortion_dx": dist.dx,
        "distortion_dy": dist.dy,
        "contrast": float(contrast),
    }
    return Impression(
        finger=int(finger),
        impression=int(impression),
        class_name=master.class_name,
        image=image,
        mask=mask,
        imp_to_master=imp_to_master,
        master_to_imp=master_to_imp,
        affine=affine,
        singular_points=tuple(sps),
        params=params,
        geometry=geom,
    )
