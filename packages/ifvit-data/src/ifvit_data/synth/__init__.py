"""Synthetic fingerprints (SFinGe-style) with exact dense correspondences. See `generator`."""

from ifvit_data.synth.generator import *  # noqa: F403
from ifvit_data.synth.generator import __all__  # noqa: F401
