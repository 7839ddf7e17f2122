"""The work behind `ifvit convert`: convert, print the summary, optionally verify against PyTorch.

The `ifvit` app owns the flags (apps/ifvit/src/ifvit_cli/commands/convert.py) and calls
`convert_command`; expected failures raise `ConversionError` with a one-line message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ifvit_convert.convert import convert_file, format_summary
from ifvit_convert.errors import VERIFY_HINT, ConversionError
from ifvit_convert.io import load_loftr, loftr_config_from_meta

VERIFY_TOL = 1e-4  # max |Δ| relative to max(1, max |reference|), per compared tensor


def convert_command(
    ckpt: str | Path,
    out: str | Path,
    *,
    verify: bool = False,
    prefix: str | None = None,
    kind: str | None = None,
    pos_enc: str | None = None,
    preset: str = "paper",
    verify_size: tuple[int, int] = (128, 128),
    echo: Callable[[str], None] = print,
    force: bool = False,
) -> int:
    """Converts `ckpt` to `out` (+ sidecar), prints a summary and, with `verify`, a parity check.

    Args:
      ckpt: LoFTR PyTorch checkpoint.
      out: output weights file (`.safetensors` or `.npz`).
      verify: re-run the PyTorch model (kornia) and the converted JAX model on a random pair and
        print the max absolute differences. If kornia cannot be imported, `ConversionError` (with
        the install hint) is raised before anything is read or written.
      prefix: key prefix to strip (None: detect).
      kind: 'outdoor' / 'indoor' / 'unknown' (None: from the file name).
      pos_enc: 'buggy' / 'fixed' (None: from the file name).
      preset: target ifvit-core preset.
      verify_size: (H, W) of the verification pair.
      echo: where to print.
      force: replace an existing output file (see `convert_file`).

    Returns:
      0, or 1 when verification finds a difference above tolerance.

    Raises:
      ConversionError: bad input (one line); nothing is written in that case.
    """
    if verify:
        _require_kornia()
    conv, written = convert_file(
        ckpt, out, preset=preset, pos_enc=pos_enc, kind=kind, prefix=prefix, force=force
    )
    echo(format_summary(conv, written))
    if not verify:
        return 0
    from ifvit_convert.verify import verify_conversion

    model, meta = load_loftr(written)  # the file as written, not the in-memory arrays
    cfg = loftr_config_from_meta(meta)
    report = verify_conversion(conv.source.tensors, model, cfg, size=verify_size)
    echo(
        "verify: kornia LoFTR vs converted JAX model on a random "
        f"{verify_size[0]}x{verify_size[1]} pair"
    )
    echo(report.format())
    worst = max(
        (report.max_abs[k] / max(1.0, report.scale[k]) for k in report.max_abs), default=0.0
    )
    if worst <= VERIFY_TOL and report.matches_equal:
        echo(f"verify: OK (relative max |Δ| {worst:.2g} <= {VERIFY_TOL:g}, identical match sets)")
        return 0
    echo(
        f"verify: FAILED (relative max |Δ| {worst:.2g}, "
        f"match sets {'equal' if report.matches_equal else 'differ'})"
    )
    return 1


def _require_kornia() -> None:
    """Imports kornia (the --verify reference), or raises a one-line ConversionError saying how."""
    try:
        import kornia.feature  # noqa: F401
    except Exception as e:  # noqa: BLE001 - ImportError, or a broken install failing at import
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise ConversionError(
            f"--verify needs kornia (the PyTorch LoFTR the conversion is checked against), which "
            f"cannot be imported ({reason}); {VERIFY_HINT}, or drop --verify"
        ) from None
