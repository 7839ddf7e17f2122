"""`ifvit ingest` end to end: real FVC prints, bad files, strict mode, idempotence, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ifvit_cli.main import main

# 12 original FVC2002 DB1_B TIFFs kept with ifvit-data's tests: fingers 101-104 x impressions 1-3.
REAL_FVC = Path(__file__).resolve().parents[3] / "packages/ifvit-data/tests/data/fvc2002_db1_b"


@pytest.fixture
def fvc_copy(tmp_path: Path) -> Path:
    """A writable copy of the real prints (with their README.md and SHA256SUMS) under DB1_B/."""
    dst = tmp_path / "in" / "DB1_B"
    dst.parent.mkdir()
    shutil.copytree(REAL_FVC, dst)
    return dst.parent


def test_ingest_real_with_bad_files(
    fvc_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = fvc_copy / "DB1_B"
    (db / "111_1.tif").write_bytes(b"")  # empty
    (db / "111_2.tif").write_text("this is text, not a TIFF")  # text named .tif
    good = (db / "101_1.tif").read_bytes()
    (db / "111_3.tif").write_bytes(good[:300])  # truncated / corrupt
    (db / "readme.txt").write_text("notes")  # not an image: ignored
    out = tmp_path / "shards"
    rc = main(
        [
            "ingest",
            "--input",
            str(fvc_copy),
            "--layout",
            "fvc",
            "--out",
            str(out),
            "--records-per-shard",
            "5",
            "--quiet",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0
    assert (
        "12 records, 4 fingers" in text and "skipped 3 bad file(s)" in text and "ignored 3" in text
    )  # readme.txt + the README.md, SHA256SUMS of the copy
    for name in ("111_1.tif", "111_2.tif", "111_3.tif"):
        assert f"skipped DB1_B/{name}" in text
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["records"] == 12 and m["layout"] == "fvc" and m["manifest_version"] == 1
    assert [s["file"] for s in m["shards"]] == [
        f"records-0000{k}-of-00003.array_record" for k in range(3)
    ]
    assert set(m["fields"]) == {"image", "subject", "finger", "impression", "dpi", "source"}
    assert len(m["skipped"]) == 3

    rc = main(
        [
            "ingest",
            "--input",
            str(fvc_copy),
            "--layout",
            "fvc",
            "--out",
            str(out),
            "--records-per-shard",
            "5",
            "--quiet",
        ]
    )
    assert rc == 0 and "already up to date" in capsys.readouterr().out

    from ifvit_data.shards import RecordSource

    rec = RecordSource(out)[0]
    np.testing.assert_array_equal(rec["image"], np.array(Image.open(db / "101_1.tif")))
    assert rec["subject"] == "DB1_B/101"

    rc = main(
        [
            "ingest",
            "--input",
            str(fvc_copy),
            "--layout",
            "fvc",
            "--out",
            str(tmp_path / "s2"),
            "--strict",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "111_1.tif: empty file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s2").exists()


def test_ingest_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "ingest",
            "--input",
            str(tmp_path / "nope"),
            "--layout",
            "fvc",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2 and "not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    rc = main(
        [
            "ingest",
            "--input",
            str(tmp_path / "empty"),
            "--layout",
            "fvc",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2 and "no readable images" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    assert "ifvit ingest --input" in capsys.readouterr().out


def test_ingest_of_rgb_pngs_stores_the_prints_not_white(
    fvc_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported case: ordinary 8-bit RGB PNGs were stored as white images."""
    src = tmp_path / "rgb"
    src.mkdir()
    gray = {}
    for tif in sorted((fvc_copy / "DB1_B").glob("10[12]_*.tif")):
        g = np.array(Image.open(tif))
        gray[tif.stem + ".png"] = g
        Image.fromarray(np.stack([g] * 3, axis=-1)).save(src / f"{tif.stem}.png")
    assert main(["ingest", "--input", str(src), "--layout", "fvc", "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    from ifvit_data.shards import RecordSource

    source = RecordSource(tmp_path / "o")
    assert len(source) == len(gray) == 6  # fingers 101, 102 x impressions 1-3
    for k in range(len(source)):
        rec = source[k]
        np.testing.assert_array_equal(rec["image"], gray[rec["source"]])


def test_synth_then_ingest_into_the_same_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reported case: `--out d` equal to `--input d` deleted the source images."""
    d = tmp_path / "d"
    assert main(["synth", "--out", str(d), "--fingers", "2", "--impressions", "2", "--seed", "0",
                 "--size", "96x96", "--workers", "1"]) == 0
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    capsys.readouterr()
    for extra in ([], ["--force"]):
        rc = main(["ingest", "--input", str(d), "--layout", "fvc", "--out", str(d), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "is the input" in err[0]
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
