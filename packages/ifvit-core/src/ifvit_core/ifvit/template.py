"""Per-image templates: Module 2 embeddings of ONE print, for enrolment and 1:N search.

Pairwise Module 2 (`representation.Matcher`) encodes the two prints of a pair jointly (cross
attention in each branch's coarse transformer) on inputs that need the partner (the aligned overlap
and an ROI at the overlap centre), so its embeddings cannot be stored per print. A template is made
from the print alone, with the same trained weights:

* inputs (`template_inputs`): the global branch sees the prepared window restricted to the print's
  own foreground (white outside, resized like the pairwise overlap, `registration.global_shape`;
  token mask = cells more than half
  foreground, as the pairwise overlap mask); the local branch sees a `roi_size` crop at the
  foreground centroid (the pairwise ROI with the print's foreground standing in for the overlap);
* trunk (`Branch.encode_single`): the coarse transformer with the print as its own partner. Three
  ways of doing that are implemented (`MODES`) and were measured on a trained bundle
  (`benchmarks/bench_template_separation.py`, docs/search.md): 'self' applies every
  cross layer with the print attending to itself; 'mirror' runs the pair transformer on (f, f) and
  keeps stream 0 (twice the cost); 'skip' drops the cross layers;
* embedding: masked mean of the tokens -> FC -> BatchNorm neck (running statistics: the matcher
  must be in eval mode, checked) -> the template neck where the model has one
  (`Module2Config.template_neck`: a linear map fitted on real identities by `ifvit whiten`, used
  by templates only) -> L2 normalisation, per branch;
* template = [sqrt(α) z_global, sqrt(1-α) z_local] (unit norm), α = `Module2Config.template_alpha`
  (default: the pairwise `fusion_alpha`), so the dot product of two templates is exactly the
  fused score α cos_g + (1-α) cos_l of their single-image embeddings.

Every operation is per example (no batch statistics), so a template does not depend on the other
prints of the batch.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from ifvit_core import geometry
from ifvit_core.config import IFViTConfig
from ifvit_core.ifvit.registration import cell_fraction, global_shape
from ifvit_core.ifvit.representation import Matcher

Mode = Literal["self", "mirror", "skip"]
MODES: tuple[str, ...] = ("self", "mirror", "skip")
DEFAULT_MODE: Mode = "self"


class TemplateInputs(NamedTuple):
    """What each branch sees of one print.

    global_image: [B, Gh, Gw, 1] the window, white outside the foreground, resized to
      `registration.global_shape` (`global_size` square for a training-size window).
    global_mask: [B, (Gh/8)*(Gw/8)] bool tokens more than half inside the foreground (all if none).
    roi: [B, R, R, 1] crop of the window at the foreground centroid (R = roi_size).
    roi_origin: [B, 2] int32 (x0, y0) of the ROI in the window.
    """

    global_image: jax.Array
    global_mask: jax.Array
    roi: jax.Array
    roi_origin: jax.Array


def template_inputs(cfg: IFViTConfig, images: jax.Array, masks: jax.Array) -> TemplateInputs:
    """images: [B, H, W, 1] prepared windows in [0, 1]; masks: [B, H, W] bool foregrounds."""
    b, h, w, _ = images.shape
    gh, gw = global_shape((h, w), cfg.image_size, cfg.module2.global_size)
    r_size = cfg.module2.roi_size
    fg = masks.astype(bool)
    g = jnp.where(fg[..., None], images, 1.0)
    gm = fg.astype(jnp.float32)
    if (h, w) != (gh, gw):
        g = jax.image.resize(g, (b, gh, gw, 1), "linear")
        gm = jax.image.resize(gm, (b, gh, gw), "linear")
    tok = cell_fraction(gm > 0.5) > 0.5
    tok = tok | ~tok.any(axis=1, keepdims=True)
    _, origin = geometry.overlap_roi(fg, fg, r_size)
    roi = geometry.crop(images, origin, r_size)
    return TemplateInputs(g, tok, roi, origin)


def check_eval_mode(matcher: Matcher) -> None:
    """Raises ValueError unless every BatchNorm of `matcher` uses its running statistics."""
    for _, m in nnx.iter_modules(matcher):
        if isinstance(m, nnx.BatchNorm) and not m.use_running_average:
            raise ValueError("embed_images needs the matcher in eval mode (matcher.eval()): a "
                             "BatchNorm in training mode makes a template depend on its batch")


def template_alpha(cfg: IFViTConfig) -> float:
    """The templates' global weight α (`template_alpha`, else the pairwise `fusion_alpha`)."""
    m2 = cfg.module2
    return m2.fusion_alpha if m2.template_alpha is None else m2.template_alpha


def embed_images(
    cfg: IFViTConfig,
    matcher: Matcher,
    images: jax.Array,
    masks: jax.Array,
    mode: Mode = DEFAULT_MODE,
) -> dict[str, jax.Array]:
    """Templates of a batch of single prints (jit-able: wrap in `nnx.jit` with `mode` static).

    Args:
      cfg: the model config (global_size, roi_size, template_alpha).
      matcher: trained Module 2 in eval mode.
      images: [B, H, W, 1] prepared windows in [0, 1] (`ifvit_train.serving.infer.prepare_image`).
      masks: [B, H, W] bool foregrounds of the windows.
      mode: how the coarse transformer's cross layers see a single print (see module docstring).

    Returns:
      {'z_global' [B, e], 'z_local' [B, e], 'template' [B, 2e]}, all unit norm (e = embed_dim).
    """
    check_eval_mode(matcher)
    inp = template_inputs(cfg, images, masks)
    z_g = matcher.global_branch.embed_single(inp.global_image, inp.global_mask, mode=mode)
    z_l = matcher.local_branch.embed_single(inp.roi, None, mode=mode)
    a = template_alpha(cfg)
    template = jnp.concatenate([jnp.sqrt(a) * z_g, jnp.sqrt(1.0 - a) * z_l], axis=-1)
    return {"z_global": z_g, "z_local": z_l, "template": template}
