"""WSQ (`.wsq`, the FBI's wavelet format for 500-ppi prints), decoded by the `wsq` package.

`wsq` wraps NIST NBIS 5.0 as a Pillow plugin. It is imported on the first `.wsq` file; it is a
dependency of ifvit-data on CPython for Linux x86_64 and Windows x64, where binary wheels exist;
elsewhere `pip install wsq` builds it with a C compiler, and until then a `.wsq` file is refused
with that advice. It gives 8-bit gray, and the resolution is the `PPI` of the file's NISTCOM
comment (the plugin does not expose it, so `wsq_ppi` reads the comment; absent or not positive
means unknown).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ifvit_data.imagerules import ImageReadError, check_side, metadata_dpi

WSQ_MISSING = (
    "reading WSQ needs the `wsq` package (NIST NBIS decoder), not installed here: `pip "
    "install wsq` (binary wheels for CPython on Linux x86_64 and Windows x64, elsewhere it needs a "
    "C compiler), or convert the file to PNG"
)
"""The reason given for a `.wsq` file when the `wsq` package cannot be imported."""

_WSQ_SOI, _WSQ_SOB, _WSQ_COM = 0xFFA0, 0xFFA3, 0xFFA8


def wsq_ppi(data: bytes) -> int | None:
    """The `PPI` value of a WSQ stream's NISTCOM comment, or None (no NISTCOM, no PPI, or not > 0).

    Walks the header segments (each `FFxx`, a 2-byte big-endian length that counts itself, then the
    payload) from after the start-of-image marker to the first block (`FFA3`), as NBIS does, and
    reads the first comment (`FFA8`) that starts with `NIST_COM`: lines of `NAME VALUE`.
    """
    if len(data) < 2 or int.from_bytes(data[:2], "big") != _WSQ_SOI:
        return None
    pos = 2
    while pos + 4 <= len(data):
        marker = int.from_bytes(data[pos : pos + 2], "big")
        if marker == _WSQ_SOB or marker >> 8 != 0xFF:
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        if marker == _WSQ_COM:
            text = data[pos + 4 : pos + 2 + length].decode("latin-1")
            if text.startswith("NIST_COM"):
                for line in text.splitlines():
                    name, _, value = line.strip().partition(" ")
                    if name == "PPI":
                        try:
                            ppi = int(value.strip())
                        except ValueError:
                            return None
                        return ppi if ppi > 0 else None
                return None
        pos += 2 + length
    return None


@contextlib.contextmanager
def _stderr_captured() -> Iterator[list[str]]:
    """Redirects file descriptor 2 into a list of lines (NBIS prints its errors there from C)."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines += [ln.strip() for ln in tmp.read().decode("latin-1").splitlines() if ln.strip()]


def read_wsq(path: Path) -> tuple[np.ndarray, float | None]:
    """Decodes a WSQ file with the `wsq` package (the only place that imports it), for
    `ifvit_data.imagefile.read_image`.

    The plugin fails in several ways on a broken stream (OSError, a bare Exception "WSQ Error: -39",
    an UnboundLocalError when the frame header is missing), so any exception is a broken file here.
    """
    try:
        import wsq  # noqa: F401  (registers the "WSQ" format with Pillow)
    except ImportError:
        raise ImageReadError(path, WSQ_MISSING) from None
    data = path.read_bytes()
    err: Exception | None = None
    with _stderr_captured() as nbis, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(io.BytesIO(data), formats=["WSQ"]) as im:
                w, h = im.size
                if (reason := check_side((h, w), "the image")) is not None:
                    raise ImageReadError(path, reason)
                im.load()
                if im.mode != "L" or im.size != (w, h):
                    raise ValueError(f"decoded to mode {im.mode} {im.size}, not 8-bit gray")
                gray = np.array(im, dtype=np.uint8)
                im.info["dpi"] = (wsq_ppi(data) or 0,) * 2  # 0: unknown, as metadata_dpi reads it
                dpi = metadata_dpi(im)
        except ImageReadError:
            raise
        except Exception as e:  # noqa: BLE001  (see the docstring)
            err = e
    if err is not None:
        if isinstance(err, UnidentifiedImageError):
            detail = "no WSQ start-of-image marker FFA0"
        elif isinstance(err, (NameError, IndexError)):  # the plugin's header walk ran off the end
            detail = "the header ends before the frame header; truncated?"
        else:
            detail = f"{type(err).__name__}: {err}"
            if nbis:
                detail += f"; NBIS {nbis[0].removeprefix('ERROR').lstrip(' :')}"
        raise ImageReadError(path,
                             f"not a readable WSQ image ({detail}); check the file or remove it")
    return gray, dpi
