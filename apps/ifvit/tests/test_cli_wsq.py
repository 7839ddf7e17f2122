"""WSQ prints through the commands: `ifvit match A.wsq B.png` and `ifvit ingest` of .wsq files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ifvit_cli.main import main

pytest.importorskip("wsq", reason="the wsq package has no wheel for this platform")

# 10 real FVC2002 DB1_B prints (fingers 101-105, impressions 1-2) kept in the repository for tests
REAL = Path(__file__).resolve().parents[3] / "packages/ifvit-train/tests/data/fvc2002_db1_b"


def _to_wsq(src: Path, dst: Path) -> None:
    """Encodes a print with the `wsq` package's NBIS encoder (0.75 bit per pixel, PPI 500)."""
    Image.open(src).convert("L").save(dst, "WSQ")


def test_match_a_wsq_against_a_png_with_the_shipped_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_png, b_png = REAL / "101_1.png", REAL / "101_2.png"
    a_wsq = tmp_path / "101_1.wsq"
    _to_wsq(a_png, a_wsq)
    assert main(["match", str(a_wsq), str(b_png), "--json"]) == 0
    from_wsq = json.loads(capsys.readouterr().out)
    assert main(["match", str(a_png), str(b_png), "--json"]) == 0
    from_png = json.loads(capsys.readouterr().out)
    # the lossy copy scores and aligns like the original (measured: 0.9951 vs 0.9940, shift < 0.01
    # px)
    assert abs(from_wsq["score"] - from_png["score"]) < 0.05
    t_wsq, t_png = (np.array(r["alignment"]["translation"]) for r in (from_wsq, from_png))
    assert np.abs(t_wsq - t_png).max() < 2.0
    assert from_wsq["decision"] == from_png["decision"]


def test_ingest_a_folder_of_wsq_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "wsq"
    src.mkdir()
    for png in sorted(REAL.glob("*.png")):
        _to_wsq(png, src / f"{png.stem}.wsq")
    (src / "106_1.wsq").write_bytes((src / "101_1.wsq").read_bytes()[:2000])  # truncated
    out = tmp_path / "shards"
    assert main(["ingest", "--input", str(src), "--layout", "fvc", "--out", str(out),
                 "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "10 records, 5 fingers" in captured.out and "skipped 1 bad file(s)" in captured.out
    assert "skipped 106_1.wsq: not a readable WSQ image" in captured.out
    assert captured.err == ""
    from ifvit_data.shards import RecordSource

    source = RecordSource(out)
    assert len(source) == 10
    for k in range(len(source)):
        rec = source[k]
        assert rec["source"].endswith(".wsq") and rec["dpi"] == 500.0  # from the NISTCOM comment
        with Image.open(src / rec["source"]) as im:  # the plugin alone, as the user would decode it
            np.testing.assert_array_equal(rec["image"], np.asarray(im))
