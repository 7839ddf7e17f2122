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

from ifvit_data.synth.background import SENSOR_STYLES, background, low_frequency_field
from ifvit_data.synth.config import SynthConfig
from ifvit_data.synth.distortion import PlasticDistortion, Placement
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
        mask: bool [H, W] foreground (contact region seen by the sensor).
        imp_to_master: float32 [H, W, 2]: for each impression pixel its master-frame (x, y).
        master_to_imp: float32 [Hm, Wm, 2]: for each master pixel its impression-frame (x, y).
        affine: float32 [2, 3] least-squares affine from master to impression over the contact
            region (OpenCV convention: `p_imp = A @ [x_master, y_master, 1]`).
        singular_points: ((x, y, kind), ...) in impression pixels (may fall outside the frame).
        params: Scalar parameters drawn for this impression (for the manifest).
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


def _sample_geometry(
    rng: np.random.Generator, master: MasterPrint, cfg: SynthConfig
) -> tuple[np.ndarray, PlasticDistortion, Placement]:
    """Contact region (master mask), plastic distortion and placement."""
    sil = master.shape
    hm, wm = cfg.master_size
    s = cfg.contact_shift_px
    ccx = sil.cx + rng.uniform(-s, s)
    ccy = sil.cy + rng.uniform(-s, s)
    ea = rng.uniform(0.8, 1.05) * 0.5 * (sil.a1 + sil.a2)
    eb = rng.uniform(0.8, 1.05) * 0.5 * (sil.b1 + sil.b2 + sil.c)
    yy, xx = np.mgrid[0:hm, 0:wm].astype(np.float64)
    contact = master.silhouette & (((xx - ccx) / ea) ** 2 + ((yy - ccy) / eb) ** 2 <= 1.0)

    st = cfg.distortion
    dist = PlasticDistortion(
        c0x=float(ccx + rng.normal(0, 8)),
        c0y=float(ccy + rng.normal(0, 8)),
        ea=float(rng.uniform(0.3, 0.5) * ea),
        eb=float(rng.uniform(0.3, 0.5) * eb),
        k=float(rng.uniform(35, 70)),
        phi=float(np.deg2rad(rng.uniform(-4, 4) * st)),
        dx=float(rng.uniform(-7, 7) * st),
        dy=float(rng.uniform(-7, 7) * st),
    )
    h, w = cfg.size
    alpha = float(np.deg2rad(rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg)))
    t = cfg.max_translation_px
    place = Placement(
        alpha=alpha,
        cx=float(ccx),
        cy=float(ccy),
        tx=float((w - 1) / 2 + rng.uniform(-t, t)),
        ty=float((h - 1) / 2 + rng.uniform(-t, t)),
    )
    return contact, dist, place


def _fit_affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 affine with dst ~ A @ [src, 1] (src, dst: (N, 2))."""
    x = np.concatenate([src, np.ones((len(src), 1))], axis=1)
    sol, *_ = np.linalg.lstsq(x, dst, rcond=None)
    return sol.T.astype(np.float32)


def _ridge_ink(
    rng: np.random.Generator, master: MasterPrint, cfg: SynthConfig
) -> tuple[np.ndarray, float]:
    """Ridge 'ink' in [0, 1] on the master canvas after the thickness change (dry/wet)."""
    level = float(rng.uniform(*cfg.thickness_levels))
    ink = np.clip(0.5 + 0.6 * master.ridges + 0.3 * level, 0.0, 1.0).astype(np.float32)
    if level > 0.55:
        ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    elif level < -0.55:
        ink = cv2.erode(ink, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    return ink, level


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
    contact, dist, place = _sample_geometry(rng, master, cfg)

    # exact maps: impression -> master (inverse) on the sensor grid, master -> impression (forward)
    qy, qx = np.mgrid[0:h, 0:w].astype(np.float64)
    ux, uy = place.inverse(qx, qy)
    mx, my = dist.inverse(ux, uy)
    imp_to_master = np.stack([mx, my], axis=-1).astype(np.float32)
    py, px = np.mgrid[0:hm, 0:wm].astype(np.float64)
    fx, fy = place.forward(*dist.forward(px, py))
    master_to_imp = np.stack([fx, fy], axis=-1).astype(np.float32)

    ink, level = _ridge_ink(rng, master, cfg)
    soft = cv2.GaussianBlur(contact.astype(np.float32), (0, 0), 2.5)
    mapx, mapy = imp_to_master[..., 0], imp_to_master[..., 1]
    border = {"borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    ink_i = cv2.remap(ink, mapx, mapy, cv2.INTER_LINEAR, **border)
    soft_i = cv2.remap(soft, mapx, mapy, cv2.INTER_LINEAR, **border)
    hard_i = cv2.remap(contact.astype(np.uint8), mapx, mapy, cv2.INTER_NEAREST, **border)
    mask = hard_i > 0

    # noise: pores / dryness (white on ridges), dirt (dark in valleys), scratches
    area = float(mask.sum())
    nz = cfg.noise
    _add_blobs(rng, ink_i, int(rng.poisson(nz * area / 350.0)), 0.0, on_ridge=True)
    _add_blobs(rng, ink_i, int(rng.poisson(nz * area / 2500.0)), 1.0, on_ridge=False)
    if rng.random() < cfg.scratch_prob:
        for _ in range(int(rng.integers(1, 4))):
            p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            ang, ln = rng.uniform(0, np.pi), rng.uniform(30, 150)
            p1 = (int(p0[0] + ln * np.cos(ang)), int(p0[1] + ln * np.sin(ang)))
            cv2.line(ink_i, p0, p1, 0.0, int(rng.integers(1, 3)))
    ink_i = cv2.blur(ink_i, (3, 3))

    style = SENSOR_STYLES[cfg.sensor_style]
    contrast = rng.uniform(*style.contrast)
    pressure = np.clip(0.85 + 0.15 * low_frequency_field(rng, (h, w), 60.0), 0.55, 1.0)
    bg = background(rng, (h, w), style)
    img = bg - contrast * ink_i * soft_i * pressure
    img += rng.normal(0.0, style.noise_sigma * (0.5 + nz), size=(h, w)).astype(np.float32)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    ys, xs = np.nonzero(contact[::4, ::4])
    src = np.stack([xs * 4.0, ys * 4.0], axis=1)
    dst = master_to_imp[ys * 4, xs * 4].astype(np.float64)
    affine = _fit_affine(src, dst) if len(src) >= 3 else place.matrix().astype(np.float32)

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
    )
