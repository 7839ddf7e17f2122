"""Numerical comparison of a PyTorch LoFTR (kornia's port, the reference) with the converted JAX
model.

Used by `ifvit convert --verify` and by the parity tests. Needs torch and kornia; both are imported
lazily. The reference is `kornia.feature.LoFTR(pretrained=None)` built with the dimensions of the
target `LoFTRConfig` and loaded with the same state dict that was converted.

Compared on one image pair (after the BatchNorm running statistics are in use, i.e. eval mode):
backbone coarse and fine maps, the position-encoded coarse tokens, the output of every coarse
transformer layer for both images, the dual-softmax confidence matrix, the match set (b, i, j), the
match confidences, and the fine-stage expectation and keypoints of every match.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ifvit_convert.checkpoint import import_torch
from ifvit_convert.errors import VERIFY_HINT, ConversionError


@dataclass(slots=True)
class ParityReport:
    """Max absolute differences per compared tensor, plus the two match sets.

    Attributes:
      max_abs: tensor name -> max |torch - jax|.
      scale: tensor name -> max |torch| (to judge `max_abs` relative to the values).
      torch_matches: sorted (b, i, j) of the reference.
      jax_matches: sorted (b, i, j) of the converted model (valid rows).
    """

    max_abs: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    torch_matches: list[tuple[int, int, int]] = field(default_factory=list)
    jax_matches: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def matches_equal(self) -> bool:
        """True when both models found exactly the same matches."""
        return self.torch_matches == self.jax_matches

    def worst(self) -> float:
        """The largest difference over all compared tensors."""
        return max(self.max_abs.values(), default=0.0)

    def format(self) -> str:
        """One line per tensor, then the match-set comparison."""
        lines = [
            f"  {k:<24} max|Δ| = {v:.3g}  (max|x| = {self.scale.get(k, 0.0):.3g})"
            for k, v in self.max_abs.items()
        ]
        lines.append(
            f"  matches: torch {len(self.torch_matches)}, jax {len(self.jax_matches)}, "
            f"{'identical' if self.matches_equal else 'DIFFERENT'}"
        )
        return "\n".join(lines)


def kornia_config(cfg: Any) -> dict[str, Any]:
    """kornia's LoFTR config dict for an `ifvit_core.config.LoFTRConfig` (dual-softmax)."""
    return {
        "backbone_type": "ResNetFPN",
        "resolution": (8, 2),
        "fine_window_size": cfg.fine.window,
        "fine_concat_coarse_feat": cfg.fine.concat_coarse_feat,
        "resnetfpn": {
            "initial_dim": cfg.backbone.initial_dim,
            "block_dims": list(cfg.backbone.block_dims),
        },
        "coarse": {
            "d_model": cfg.coarse.d_model,
            "d_ffn": cfg.coarse.d_model,
            "nhead": cfg.coarse.nhead,
            "layer_names": list(cfg.coarse.layer_names),
            "attention": cfg.coarse.attention,
            "temp_bug_fix": cfg.pos_enc == "fixed",
        },
        "match_coarse": {
            "thr": cfg.matching.threshold,
            "border_rm": cfg.matching.border_rm,
            "match_type": "dual_softmax",
            "dsmax_temperature": cfg.matching.temperature,
            "skh_iters": 3,
            "skh_init_bin_score": 1.0,
            "skh_prefilter": True,
            "train_coarse_percent": 0.4,
            "train_pad_num_gt_min": 200,
        },
        "fine": {
            "d_model": cfg.fine_d_model,
            "d_ffn": cfg.fine_d_model,
            "nhead": cfg.fine.nhead,
            "layer_names": list(cfg.fine.layer_names),
            "attention": cfg.fine.attention,
        },
    }


def build_reference(cfg: Any, state_dict: dict[str, np.ndarray] | None = None) -> Any:
    """A kornia LoFTR with `cfg`'s dimensions, in eval mode, optionally loaded (strictly).

    Args:
      cfg: `ifvit_core.config.LoFTRConfig`.
      state_dict: LoFTR keys (no prefix) -> numpy arrays; None keeps kornia's random init.

    Raises:
      ConversionError: kornia is not installed.
    """
    torch = import_torch()
    try:
        from kornia.feature.loftr import LoFTR as KorniaLoFTR
    except ImportError:
        raise ConversionError(
            f"verification needs kornia as the PyTorch reference; {VERIFY_HINT}"
        ) from None
    model = KorniaLoFTR(pretrained=None, config=kornia_config(cfg))
    if state_dict is not None:
        model.load_state_dict(
            {k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()}, strict=True
        )
    return model.eval()


def run_reference(model: Any, image0: np.ndarray, image1: np.ndarray) -> dict[str, Any]:
    """Runs the kornia model and records the intermediate tensors (numpy).

    Args:
      model: from `build_reference`.
      image0, image1: [B, H, W, 1] float32 in [0, 1] (same size).

    Returns:
      dict with `feat_c`, `feat_f` ([2B, h, w, C] NHWC, image0 batch first), `tokens` (t0, t1),
      `layers` [(f0, f1) per coarse layer], `conf_matrix` [B, L, S], `b_ids`, `i_ids`, `j_ids`,
      `mconf` [M], `mkpts0_c`, `mkpts1_c`, `mkpts0_f`, `mkpts1_f` [M, 2], `expec_f` [M, 3].
    """
    torch = import_torch()
    rec: dict[str, Any] = {"layers_flat": []}
    handles = [
        model.backbone.register_forward_hook(lambda m, a, out: rec.update(backbone=out)),
        model.loftr_coarse.register_forward_pre_hook(lambda m, a: rec.update(tokens=(a[0], a[1]))),
        model.coarse_matching.register_forward_hook(lambda m, a, out: rec.update(data=a[2])),
        model.loftr_fine.register_forward_hook(lambda m, a, out: rec.update(fine=out)),
    ]
    handles += [
        layer.register_forward_hook(lambda m, a, out: rec["layers_flat"].append(out))
        for layer in model.loftr_coarse.layers
    ]
    try:
        with torch.no_grad():
            t0 = torch.from_numpy(np.ascontiguousarray(image0.transpose(0, 3, 1, 2)))
            t1 = torch.from_numpy(np.ascontiguousarray(image1.transpose(0, 3, 1, 2)))
            model({"image0": t0, "image1": t1})
    finally:
        for h in handles:
            h.remove()

    def np_(t: Any) -> np.ndarray:
        return t.detach().cpu().numpy()

    feat_c, feat_f = rec["backbone"]
    data = rec["data"]
    flat = [np_(x) for x in rec["layers_flat"]]
    out: dict[str, Any] = {
        "feat_c": np_(feat_c).transpose(0, 2, 3, 1),
        "feat_f": np_(feat_f).transpose(0, 2, 3, 1),
        "tokens": tuple(np_(x) for x in rec["tokens"]),
        "layers": [(flat[2 * k], flat[2 * k + 1]) for k in range(len(flat) // 2)],
    }
    if "fine" in rec:  # the fine transformer runs only when there are matches
        out["fine_windows"] = tuple(np_(x) for x in rec["fine"])
    for key in (
        "conf_matrix",
        "b_ids",
        "i_ids",
        "j_ids",
        "mconf",
        "mkpts0_c",
        "mkpts1_c",
        "mkpts0_f",
        "mkpts1_f",
        "expec_f",
    ):
        out[key] = np_(data[key])
    return out


def run_converted(model: Any, image0: np.ndarray, image1: np.ndarray) -> dict[str, Any]:
    """Runs the ifvit-core LoFTR (jitted) with intermediates, returned as numpy."""
    import jax
    from flax import nnx

    @nnx.jit
    def forward(m: Any, a: jax.Array, b: jax.Array) -> dict[str, Any]:
        out = m(a, b, return_intermediates=True)
        out.pop("hw0_c")
        out.pop("hw1_c")
        return out

    return jax.tree.map(np.asarray, forward(model, image0, image1))


def _diff(a: np.ndarray, b: np.ndarray, name: str) -> tuple[float, float]:
    """(max |a - b|, max |a|) of two same-shape arrays."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{name}: shape {a.shape} (torch) vs {b.shape} (jax)")
    if not a.size:
        return 0.0, 0.0
    return float(np.max(np.abs(a - b))), float(np.max(np.abs(a)))


def _record(rep: ParityReport, name: str, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    diffs = [_diff(a, b, name) for a, b in pairs]
    rep.max_abs[name] = max(d for d, _ in diffs)
    rep.scale[name] = max(s for _, s in diffs)


def compare(ref: dict[str, Any], jx: dict[str, Any]) -> ParityReport:
    """Max absolute differences between `run_reference` and `run_converted` outputs.

    Fine-stage and per-match quantities are compared on the matches both models found.
    """
    rep = ParityReport()
    feat_c0, feat_c1, feat_f0, feat_f1 = jx["backbone"]
    _record(rep, "backbone coarse (1/8)", [(ref["feat_c"], np.concatenate([feat_c0, feat_c1]))])
    _record(rep, "backbone fine (1/2)", [(ref["feat_f"], np.concatenate([feat_f0, feat_f1]))])
    _record(rep, "coarse tokens + PE", list(zip(ref["tokens"], jx["coarse_tokens"], strict=True)))
    if len(ref["layers"]) != len(jx["coarse_layers"]):
        raise AssertionError(
            f"{len(ref['layers'])} torch layers vs {len(jx['coarse_layers'])} jax layers"
        )
    for k, (r, j) in enumerate(zip(ref["layers"], jx["coarse_layers"], strict=True)):
        _record(rep, f"coarse layer {k}", list(zip(r, j, strict=True)))
    _record(rep, "conf_matrix", [(ref["conf_matrix"], jx["conf_matrix"])])

    b_ids, i_ids = ref["b_ids"].astype(int), ref["i_ids"].astype(int)
    torch_rows = list(
        zip(b_ids.tolist(), i_ids.tolist(), ref["j_ids"].astype(int).tolist(), strict=True)
    )
    rep.torch_matches = sorted(torch_rows)
    vb, vi = np.nonzero(jx["valid"])
    jax_j = jx["j_ids"][vb, vi].astype(int).tolist()
    rep.jax_matches = sorted(zip(vb.tolist(), vi.tolist(), jax_j, strict=True))
    common = sorted(set(rep.torch_matches) & set(rep.jax_matches))
    if common:
        pos = {m: n for n, m in enumerate(torch_rows)}
        rows = np.array([pos[m] for m in common])
        cb, ci = np.array([m[0] for m in common]), np.array([m[1] for m in common])
        for key in ("mconf", "mkpts0_c", "mkpts1_c", "expec_f", "mkpts0_f", "mkpts1_f"):
            if key in jx:
                _record(rep, key, [(ref[key][rows], jx[key][cb, ci])])
        if "fine_windows" in jx and "fine_windows" in ref:
            pairs = [
                (r[rows], j[cb, ci])
                for r, j in zip(ref["fine_windows"], jx["fine_windows"], strict=True)
            ]
            _record(rep, "fine transformer", pairs)
    return rep


def random_pair(
    batch: int,
    height: int,
    width: int,
    seed: int = 0,
    *,
    shift: tuple[int, int] = (8, 16),
    noise: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """A reproducible image pair [B, H, W, 1] in [0, 1]: blocky noise and a shifted, noisier copy.

    Image 1 shows the content of image 0 moved by `shift` = (dy, dx) pixels (default one coarse cell
    down, two right) plus Gaussian noise of std `noise`, so a trained matcher finds real
    correspondences. (A random-weight LoFTR matches mostly by position, so parity tests use
    `shift=(0, 0)` to get a large match set.)
    """
    rng = np.random.default_rng(seed)
    dy, dx = shift
    ch, cw = height + abs(dy), width + abs(dx)
    blocks = rng.random((batch, -(-ch // 4), -(-cw // 4)), dtype=np.float32)
    canvas = 0.75 * np.repeat(np.repeat(blocks, 4, axis=1), 4, axis=2)[:, :ch, :cw]
    canvas += 0.25 * rng.random(canvas.shape, dtype=np.float32)
    y0, x0 = max(-dy, 0), max(-dx, 0)
    img0 = canvas[:, y0 : y0 + height, x0 : x0 + width]
    img1 = canvas[:, y0 + dy : y0 + dy + height, x0 + dx : x0 + dx + width]
    img1 = np.clip(img1 + noise * rng.standard_normal(img1.shape, dtype=np.float32), 0.0, 1.0)
    return np.ascontiguousarray(img0[..., None]), np.ascontiguousarray(
        img1[..., None], dtype=np.float32
    )


def verify_conversion(
    state_dict: dict[str, np.ndarray],
    jax_model: Any,
    cfg: Any,
    *,
    size: tuple[int, int] = (128, 128),
    seed: int = 0,
) -> ParityReport:
    """Reference (kornia, `state_dict`) vs converted JAX model on one random pair.

    Args:
      state_dict: the LoFTR tensors that were converted (keys without prefix).
      jax_model: the ifvit-core LoFTR holding the converted weights (eval mode).
      cfg: its LoFTRConfig (pos_enc decides the reference's temp_bug_fix).
      size: (H, W) of the pair, multiples of 8.
      seed: image seed.

    Returns:
      The parity report.
    """
    ref_model = build_reference(cfg, state_dict)
    img0, img1 = random_pair(1, size[0], size[1], seed)
    return compare(run_reference(ref_model, img0, img1), run_converted(jax_model, img0, img1))
