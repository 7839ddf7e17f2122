"""Every supported pixel mode becomes the right gray image, or is refused with the reason.

The expected images come from an independent decoder on the same file: OpenCV's
`imread(IMREAD_GRAYSCALE)` (its own PNG/TIFF/BMP decoders and BGR->gray conversion) or Pillow's own
conversions (`convert("L")`, `alpha_composite` over white), never from `ifvit_data.imagefile`.
Tolerance is 1 gray level where the two sides round at different steps.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ifvit_data.imagefile import MAX_SIDE, ImageReadError, read_image
from ifvit_data.readers import DatasetError, DatasetReader

H, W = 72, 96


@pytest.fixture
def gray(make_ridges: Callable[..., np.ndarray]) -> np.ndarray:
    """A print-like uint8 gray image with every level from dark ridges to white background."""
    img = make_ridges(H, W)
    img[0, :64] = np.arange(0, 256, 4)  # full range present
    return img


@pytest.fixture
def rgb(gray: np.ndarray) -> np.ndarray:
    """A colour version whose channels differ (so the luma weights matter)."""
    rng = np.random.default_rng(1)
    noise = rng.integers(-40, 41, (H, W, 3))
    return np.clip(gray[..., None].astype(int) + noise, 0, 255).astype(np.uint8)


def alpha_channel() -> np.ndarray:
    a = np.tile(np.linspace(0, 255, W).round().astype(np.uint8), (H, 1))
    a[: H // 3] = 255  # opaque band
    a[-4:] = 0  # fully transparent band
    return a


def cv_gray(path: Path) -> np.ndarray:
    ref = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert ref is not None, path
    return ref


def pil_over_white(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("L"))


def close(ours: np.ndarray, ref: np.ndarray, tol: int = 1) -> None:
    assert ours.dtype == np.uint8 and ours.shape == ref.shape
    diff = np.abs(ours.astype(int) - ref.astype(int))
    assert diff.max() <= tol, (
        f"max diff {diff.max()} at {np.unravel_index(diff.argmax(), diff.shape)}"
    )


def mode_of(path: Path) -> str:
    with Image.open(path) as im:
        return im.mode


# ---------------------------------------------------------------------------------------------
# modes


@pytest.mark.parametrize("ext", ["png", "tif", "bmp", "pgm"])
def test_gray8(tmp_path: Path, gray: np.ndarray, ext: str) -> None:
    p = tmp_path / f"g.{ext}"
    Image.fromarray(gray).save(p)
    ours, _ = read_image(p)
    np.testing.assert_array_equal(ours, cv_gray(p))
    np.testing.assert_array_equal(ours, gray)


@pytest.mark.parametrize("ext", ["png", "tif", "pgm"])
def test_gray16(tmp_path: Path, gray: np.ndarray, ext: str) -> None:
    rng = np.random.default_rng(2)
    g16 = (gray.astype(np.uint16) * 257 + rng.integers(-128, 128, gray.shape)).clip(0, 65535)
    g16 = g16.astype(np.uint16)
    g16[1, :3] = (0, 300, 65535)  # a dark 16-bit value must stay dark (no "max <= 255" guess)
    p = tmp_path / f"g16.{ext}"
    assert cv2.imwrite(str(p), g16)
    assert mode_of(p) in ("I;16", "I;16B", "I")
    ours, _ = read_image(p)
    close(ours, cv_gray(p))  # OpenCV scales 16 -> 8 bit by v >> 8
    assert ours[1, 1] == 1 and ours[1, 2] == 255


def test_gray16_dark_image_stays_dark(tmp_path: Path) -> None:
    g16 = np.full((H, W), 200, np.uint16)  # every value <= 255, yet 16-bit: nearly black
    p = tmp_path / "dark16.png"
    assert cv2.imwrite(str(p), g16)
    ours, _ = read_image(p)
    close(ours, cv_gray(p))
    assert ours.max() <= 1


def test_one_bit(tmp_path: Path, gray: np.ndarray) -> None:
    for ext in ("png", "tif", "bmp"):
        p = tmp_path / f"b.{ext}"
        Image.fromarray(gray).convert("1", dither=Image.Dither.NONE).save(p)
        assert mode_of(p) == "1"
        ours, _ = read_image(p)
        with Image.open(p) as im:
            np.testing.assert_array_equal(ours, np.asarray(im.convert("L")))
        np.testing.assert_array_equal(ours, cv_gray(p))
        assert set(np.unique(ours)) == {0, 255}


@pytest.mark.parametrize("ext", ["png", "tif", "bmp"])
def test_rgb(tmp_path: Path, rgb: np.ndarray, ext: str) -> None:
    p = tmp_path / f"c.{ext}"
    Image.fromarray(rgb).save(p)
    ours, _ = read_image(p)
    close(ours, cv_gray(p))
    with Image.open(p) as im:
        close(ours, np.asarray(im.convert("L")))


def test_rgb_of_a_gray_print_is_that_print(tmp_path: Path, gray: np.ndarray) -> None:
    # the reported bug: an 8-bit RGB PNG of a gray print was stored as a white image
    p = tmp_path / "rgb.png"
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(p)
    ours, _ = read_image(p)
    np.testing.assert_array_equal(ours, gray)
    assert ours.mean() < 250


def test_rgb16(tmp_path: Path, rgb: np.ndarray) -> None:
    p = tmp_path / "c16.png"
    assert cv2.imwrite(str(p), rgb[..., ::-1].astype(np.uint16) * 257)
    ours, _ = read_image(p)
    close(ours, cv_gray(p))


def test_rgba_is_composited_over_white(tmp_path: Path, rgb: np.ndarray) -> None:
    p = tmp_path / "a.png"
    Image.fromarray(np.dstack([rgb, alpha_channel()]), "RGBA").save(p)
    assert mode_of(p) == "RGBA"
    ours, _ = read_image(p)
    close(ours, pil_over_white(p))
    assert (ours[-4:] == 255).all()  # transparent = white paper
    q = tmp_path / "c.png"
    Image.fromarray(rgb).save(q)
    np.testing.assert_array_equal(ours[: H // 3], read_image(q)[0][: H // 3])  # opaque = RGB


def test_gray_alpha(tmp_path: Path, gray: np.ndarray) -> None:
    p = tmp_path / "la.png"
    Image.fromarray(np.dstack([gray, alpha_channel()]), "LA").save(p)
    assert mode_of(p) == "LA"
    ours, _ = read_image(p)
    close(ours, pil_over_white(p))


def test_palette(tmp_path: Path, rgb: np.ndarray, gray: np.ndarray) -> None:
    p = tmp_path / "p.png"
    Image.fromarray(rgb).quantize(64).save(p)
    assert mode_of(p) == "P"
    ours, _ = read_image(p)
    close(ours, cv_gray(p))
    # a gray palette (as 8-bit BMP/PNG writers often use) gives exactly the gray levels
    q = tmp_path / "pg.png"
    Image.fromarray(gray, "L").save(q)
    with Image.open(q) as im:
        indexed = Image.frombytes("P", im.size, im.tobytes())
    indexed.putpalette([v for k in range(256) for v in (k, k, k)])
    indexed.save(q)
    assert mode_of(q) == "P"
    np.testing.assert_array_equal(read_image(q)[0], gray)


def test_palette_with_transparency(tmp_path: Path, rgb: np.ndarray) -> None:
    p = tmp_path / "pt.png"
    im = Image.fromarray(rgb).quantize(16)
    im.info["transparency"] = 0
    im.save(p, transparency=0)
    with Image.open(p) as chk:
        assert chk.mode == "P" and "transparency" in chk.info
    ours, _ = read_image(p)
    close(ours, pil_over_white(p))
    idx = np.asarray(Image.open(p))
    assert (ours[idx == 0] == 255).all()


def test_cmyk(tmp_path: Path, rgb: np.ndarray) -> None:
    p = tmp_path / "k.tif"
    Image.fromarray(rgb).convert("CMYK").save(p)
    assert mode_of(p) == "CMYK"
    ours, _ = read_image(p)
    with Image.open(p) as im:
        close(ours, np.asarray(im.convert("RGB").convert("L")))


def test_float_tiff(tmp_path: Path, gray: np.ndarray) -> None:
    f = gray.astype(np.float32) / 255.0
    p = tmp_path / "f.tif"
    Image.fromarray(f, "F").save(p)
    assert mode_of(p) == "F"
    ours, _ = read_image(p)
    ref = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)  # OpenCV's own float TIFF decoder
    assert ref.dtype == np.float32
    np.testing.assert_array_equal(ours, np.round(ref.astype(np.float64) * 255).astype(np.uint8))
    np.testing.assert_array_equal(ours, gray)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (lambda g: g.astype(np.float32), "not \\[0, 1\\]"),  # 0..255 floats: ambiguous
        (lambda g: np.where(g > 100, np.nan, g / 255.0).astype(np.float32), "NaN or infinity"),
    ],
)
def test_float_tiff_refused(tmp_path: Path, gray: np.ndarray, values, reason: str) -> None:
    p = tmp_path / "f.tif"
    Image.fromarray(values(gray), "F").save(p)
    with pytest.raises(ImageReadError, match=reason):
        read_image(p)


def test_int32_tiff_refused(tmp_path: Path, gray: np.ndarray) -> None:
    p = tmp_path / "i.tif"
    Image.fromarray(gray.astype(np.int32) * 1000, "I").save(p)
    with pytest.raises(ImageReadError, match="32-bit integer"):
        read_image(p)


# ---------------------------------------------------------------------------------------------
# sizes, bombs, resolution


def png_claiming(w: int, h: int) -> bytes:
    """A PNG whose header claims `w x h` 8-bit gray pixels, with data for only a few rows."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (w + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def tiff_claiming(w: int, h: int) -> bytes:
    """A little-endian TIFF whose header claims `w x h` 8-bit gray pixels and holds 16 bytes."""
    tags = [
        (256, 4, w),
        (257, 4, h),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 0),
        (277, 3, 1),
        (278, 4, h),
        (279, 4, w * h),
    ]
    ifd_size = 2 + 12 * len(tags) + 4
    data_at = 8 + ifd_size
    out = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(tags))
    for tag, typ, val in tags:
        val = data_at if tag == 273 else val
        packed = struct.pack("<HI", val, 0)[:4] if typ == 3 else struct.pack("<I", val)
        out += struct.pack("<HHI", tag, typ, 1) + packed
    return out + b"\0\0\0\0" + b"\0" * 16


@pytest.mark.parametrize("maker", [png_claiming, tiff_claiming])
@pytest.mark.parametrize("size", [(20000, 20000), (10000, 10000), (MAX_SIDE + 1, 100)])
def test_huge_header_claims_are_refused_before_decoding(tmp_path: Path, maker, size) -> None:
    p = tmp_path / f"bomb.{'png' if maker is png_claiming else 'tif'}"
    p.write_bytes(maker(*size))
    with pytest.raises(ImageReadError) as e:
        read_image(p)
    assert f"{MAX_SIDE}" in e.value.reason and "\n" not in str(e.value)


def test_tiny_image_refused(tmp_path: Path) -> None:
    p = tmp_path / "t.png"
    Image.fromarray(np.zeros((40, 200), np.uint8)).save(p)
    with pytest.raises(ImageReadError, match="200x40 pixels; every side must be 64-8192"):
        read_image(p)


def test_metadata_dpi(tmp_path: Path, gray: np.ndarray) -> None:
    cases = {72: None, 1: None, 96: None, 500: 500.0, 1000: 1000.0, 20000: 20000.0}
    for dpi, want in cases.items():
        p = tmp_path / f"d{dpi}.png"
        Image.fromarray(gray).save(p, dpi=(dpi, dpi))
        assert read_image(p)[1] == want, dpi
    p = tmp_path / "aniso.png"
    Image.fromarray(gray).save(p, dpi=(500, 1000))
    with pytest.raises(ImageReadError, match="non-square pixels"):
        read_image(p)


@pytest.mark.parametrize("dpi", [float("inf"), float("nan"), 0.001, 0.0, -500.0, 1e9, 100.0])
def test_dpi_flag_out_of_range_is_refused(tmp_path: Path, gray: np.ndarray, dpi: float) -> None:
    Image.fromarray(gray).save(tmp_path / "1_1.png")
    with pytest.raises(DatasetError, match="--dpi .* is outside 150-5000"):
        DatasetReader(tmp_path, "fvc", dpi=dpi)


def test_bad_resolutions_and_sizes_are_skipped_with_reasons(
    tmp_path: Path, make_ridges: Callable[..., np.ndarray]
) -> None:
    img = make_ridges(200, 200)
    Image.fromarray(img).save(tmp_path / "1_1.png", dpi=(500, 500))
    Image.fromarray(img).save(tmp_path / "1_2.png", dpi=(20000, 20000))  # metadata nonsense
    Image.fromarray(make_ridges(64, 64)).save(tmp_path / "1_3.png", dpi=(1000, 1000))  # 32 px
    Image.fromarray(make_ridges(3000, 200)).save(tmp_path / "1_4.png", dpi=(150, 150))  # 10000 px
    Image.fromarray(img).save(tmp_path / "1_5.png", dpi=(1000, 1000))  # fine: 100 px
    (tmp_path / "1_6.png").write_bytes(png_claiming(20000, 20000))  # a bomb does not abort
    reader = DatasetReader(tmp_path, "fvc")
    recs = list(reader)
    assert [r["source"] for r in recs] == ["1_1.png", "1_5.png"]
    assert recs[1]["image"].shape == (100, 100) and recs[1]["dpi"] == 1000.0
    reasons = dict(reader.skipped.files)
    assert "its metadata says 20000 dpi is outside 150-5000; pass --dpi" in reasons["1_2.png"]
    assert "at 500 ppi (1000 dpi) the image is 32x32 pixels" in reasons["1_3.png"]
    assert "is 667x10000 pixels" in reasons["1_4.png"]
    assert "decompression bomb" in reasons["1_6.png"] and len(reasons) == 4
    # the flag overrides the metadata: now 1_2 reads at 500 dpi
    reader = DatasetReader(tmp_path, "fvc", dpi=500)
    assert "1_2.png" in [r["source"] for r in reader]
