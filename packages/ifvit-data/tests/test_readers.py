"""Readers: layouts, identities, impressions, resolution handling and bad files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ifvit_data.readers import DatasetError, DatasetReader, scan


def _png(path: Path, img: np.ndarray, dpi: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = {"dpi": (dpi, dpi)} if dpi else {}
    Image.fromarray(img).save(path, **kw)


def test_real_fvc2002_db1_b(real_fvc: Path) -> None:
    reader = DatasetReader(real_fvc, "fvc")
    records = list(reader)
    assert len(records) == 12 and not reader.skipped.files  # fingers 101-104 x impressions 1-3
    assert sorted({r["finger"] for r in records}) == list(range(4))
    assert {r["subject"] for r in records} == {str(f) for f in range(101, 105)}
    for r in records:
        assert r["image"].dtype == np.uint8 and r["image"].shape == (374, 388)
        assert r["dpi"] == 500.0 and 1 <= r["impression"] <= 3
        assert r["source"] == f"{r['subject']}_{r['impression']}.tif"
        assert r["finger"] == int(r["subject"]) - 101
    assert reader.dpi_sources == {"default": 12}  # the TIFFs carry a placeholder 1-dpi tag


def test_fvc_db_folders_get_distinct_fingers(
    tmp_path: Path, make_ridges: Callable[..., np.ndarray]
) -> None:
    img = make_ridges(64, 64)
    for db in ("DB1_A", "DB2_A"):
        for imp in (1, 2):
            _png(tmp_path / db / f"1_{imp}.png", img)
    entries, skipped = scan(tmp_path, "fvc")
    assert [(e.subject, e.finger, e.impression) for e in entries] == [
        ("DB1_A/1", 0, 1),
        ("DB1_A/1", 0, 2),
        ("DB2_A/1", 1, 1),
        ("DB2_A/1", 1, 2),
    ]
    assert not skipped.files


def test_nist_layouts(tmp_path: Path, make_ridges: Callable[..., np.ndarray]) -> None:
    img = make_ridges(160, 160)
    for n in ("0001", "0002"):
        for k in "fs":
            _png(tmp_path / "sd4" / f"{k}{n}_03.png", img)
    e4, _ = scan(tmp_path / "sd4", "nist-sd4")
    assert [(e.subject, e.finger, e.impression) for e in e4] == [
        ("0001/03", 0, 1),
        ("0001/03", 0, 2),
        ("0002/03", 1, 1),
        ("0002/03", 1, 2),
    ]

    for name in ("00002_U_1000_1_01.png", "00002_V_500_1_01.png", "00002_U_1000_2_02.png"):
        _png(tmp_path / "sd302" / "U" / name, img)
    reader = DatasetReader(tmp_path / "sd302", "nist-sd302")
    recs = list(reader)
    assert [(r["subject"], r["finger"], r["impression"]) for r in recs] == [
        ("00002/01", 0, 1),
        ("00002/01", 0, 2),
        ("00002/02", 1, 1),
    ]
    assert recs[0]["dpi"] == 1000.0 and recs[0]["image"].shape == (80, 80)  # 1000 ppi -> 500
    assert recs[1]["dpi"] == 500.0 and recs[1]["image"].shape == (160, 160)
    assert reader.dpi_sources == {"name": 3}

    for name in ("00007_500_roll_04.png", "00007_500_plain_04.png"):
        _png(tmp_path / "sd300" / name, img)
    e300, _ = scan(tmp_path / "sd300", "nist-sd300")
    assert [(e.subject, e.impression) for e in e300] == [("00007/04", 1), ("00007/04", 2)]


def test_folder_layout_pattern_override_and_dpi(
    tmp_path: Path, make_ridges: Callable[..., np.ndarray]
) -> None:
    img = make_ridges(200, 140)
    _png(tmp_path / "alice" / "left" / "a.png", img, dpi=1000)
    _png(tmp_path / "alice" / "left" / "b.png", img)
    _png(tmp_path / "bob" / "x.png", img)
    (tmp_path / "bob" / "notes.txt").write_text("not an image")
    (tmp_path / "bob" / "y.wsq").write_bytes(b"\xff\xa0 wsq data")
    reader = DatasetReader(tmp_path, "folder")
    recs = list(reader)
    assert [(r["subject"], r["finger"], r["impression"]) for r in recs] == [
        ("alice/left", 0, 1),
        ("alice/left", 0, 2),
        ("bob", 1, 1),
    ]
    assert recs[0]["dpi"] == 1000.0 and recs[0]["image"].shape == (100, 70)  # metadata, INTER_AREA
    assert reader.skipped.ignored == 1
    assert [f for f, _ in reader.skipped.files] == ["bob/y.wsq"]  # a broken WSQ stream
    assert reader.skipped.files[0][1].startswith("not a readable WSQ image")
    (tmp_path / "bob" / "y.wsq").unlink()
    up = list(DatasetReader(tmp_path, "folder", dpi=250.0))  # the flag wins, upsampling (cubic)
    assert all(r["dpi"] == 250.0 and r["image"].shape == (400, 280) for r in up)

    custom = scan(tmp_path, "folder", pattern=r"(?P<finger>[a-z])\.png")[0]
    assert [e.subject for e in custom] == ["a", "b", "x"]
    with pytest.raises(DatasetError, match="bad --pattern"):
        scan(tmp_path, "folder", pattern="(")
    with pytest.raises(DatasetError, match="unknown layout"):
        scan(tmp_path, "xyz")
    with pytest.raises(DatasetError, match="not a directory"):
        scan(tmp_path / "missing", "fvc")


def test_bad_files_are_skipped_or_raise(
    tmp_path: Path, make_ridges: Callable[..., np.ndarray]
) -> None:
    img = make_ridges(64, 64)
    _png(tmp_path / "1_1.png", img)
    _png(tmp_path / "1_2.png", img.astype(np.uint16) * 257)  # 16-bit is normalised, not skipped
    (tmp_path / "1_3.tif").write_bytes(b"")
    (tmp_path / "1_4.tif").write_text("hello, I am text")
    good = (tmp_path / "1_1.png").read_bytes()
    (tmp_path / "1_5.png").write_bytes(good[: len(good) // 2])  # truncated
    _png(tmp_path / "oops.png", img)  # name does not match
    reader = DatasetReader(tmp_path, "fvc")
    recs = list(reader)
    assert [r["impression"] for r in recs] == [1, 2]
    np.testing.assert_array_equal(recs[1]["image"], img)
    reasons = dict(reader.skipped.files)
    assert set(reasons) == {"oops.png", "1_3.tif", "1_4.tif", "1_5.png"}
    assert "empty file" in reasons["1_3.tif"] and "not a readable image" in reasons["1_4.tif"]
    with pytest.raises(DatasetError, match="oops.png"):
        DatasetReader(tmp_path, "fvc", strict=True)
    (tmp_path / "oops.png").unlink()
    with pytest.raises(DatasetError, match="1_3.tif: empty file"):
        list(DatasetReader(tmp_path, "fvc", strict=True))
