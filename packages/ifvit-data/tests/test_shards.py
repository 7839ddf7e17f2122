"""Shards: round trip, manifest, atomicity, idempotence, the Grain data source."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ifvit_data.ingest import ingest
from ifvit_data.outputs import MARKER_NAME
from ifvit_data.schema import RecordError, decode_header, decode_record, encode_record
from ifvit_data.shards import RecordSource, ShardError, write_shards


def _record(img: np.ndarray, finger: int = 0, imp: int = 1) -> dict:
    return {
        "image": img,
        "subject": f"s{finger}",
        "finger": finger,
        "impression": imp,
        "dpi": 500.0,
        "source": f"{finger}_{imp}.png",
    }


def test_record_roundtrip_and_errors(make_ridges: Callable[..., np.ndarray]) -> None:
    rec = _record(make_ridges(40, 56), 3, 2)
    data = encode_record(rec)
    assert data == encode_record(rec)  # deterministic bytes
    back = decode_record(data)
    np.testing.assert_array_equal(back["image"], rec["image"])
    assert {k: v for k, v in back.items() if k != "image"} == {
        k: v for k, v in rec.items() if k != "image"
    }
    assert decode_header(data)["shape"] == [40, 56]
    with pytest.raises(RecordError, match="bad magic"):
        decode_record(b"XXXX" + data[4:])
    with pytest.raises(RecordError, match="corrupt record image"):
        decode_record(data[:-20])
    png = encode_record(rec, "png")
    np.testing.assert_array_equal(decode_record(png)["image"], rec["image"])
    assert decode_header(png)["encoding"] == "png" and decode_header(data)["encoding"] == "raw"
    assert len(data) > rec["image"].size
    with pytest.raises(RecordError, match="corrupt record image"):
        decode_record(png[:-30])
    with pytest.raises(ValueError, match="unknown record encoding"):
        encode_record(rec, "jpeg")
    with pytest.raises(ValueError, match="missing fields"):
        encode_record({"image": rec["image"]})
    with pytest.raises(ValueError, match="uint8"):
        encode_record({**rec, "image": rec["image"].astype(np.float32)})


def test_write_read_shards(tmp_path: Path, make_ridges: Callable[..., np.ndarray]) -> None:
    recs = [_record(make_ridges(48, 40, seed=k), k // 2, k % 2 + 1) for k in range(7)]
    res = write_shards(recs, tmp_path / "out", records_per_shard=3)
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [MARKER_NAME, "manifest.json"] + [
        f"records-0000{k}-of-00003.array_record" for k in range(3)
    ]
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m == res.manifest and m["counts"] == {"records": 7, "subjects": 4, "fingers": 4}
    assert [s["records"] for s in m["shards"]] == [3, 3, 1]
    src = RecordSource(tmp_path / "out")
    import grain

    assert isinstance(src, grain.sources.RandomAccessDataSource)  # structurally (a Protocol)
    assert len(src) == 7 and list(src.fingers) == [0, 0, 1, 1, 2, 2, 3]
    for k in (0, 4, 6):
        np.testing.assert_array_equal(src[k]["image"], recs[k]["image"])
        assert src[k]["index"] == k and src[k]["impression"] == recs[k]["impression"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_refuses_foreign_folder_and_cleans_up(
    tmp_path: Path, make_ridges: Callable[..., np.ndarray]
) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ShardError, match="not empty"):
        write_shards([_record(make_ridges(16, 16))], tmp_path / "mine")

    def boom():
        yield _record(make_ridges(16, 16))
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_shards(boom(), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # nothing half-written
    with pytest.raises(ShardError, match="no readable images"):
        write_shards([], tmp_path / "out")
    with pytest.raises(ShardError, match="no manifest"):
        RecordSource(tmp_path / "nowhere")


def test_ingest_real_fvc_idempotent(tmp_path: Path, real_fvc: Path) -> None:
    # 12 real prints (4 fingers x 3 impressions), 5 per shard -> shards of 5, 5 and 2 records.
    res, _ = ingest(real_fvc, "fvc", tmp_path / "db", records_per_shard=5)
    m = res.manifest
    assert not res.reused and m["counts"]["records"] == 12 and m["counts"]["fingers"] == 4
    assert m["counts"]["skipped"] == 0 and len(m["shards"]) == 3
    assert m["dpi_handling"]["sources"] == {"default": 12}
    before = {p.name: p.read_bytes() for p in (tmp_path / "db").iterdir()}
    again, _ = ingest(real_fvc, "fvc", tmp_path / "db", records_per_shard=5)
    assert again.reused
    # A forced rebuild (other folder) gives byte-identical shards and manifest.
    ingest(real_fvc, "fvc", tmp_path / "db2", records_per_shard=5)
    after = {p.name: p.read_bytes() for p in (tmp_path / "db2").iterdir()}
    assert after == before
    src = RecordSource(tmp_path / "db")
    for k in (0, 7, 11):  # first shard, the second's middle, the short last shard
        rec = src[k]
        ref = np.array(Image.open(real_fvc / rec["source"]))
        np.testing.assert_array_equal(rec["image"], ref)
    # Changing an option rebuilds in place.
    res3, _ = ingest(real_fvc, "fvc", tmp_path / "db", records_per_shard=12)
    assert not res3.reused and len(RecordSource(tmp_path / "db").manifest["shards"]) == 1
    # ... and the three shard files of the previous output are gone (they were ours)
    assert sorted(p.name for p in (tmp_path / "db").iterdir()) == [
        MARKER_NAME, "manifest.json", "records-00000-of-00001.array_record"
    ]


def _fvc_folder(root: Path, make_ridges: Callable[..., np.ndarray], n: int = 4) -> Path:
    """A small FVC-style folder of PNGs with a manifest.json of its own (like `ifvit synth`'s)."""
    root.mkdir(parents=True)
    for k in range(n):
        Image.fromarray(make_ridges(96, 96, seed=k)).save(root / f"{k // 2 + 1}_{k % 2 + 1}.png")
    (root / "manifest.json").write_text('{"generator": "someone else"}')
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_ingest_never_writes_over_its_input(
    tmp_path: Path, make_ridges: Callable[..., np.ndarray]
) -> None:
    src = _fvc_folder(tmp_path / "d", make_ridges)
    before = _snapshot(tmp_path)
    for out in (src, src / "shards", tmp_path):
        for force in (False, True):
            with pytest.raises(ShardError, match="input"):
                ingest(src, "fvc", out, force=force)
    assert _snapshot(tmp_path) == before and sorted(p.name for p in src.iterdir()) == [
        "1_1.png", "1_2.png", "2_1.png", "2_2.png", "manifest.json"
    ]


def test_a_users_manifest_is_not_replaced_without_force(
    tmp_path: Path, make_ridges: Callable[..., np.ndarray]
) -> None:
    src = _fvc_folder(tmp_path / "in", make_ridges)
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text('{"mine": 1}')
    (out / "notes.txt").write_text("keep")
    with pytest.raises(ShardError, match="not empty and is not an ifvit shards output"):
        ingest(src, "fvc", out)
    assert _snapshot(out) == {"manifest.json": b'{"mine": 1}', "notes.txt": b"keep"}
    res, _ = ingest(src, "fvc", out, force=True)  # explicit: write here, keep other files
    assert res.manifest["counts"]["records"] == 4 and (out / "notes.txt").read_text() == "keep"
    assert len(RecordSource(out)) == 4


def test_interrupted_rebuild_keeps_the_previous_output(
    tmp_path: Path, make_ridges: Callable[..., np.ndarray]
) -> None:
    recs = [_record(make_ridges(48, 40, seed=k), k // 2, k % 2 + 1) for k in range(5)]
    out = tmp_path / "out"
    write_shards(recs, out, records_per_shard=2, fingerprint="a")
    before = _snapshot(out)

    def interrupted_run():
        yield from recs[:3]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_shards(interrupted_run(), out, records_per_shard=1, fingerprint="b")
    assert _snapshot(out) == before  # no temp files, the old output intact and readable
    assert len(RecordSource(out)) == 5
    with pytest.raises(KeyboardInterrupt):  # a first run into a new folder leaves nothing
        write_shards(interrupted_run(), tmp_path / "new", fingerprint="c")
    assert not (tmp_path / "new").exists()


def test_ingest_does_not_import_grain() -> None:
    """Writing shards needs array-record only; grain imports jax where it is installed (seconds,
    and jax's gc callback swallows Ctrl-C), so `ifvit ingest` must not import it."""
    import subprocess
    import sys

    code = ("import sys, ifvit_data.ingest, ifvit_data.shards, ifvit_data.synth; "
            "print(sorted(m for m in ('grain', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
