"""LoFTR's ResNetFPN_8_2 backbone in Flax NNX (NHWC).

Port of LoFTR `src/loftr/backbone/resnet_fpn.py` (ResNetFPN_8_2). Attribute names follow the PyTorch
module names with numeric tokens folded (`layer1.0` -> `layer1_0`, `layer2_outconv2.3` ->
`layer2_outconv2_3`) so the checkpoint maps name-for-name (docs/contracts.md).

PyTorch equivalence (SPEC §2.1): explicit symmetric padding on every conv (Flax 'SAME' pads stride-2
convs asymmetrically), bias-free convs, BatchNorm eps 1e-5 and momentum 0.1 (= Flax 0.9), and
align_corners=True bilinear x2 upsampling in the FPN.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ifvit_core.config import BackboneConfig

# PyTorch kaiming_normal_(mode='fan_out', nonlinearity='relu'): untruncated normal, var 2/fan_out.
_conv_init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


def _conv(cin: int, cout: int, k: int, stride: int, rngs: nnx.Rngs) -> nnx.Conv:
    p = k // 2
    return nnx.Conv(
        cin, cout, (k, k), strides=stride, padding=((p, p), (p, p)), use_bias=False,
        kernel_init=_conv_init, rngs=rngs,
    )


def _bn(c: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    # use_fast_variance=False: E[(x-mean)^2] like PyTorch, not E[x^2]-mean^2 (cancellation).
    return nnx.BatchNorm(c, momentum=0.9, epsilon=1e-5, use_fast_variance=False, rngs=rngs)


class BasicBlock(nnx.Module):
    """ResNet basic block: relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x)))))).

    The shortcut is a strided 1x1 conv + BN only when stride != 1 (never for a channel change
    alone: LoFTR's layer1 has no downsample).
    """

    def __init__(self, cin: int, cout: int, stride: int, *, rngs: nnx.Rngs):
        self.conv1 = _conv(cin, cout, 3, stride, rngs)
        self.conv2 = _conv(cout, cout, 3, 1, rngs)
        self.bn1 = _bn(cout, rngs)
        self.bn2 = _bn(cout, rngs)
        if stride != 1:
            self.downsample_0 = _conv(cin, cout, 1, stride, rngs)
            self.downsample_1 = _bn(cout, rngs)
        self.stride = stride

    def __call__(self, x: jax.Array) -> jax.Array:
        """x: [B, H, W, cin] -> [B, H/stride, W/stride, cout]."""
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.stride != 1:
            x = self.downsample_1(self.downsample_0(x))
        return jax.nn.relu(x + y)


@functools.lru_cache(maxsize=64)
def _align_corners_matrix(n: int) -> np.ndarray:
    """[2n, n] linear-interpolation weights of align_corners=True resizing from n to 2n samples."""
    pos = np.linspace(0.0, n - 1.0, 2 * n) if n > 1 else np.zeros(2)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    m = np.zeros((2 * n, n), np.float64)
    m[np.arange(2 * n), lo] += 1.0 - frac
    m[np.arange(2 * n), hi] += frac
    return m.astype(np.float32)


def upsample2x_align_corners(x: jax.Array) -> jax.Array:
    """Bilinear x2 upsampling with align_corners=True (PyTorch F.interpolate semantics).

    Separable and exact: two small interpolation matrices applied with einsum.
    x: [B, h, w, C] -> [B, 2h, 2w, C].
    """
    _, h, w, _ = x.shape
    mh = jnp.asarray(_align_corners_matrix(h), x.dtype)
    mw = jnp.asarray(_align_corners_matrix(w), x.dtype)
    x = jnp.einsum("Hh,bhwc->bHwc", mh, x)
    return jnp.einsum("Ww,bhwc->bhWc", mw, x)


class ResNetFPN_8_2(nnx.Module):  # noqa: N801 (LoFTR's class name)
    """ResNet-18-style encoder + 2-level FPN: coarse features at 1/8, fine features at 1/2."""

    def __init__(self, cfg: BackboneConfig, *, rngs: nnx.Rngs):
        d0 = cfg.initial_dim
        d1, d2, d3 = cfg.block_dims
        self.conv1 = nnx.Conv(
            1, d0, (7, 7), strides=2, padding=((3, 3), (3, 3)), use_bias=False,
            kernel_init=_conv_init, rngs=rngs,
        )
        self.bn1 = _bn(d0, rngs)
        self.layer1_0 = BasicBlock(d0, d1, 1, rngs=rngs)
        self.layer1_1 = BasicBlock(d1, d1, 1, rngs=rngs)
        self.layer2_0 = BasicBlock(d1, d2, 2, rngs=rngs)
        self.layer2_1 = BasicBlock(d2, d2, 1, rngs=rngs)
        self.layer3_0 = BasicBlock(d2, d3, 2, rngs=rngs)
        self.layer3_1 = BasicBlock(d3, d3, 1, rngs=rngs)
        # FPN
        self.layer3_outconv = _conv(d3, d3, 1, 1, rngs)
        self.layer2_outconv = _conv(d2, d3, 1, 1, rngs)
        self.layer2_outconv2_0 = _conv(d3, d3, 3, 1, rngs)
        self.layer2_outconv2_1 = _bn(d3, rngs)
        self.layer2_outconv2_3 = _conv(d3, d2, 3, 1, rngs)
        self.layer1_outconv = _conv(d1, d2, 1, 1, rngs)
        self.layer1_outconv2_0 = _conv(d2, d2, 3, 1, rngs)
        self.layer1_outconv2_1 = _bn(d2, rngs)
        self.layer1_outconv2_3 = _conv(d2, d1, 3, 1, rngs)

    def __call__(self, x: jax.Array, *, fine: bool = True) -> tuple[jax.Array, jax.Array | None]:
        """Encodes gray images.

        Args:
          x: [B, H, W, 1] images in [0, 1]; H, W multiples of 8 when `fine` is True.
          fine: also compute the 1/2 FPN features (skip for the coarse-only Module 1/2 path,
            which saves ~45% of the backbone FLOPs).

        Returns:
          (feat_c [B, H/8, W/8, block_dims[2]], feat_f [B, H/2, W/2, block_dims[0]] or None).
        """
        x0 = jax.nn.relu(self.bn1(self.conv1(x)))
        x1 = self.layer1_1(self.layer1_0(x0))  # 1/2
        x2 = self.layer2_1(self.layer2_0(x1))  # 1/4
        x3 = self.layer3_1(self.layer3_0(x2))  # 1/8
        x3_out = self.layer3_outconv(x3)
        if not fine:
            return x3_out, None
        x2_out = self.layer2_outconv(x2) + upsample2x_align_corners(x3_out)
        x2_out = self.layer2_outconv2_0(x2_out)
        x2_out = jax.nn.leaky_relu(self.layer2_outconv2_1(x2_out), 0.01)
        x2_out = self.layer2_outconv2_3(x2_out)
        x1_out = self.layer1_outconv(x1) + upsample2x_align_corners(x2_out)
        x1_out = self.layer1_outconv2_0(x1_out)
        x1_out = jax.nn.leaky_relu(self.layer1_outconv2_1(x1_out), 0.01)
        x1_out = self.layer1_outconv2_3(x1_out)
        return x3_out, x1_out
