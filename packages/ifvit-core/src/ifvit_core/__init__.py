"""ifvit_core: IFViT models and losses in Flax NNX (pure: jax, flax, optax, numpy; no file IO).

Modules:
  config   — frozen dataclass configs and the tiny/small/paper presets.
  loftr    — LoFTR port: ResNetFPN_8_2, sine PE, transformer, dual-softmax + fine matching.
  ifvit    — Module 1 (dense registration + alignment) and Module 2 (global/local branches).
  losses   — L_D, L_E, L_A and the Module 2 total.
  scores   — cosine, the fused two-branch score, evidence weighting (what serving computes).
  geometry — jit-able RANSAC similarity/affine fit, warps, overlap masks and ROI crops.
  params   — flat '/'-keyed views of model variables and strict loading.
  enhance  — optional ridge enhancement (orientation field + contextual Gabor filtering), in
             place of IFViT's FingerNet.
"""

__version__ = "0.1.0"
