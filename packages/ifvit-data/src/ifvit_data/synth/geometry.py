"""Where each impression pixel comes from on the master: contact region, distortion, placement.

An impression's geometry is drawn first from its random stream, before any rendering, and needs
only the finger's silhouette (the first draw of its master stream), so exact correspondences can be
computed without growing the ridges (`impression_geometry`). Maps are analytic: sensor point
`q = G(D(p))` for master point `p`, plastic distortion `D` and placement `G`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ifvit_data.synth.background import low_frequency_field
from ifvit_data.synth.config import SynthConfig
from ifvit_data.synth.distortion import Placement, PlasticDistortion
from ifvit_data.synth.rng import STAGE_IMPRESSION, STAGE_MASTER, make_rng
from ifvit_data.synth.silhouette import Silhouette, sample_silhouette


@dataclass(frozen=True)
class ImpressionGeometry:
    """The exact geometric relation between one impression and its master.

    Attributes:
        size: Sensor frame (H, W).
        contact: bool [Hm, Wm] contact region in the master frame.
        distortion: Plastic distortion (master frame).
        placement: Rigid placement of the distorted master into the sensor frame.
    """

    size: tuple[int, int]
    contact: np.ndarray
    distortion: PlasticDistortion
    placement: Placement

    def to_master(self, pts: np.ndarray) -> np.ndarray:
        """Master-frame positions of sensor points: float64 (N, 2) -> (N, 2); NaN stays NaN."""
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        ux, uy = self.placement.inverse(pts[:, 0], pts[:, 1])
        mx, my = self.distortion.inverse(ux, uy)
        return np.stack([mx, my], axis=1)

    def from_master(self, pts: np.ndarray) -> np.ndarray:
        """Sensor positions of master points: float64 (N, 2) -> (N, 2); NaN stays NaN."""
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        fx, fy = self.placement.forward(*self.distortion.forward(pts[:, 0], pts[:, 1]))
        return np.stack([fx, fy], axis=1)

    def in_frame(self, pts: np.ndarray) -> np.ndarray:
        """bool (N,): sensor points inside the frame (pixel centres at integers; NaN -> False)."""
        h, w = self.size
        x, y = pts[:, 0], pts[:, 1]
        with np.errstate(invalid="ignore"):
            return (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)

    def in_contact(self, master_pts: np.ndarray) -> np.ndarray:
        """bool (N,): master points whose nearest master pixel is in the contact region."""
        hm, wm = self.contact.shape
        ok = np.all(np.isfinite(master_pts), axis=1)
        q = np.rint(np.where(ok[:, None], master_pts, -1.0))
        ok &= (q[:, 0] >= 0) & (q[:, 0] < wm) & (q[:, 1] >= 0) & (q[:, 1] < hm)
        out = np.zeros(len(master_pts), bool)
        out[ok] = self.contact[q[ok, 1].astype(np.int64), q[ok, 0].astype(np.int64)]
        return out

    def seen(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Master positions of sensor points and whether the sensor sees skin there.

        Args:
            pts: float64 (N, 2) sensor points (x, y).

        Returns:
            (float64 (N, 2) master points, bool (N,) in the frame and in the contact region).
        """
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        m = self.to_master(pts)
        return m, self.in_frame(pts) & self.in_contact(m)


def sample_geometry(
    rng: np.random.Generator, sil: Silhouette, cfg: SynthConfig
) -> ImpressionGeometry:
    """Draw an impression's contact region, plastic distortion and placement.

    The contact region is the silhouette cut by an ellipse whose size follows the pressure
    (`cfg.contact_scale`) and whose centre follows where the finger touched
    (`cfg.contact_shift_px`), with a ragged edge. The placement puts the contact centre at the
    sensor centre plus a random shift, so the frame cuts many impressions (off-centre, partial).

    Args:
        rng: The impression's random stream (the first draws are consumed here).
        sil: The finger's silhouette.
        cfg: Generator configuration.

    Returns:
        The geometry.
    """
    hm, wm = cfg.master_size
    s = cfg.contact_shift_px
    ccx = sil.cx + 0.75 * rng.uniform(-s, s)
    ccy = sil.cy + rng.uniform(-s, s)
    scale = rng.uniform(*cfg.contact_scale)
    ea = scale * rng.uniform(0.9, 1.1) * 0.5 * (sil.a1 + sil.a2)
    eb = scale * rng.uniform(0.9, 1.1) * 0.5 * (sil.b1 + sil.b2 + sil.c)
    ragged = 0.035 * low_frequency_field(rng, (hm, wm), 60.0)
    # the ragged ellipse lies within rho <= 1 + max|ragged|: evaluate only its bounding box
    reach = 1.0 + float(np.abs(ragged).max())
    y0, y1 = max(0, int(ccy - reach * eb) - 1), min(hm, int(ccy + reach * eb) + 2)
    x0, x1 = max(0, int(ccx - reach * ea) - 1), min(wm, int(ccx + reach * ea) + 2)
    yy = (np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(ccy)) / np.float32(eb)
    xx = (np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(ccx)) / np.float32(ea)
    contact = np.zeros((hm, wm), bool)
    if y1 > y0 and x1 > x0:
        rho = np.sqrt(xx**2 + yy**2)
        contact[y0:y1, x0:x1] = rho + ragged[y0:y1, x0:x1] <= 1.0
    contact &= sil.mask((hm, wm))

    st = cfg.distortion
    dist = PlasticDistortion(
        c0x=float(ccx + rng.normal(0, 10)),
        c0y=float(ccy + rng.normal(0, 10)),
        ea=float(rng.uniform(0.25, 0.5) * ea),
        eb=float(rng.uniform(0.25, 0.5) * eb),
        k=float(rng.uniform(45, 80)),
        phi=float(np.deg2rad(rng.uniform(-6, 6) * st)),
        dx=float(rng.uniform(-12, 12) * st),
        dy=float(rng.uniform(-12, 12) * st),
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
    return ImpressionGeometry((int(h), int(w)), contact, dist, place)


def master_silhouette(seed: int, finger: int, cfg: SynthConfig) -> Silhouette:
    """The silhouette `generate_master(seed, finger, cfg)` draws first (no ridge growth)."""
    return sample_silhouette(make_rng(seed, finger, 0, STAGE_MASTER), cfg.master_size)


def impression_geometry(
    seed: int, finger: int, impression: int, cfg: SynthConfig, sil: Silhouette | None = None
) -> ImpressionGeometry:
    """The geometry `render_impression(master, seed, finger, impression, cfg)` draws, no rendering.

    Args:
        seed: Dataset seed.
        finger: Finger identifier.
        impression: Impression identifier.
        cfg: Generator configuration.
        sil: The finger's silhouette if already known (`master_silhouette`).

    Returns:
        The geometry (identical to the rendered impression's `geometry`).
    """
    sil = sil if sil is not None else master_silhouette(seed, finger, cfg)
    return sample_geometry(make_rng(seed, finger, impression, STAGE_IMPRESSION), sil, cfg)
