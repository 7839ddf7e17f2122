"""On-device ridge enhancement (in place of IFViT's FingerNet): orientation field from the gradient
structure tensor, then contextual Gabor filtering. Pure jax; jit-able; batched; float32.

Modules:
  config      — `EnhanceConfig` (frozen; lengths in ridge periods; recorded in a model bundle).
  filters     — separable Gaussian / derivative-of-Gaussian filtering, normalised convolution.
  orientation — `orientation_field(images, masks, cfg) -> (theta, coherence)`.
  gabor       — `gabor_bank(cfg)`, `enhance(images, masks, cfg) -> images`.
"""

from ifvit_core.enhance.config import BACKGROUND, PERIOD_500PPI, EnhanceConfig
from ifvit_core.enhance.gabor import enhance, gabor_bank
from ifvit_core.enhance.orientation import orientation_field

__all__ = ["BACKGROUND", "PERIOD_500PPI", "EnhanceConfig", "enhance", "gabor_bank",
           "orientation_field"]
