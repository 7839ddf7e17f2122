"""Public API of the synthetic fingerprint generator (SFinGe-style, numpy/OpenCV, no JAX).

    cfg = SynthConfig(size=(300, 300))
    master = generate_master(seed=0, finger=1, cfg=cfg)
    a = render_impression(master, 0, 1, 1, cfg)
    b = render_impression(master, 0, 1, 2, cfg)
    pts_b = correspondence(a, b)(pts_a)          # (N, 2) (x, y); NaN outside b
    generate_dataset("out/", fingers=10, impressions=8, seed=0, cfg=cfg)
    # geometry only (no ridge growth): the same maps as a.geometry / b.geometry
    ga, gb = impression_geometry(0, 1, 1, cfg), impression_geometry(0, 1, 2, cfg)
    pts_b = Correspondence(ga, gb)(pts_a)
    # records of shards ingested from a synth folder (ifvit_data.synth.records)
    corr = synth_correspondence("out/")          # (record_a, record_b) -> (fwd, bwd) | None
"""

from __future__ import annotations

from ifvit_data.synth.config import CLASS_NAMES, SFINGE_CLASS_PROBS, SynthConfig
from ifvit_data.synth.correspondence import Correspondence, correspondence, sample_field
from ifvit_data.synth.dataset import (
    GENERATOR_VERSION,
    check_output,
    generate_dataset,
    image_name,
)
from ifvit_data.synth.geometry import ImpressionGeometry, impression_geometry, master_silhouette
from ifvit_data.synth.impression import Impression, render_impression
from ifvit_data.synth.master import MasterPrint, generate_master
from ifvit_data.synth.minutiae import BIFURCATION, ENDING, extract_minutiae
from ifvit_data.synth.orientation import SingularPoint, poincare_index
from ifvit_data.synth.records import (
    SynthCorrespondence,
    SynthDirError,
    find_synth_dir,
    synth_correspondence,
)
from ifvit_data.synth.sheet import contact_sheet

__all__ = [
    "BIFURCATION",
    "CLASS_NAMES",
    "ENDING",
    "GENERATOR_VERSION",
    "SFINGE_CLASS_PROBS",
    "Correspondence",
    "Impression",
    "ImpressionGeometry",
    "MasterPrint",
    "SingularPoint",
    "SynthConfig",
    "SynthCorrespondence",
    "SynthDirError",
    "contact_sheet",
    "correspondence",
    "extract_minutiae",
    "check_output",
    "find_synth_dir",
    "generate_dataset",
    "generate_master",
    "image_name",
    "impression_geometry",
    "master_silhouette",
    "poincare_index",
    "render_impression",
    "sample_field",
    "synth_correspondence",
]
