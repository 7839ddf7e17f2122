"""Augmentations with exact geometry: Perlin sensor noise, dryness/pressure morphology,
rotations."""

from ifvit_data.augment.corrupt import CORRUPTIONS, CorruptionConfig, corrupt, corrupt_and_rotate
from ifvit_data.augment.geometric import (
    RotationConfig,
    apply_affine,
    invert_affine,
    random_rotation,
    rotation_matrix,
    warp_affine,
)
from ifvit_data.augment.morphology import MorphologyConfig, dryness, pressure
from ifvit_data.augment.perlin import NoiseBank, PerlinConfig, add_noise, perlin_noise

__all__ = [
    "CORRUPTIONS",
    "CorruptionConfig",
    "MorphologyConfig",
    "NoiseBank",
    "PerlinConfig",
    "RotationConfig",
    "add_noise",
    "apply_affine",
    "corrupt",
    "corrupt_and_rotate",
    "dryness",
    "invert_affine",
    "perlin_noise",
    "pressure",
    "random_rotation",
    "rotation_matrix",
    "warp_affine",
]
