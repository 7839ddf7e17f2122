"""WSQ files: decoded by the `wsq` package (NBIS) through `read_image`, resolution from NISTCOM.

The files are written by the same package's encoder (NBIS, fixed at 0.75 bit per pixel, NISTCOM
`PPI 500`); the expected resolution of an edited file is also read by NBIS's own parser
(`_wsq.decompress`, the C extension under the plugin), not only by `ifvit_data.wsq.wsq_ppi`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ifvit_data.imagefile import ImageReadError, read_image
from ifvit_data.readers import DatasetReader
from ifvit_data.wsq import WSQ_MISSING, wsq_ppi

wsq = pytest.importorskip("wsq", reason="the wsq package has no wheel for this platform")
import _wsq  # noqa: E402  (the plugin's C extension: NBIS's own decoder and NISTCOM parser)

H, W = 200, 176
MAE_BOUND = 6.5
"""Mean absolute error bound of a WSQ round trip of `make_ridges(200, 176)` at 0.75 bpp: measured
4.66 gray levels (3.6-4.7 over seeds 0-3 and 300 x 260 images); a Gaussian blur with sigma 1 px
gives 13.7 and a 1-pixel shift 19.1."""


@pytest.fixture
def ridges(make_ridges: Callable[..., np.ndarray]) -> np.ndarray:
    return make_ridges(H, W, seed=0)


def _write_wsq(path: Path, img: np.ndarray) -> bytes:
    Image.fromarray(img).save(path, "WSQ")
    return path.read_bytes()


def _with_ppi(data: bytes, old: bytes, new: bytes) -> bytes:
    """The stream with its NISTCOM `PPI old` replaced by `PPI new` (same length: lengths stay
    valid)."""
    assert len(old) == len(new) and data.count(b"\nPPI " + old + b"\n") == 1
    return data.replace(b"\nPPI " + old + b"\n", b"\nPPI " + new + b"\n")


def _without_comment(data: bytes) -> bytes:
    """The stream with its comment segment (FFA8) cut out: still valid WSQ, no resolution."""
    pos = data.index(b"\xff\xa8")
    length = int.from_bytes(data[pos + 2 : pos + 4], "big")
    return data[:pos] + data[pos + 2 + length :]


def test_round_trip_is_close_and_gray(tmp_path: Path, ridges: np.ndarray) -> None:
    p = tmp_path / "a.wsq"
    data = _write_wsq(p, ridges)
    assert b"WSQ_BITRATE 0.750000" in data  # the known rate the bound was measured at
    gray, dpi = read_image(p)
    assert gray.dtype == np.uint8 and gray.shape == ridges.shape
    f = ridges.astype(np.float64)
    mae = float(np.abs(gray - f).mean())
    blurred = float(np.abs(cv2.GaussianBlur(ridges, (0, 0), 1.0) - f).mean())
    shifted = float(np.abs(np.roll(ridges, 1, axis=1) - f).mean())
    assert mae < MAE_BOUND and mae < 0.5 * min(blurred, shifted), (mae, blurred, shifted)
    assert dpi == 500.0 and _wsq.decompress(data)[3] == 500


def test_resolution_from_nistcom(tmp_path: Path, ridges: np.ndarray) -> None:
    data = _write_wsq(tmp_path / "a.wsq", ridges)
    p = tmp_path / "b.wsq"
    p.write_bytes(_with_ppi(data, b"500", b"750"))
    assert _wsq.decompress(p.read_bytes())[3] == 750  # NBIS reads the edit the same way
    gray, dpi = read_image(p)
    assert dpi == 750.0 and gray.shape == ridges.shape
    q = tmp_path / "c.wsq"
    q.write_bytes(_without_comment(data))
    assert _wsq.decompress(q.read_bytes())[3] == -1  # NBIS: unknown
    gray_q, dpi_q = read_image(q)
    assert dpi_q is None and wsq_ppi(q.read_bytes()) is None
    np.testing.assert_array_equal(gray_q, read_image(tmp_path / "a.wsq")[0])
    # FVC-style placeholder resolutions count as unknown, as for TIFF / PNG metadata
    q.write_bytes(_with_ppi(data, b"500", b"072"))
    assert read_image(q)[1] is None


def test_reader_resamples_by_the_file_resolution(tmp_path: Path, ridges: np.ndarray) -> None:
    data = _write_wsq(tmp_path / "tmp.wsq", ridges)
    (tmp_path / "tmp.wsq").unlink()
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "1.wsq").write_bytes(_with_ppi(data, b"500", b"999"))
    (tmp_path / "alice" / "2.wsq").write_bytes(_without_comment(data))
    recs = list(DatasetReader(tmp_path, "folder"))
    assert [r["dpi"] for r in recs] == [999.0, 500.0]  # the file's, then the layout default
    assert recs[0]["image"].shape == (100, 88) and recs[1]["image"].shape == (H, W)


@pytest.mark.parametrize(
    "name, cut, expected",
    [
        ("header.wsq", 40, "the header ends before the frame header"),
        ("half.wsq", None, "premature End Of Buffer"),  # NBIS's own words, kept off the terminal
        ("garbage.wsq", 0, "no WSQ start-of-image marker"),
    ],
)
def test_broken_files_are_one_line_errors(
    tmp_path: Path,
    ridges: np.ndarray,
    capfd: pytest.CaptureFixture[str],
    name: str,
    cut: int | None,
    expected: str,
) -> None:
    data = _write_wsq(tmp_path / "good.wsq", ridges)
    p = tmp_path / name
    if cut == 0:
        p.write_bytes(np.random.default_rng(0).bytes(4000))
    else:
        p.write_bytes(data[: cut or len(data) // 2])
    capfd.readouterr()
    with pytest.raises(ImageReadError) as e:
        read_image(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: not a readable WSQ image") and expected in msg
    assert "\n" not in msg
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # NBIS prints its errors from C: captured, not shown


def test_a_png_named_wsq_and_an_empty_file(tmp_path: Path, ridges: np.ndarray) -> None:
    p = tmp_path / "png.wsq"
    Image.fromarray(ridges).save(p, "PNG")
    with pytest.raises(ImageReadError, match="not a readable WSQ image"):
        read_image(p)
    (tmp_path / "e.wsq").write_bytes(b"")
    with pytest.raises(ImageReadError, match="e.wsq: empty file"):
        read_image(tmp_path / "e.wsq")


def test_without_the_wsq_package_says_how_to_install(
    tmp_path: Path, ridges: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "a.wsq"
    _write_wsq(p, ridges)
    monkeypatch.setitem(sys.modules, "wsq", None)  # `import wsq` raises ImportError
    with pytest.raises(ImageReadError) as e:
        read_image(p)
    assert str(e.value) == f"{p}: {WSQ_MISSING}" and "pip install wsq" in WSQ_MISSING
