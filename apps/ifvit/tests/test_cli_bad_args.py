"""Every command with bad arguments: exit 2, exactly one line on stderr, no traceback, no new file.

A table of (command line, expected words of the error). Paths in the table are relative to a
scratch folder that also is the working directory; the whole folder is compared before and after.
Most rows run in-process (`ifvit_cli.main.main`); `test_real_entry_point` runs one row per command
through the installed `ifvit` script to show that the same holds for the real process.

For `demo`, only the validation that fails before any work is tested (its stages are being rebuilt).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ifvit_cli.main import main

SYNTH = ["synth", "--fingers", "2", "--impressions", "2", "--seed", "0", "--size", "64x64"]

CASES: list[tuple[str, list[str], str]] = [
    # ---- synth ------------------------------------------------------------------------------
    ("synth no --out", ["synth", "--fingers", "2", "--impressions", "2", "--seed", "0"],
     "the following arguments are required: --out"),
    ("synth --fingers abc", ["synth", "--out", "s", "--fingers", "abc", "--impressions", "2",
                             "--seed", "0"], "invalid int value: 'abc'"),
    ("synth --fingers 0", [*SYNTH[:1], "--out", "s", "--fingers", "0", "--impressions", "2",
                           "--seed", "0"], "--fingers 0: must be between 1"),
    ("synth --fingers huge", ["synth", "--out", "s", "--fingers", "99999999", "--impressions", "2",
                              "--seed", "0"], "--fingers 99999999: must be between 1"),
    ("synth too many images", ["synth", "--out", "s", "--fingers", "100000", "--impressions",
                               "1000", "--seed", "0"], "more than 10,000,000 images"),
    ("synth --impressions -3", ["synth", "--out", "s", "--fingers", "2", "--impressions", "-3",
                                "--seed", "0"], "--impressions -3: must be between 1"),
    ("synth --seed -1", ["synth", "--out", "s", "--fingers", "2", "--impressions", "2",
                         "--seed", "-1"], "--seed -1: must be an integer between 0"),
    ("synth --seed 2**64", ["synth", "--out", "s", "--fingers", "2", "--impressions", "2",
                            "--seed", str(2**64)], "must be an integer between 0"),
    ("synth --size 300", [*SYNTH[:-2], "--out", "s", "--size", "300"], "expected HxW"),
    ("synth --size 10x10", [*SYNTH[:-2], "--out", "s", "--size", "10x10"], "between 32 and 4096"),
    ("synth --size 9000x300", [*SYNTH[:-2], "--out", "s", "--size", "9000x300"], "between 32 and"),
    ("synth --workers 0", [*SYNTH, "--out", "s", "--workers", "0"], "--workers 0: must be"),
    ("synth --out is a file", [*SYNTH, "--out", "a_file.txt"], "is a file; give a folder path"),
    ("synth --out under a file", [*SYNTH, "--out", "a_file.txt/s"], "is a file, so nothing can"),
    ("synth --out a user's folder", [*SYNTH, "--out", "user_folder"], "not empty"),
    ("synth --out is an ingest output", [*SYNTH, "--out", "shards_out"],
     "holds an ifvit shards output, not synth"),
    ("synth --contact-sheet exists", [*SYNTH, "--out", "s", "--contact-sheet", "sheet.png"],
     "sheet.png: already exists"),
    ("synth --contact-sheet folder", [*SYNTH, "--out", "s", "--contact-sheet", "user_folder"],
     "give a file name ending in .png"),
    ("synth --contact-sheet is a folder", [*SYNTH, "--out", "s", "--contact-sheet", "dir.png"],
     "is a folder"),
    ("synth --contact-sheet inside --out", [*SYNTH, "--out", "s", "--contact-sheet", "s/c.png"],
     "is inside --out"),
    ("synth --contact-sheet under a file", [*SYNTH, "--out", "s", "--contact-sheet",
                                            "a_file.txt/c.png"], "is a file, so nothing can"),
    # ---- ingest -----------------------------------------------------------------------------
    ("ingest no --layout", ["ingest", "--input", "prints", "--out", "o"],
     "the following arguments are required: --layout"),
    ("ingest --layout bogus", ["ingest", "--input", "prints", "--layout", "bogus", "--out", "o"],
     "invalid choice: 'bogus'"),
    ("ingest --input missing", ["ingest", "--input", "nope", "--layout", "fvc", "--out", "o"],
     "not a directory"),
    ("ingest --input a file", ["ingest", "--input", "a_file.txt", "--layout", "fvc", "--out", "o"],
     "not a directory"),
    ("ingest --input no images", ["ingest", "--input", "empty", "--layout", "fvc", "--out", "o"],
     "no readable images"),
    ("ingest --dpi inf", ["ingest", "--input", "prints", "--layout", "fvc", "--out", "o",
                          "--dpi", "inf"], "--dpi inf dpi is outside 150-5000"),
    ("ingest --dpi 0.001", ["ingest", "--input", "prints", "--layout", "fvc", "--out", "o",
                            "--dpi", "0.001"], "--dpi 0.001 dpi is outside 150-5000"),
    ("ingest --dpi nan", ["ingest", "--input", "prints", "--layout", "fvc", "--out", "o",
                          "--dpi", "nan"], "--dpi nan dpi is outside"),
    ("ingest --dpi -500", ["ingest", "--input", "prints", "--layout", "fvc", "--out", "o",
                           "--dpi=-500"], "--dpi -500 dpi is outside"),
    ("ingest --dpi abc", ["ingest", "--input", "prints", "--layout", "fvc", "--out", "o",
                          "--dpi", "abc"], "invalid float value: 'abc'"),
    ("ingest --records-per-shard 0", ["ingest", "--input", "prints", "--layout", "fvc", "--out",
                                      "o", "--records-per-shard", "0"], "--records-per-shard 0"),
    ("ingest --pattern (", ["ingest", "--input", "prints", "--layout", "folder", "--out", "o",
                            "--pattern", "("], "bad --pattern"),
    ("ingest --pattern no identity", ["ingest", "--input", "prints", "--layout", "folder",
                                      "--out", "o", "--pattern", r".*\.png"],
     "no subject/finger/frgp group"),
    ("ingest --encoding jpeg", ["ingest", "--input", "prints", "--layout", "fvc", "--out", "o",
                                "--encoding", "jpeg"], "invalid choice: 'jpeg'"),
    ("ingest --out is the input", ["ingest", "--input", "prints", "--layout", "fvc",
                                   "--out", "prints"], "is the input"),
    ("ingest --out is the input, --force", ["ingest", "--input", "prints", "--layout", "fvc",
                                            "--out", "prints", "--force"], "is the input"),
    ("ingest --out inside the input", ["ingest", "--input", "prints", "--layout", "fvc",
                                       "--out", "prints/shards"], "is inside the input"),
    ("ingest --out contains the input", ["ingest", "--input", "prints", "--layout", "fvc",
                                         "--out", "."], "contains the input"),
    ("ingest --out is a file", ["ingest", "--input", "prints", "--layout", "fvc",
                                "--out", "a_file.txt"], "is a file; give a folder path"),
    ("ingest --out under a file", ["ingest", "--input", "prints", "--layout", "fvc",
                                   "--out", "a_file.txt/o"], "is a file, so nothing can"),
    ("ingest --out holds a user's manifest.json", ["ingest", "--input", "prints", "--layout",
                                                   "fvc", "--out", "user_folder"], "not empty"),
    ("ingest --out is a synth output", ["ingest", "--input", "prints", "--layout", "fvc",
                                        "--out", "synth_out"],
     "holds an ifvit synth output, not shards"),
    # ---- convert (the app env has no torch: everything here fails before reading) -----------
    ("convert no --ckpt", ["convert", "--out", "w.safetensors"],
     "the following arguments are required: --ckpt"),
    ("convert --out .pt", ["convert", "--ckpt", "model.ckpt", "--out", "w.pt"],
     "output must end in .safetensors or .npz"),
    ("convert --out is the ckpt", ["convert", "--ckpt", "model.npz", "--out", "model.npz",
                                   "--force"], "is the input"),
    ("convert --out exists", ["convert", "--ckpt", "model.ckpt", "--out", "old.safetensors"],
     "old.safetensors: already exists"),
    ("convert --out sidecar exists", ["convert", "--ckpt", "model.ckpt", "--out", "orphan"],
     "orphan.safetensors.json: already exists"),
    ("convert --out is a folder", ["convert", "--ckpt", "model.ckpt", "--out", "dir.npz"],
     "is a folder"),
    ("convert --out under a file", ["convert", "--ckpt", "model.ckpt", "--out",
                                    "a_file.txt/w.safetensors"], "is a file, so nothing can"),
    ("convert --ckpt missing", ["convert", "--ckpt", "nope.ckpt", "--out", "w.safetensors"],
     "nope.ckpt: no such file"),
    ("convert --verify-size 7 7", ["convert", "--ckpt", "model.ckpt", "--out", "w.safetensors",
                                   "--verify-size", "7", "7"], "use multiples of 8"),
    ("convert --verify-size 4096 64", ["convert", "--ckpt", "model.ckpt", "--out",
                                       "w.safetensors", "--verify-size", "4096", "64"],
     "between 32 and 2048"),
    ("convert --kind bogus", ["convert", "--ckpt", "model.ckpt", "--out", "w.safetensors",
                              "--kind", "bogus"], "invalid choice: 'bogus'"),
    ("convert --preset huge", ["convert", "--ckpt", "model.ckpt", "--out", "w.safetensors",
                               "--preset", "huge"], "unknown preset 'huge'"),
    ("convert --verify without kornia", ["convert", "--ckpt", "model.ckpt", "--out",
                                         "w.safetensors", "--verify"],
     "--verify needs kornia"),
    # ---- demo: validation before any work ---------------------------------------------------
    ("demo --fingers 1", ["demo", "--out", "d", "--fingers", "1"], "at least 2"),
    ("demo --impressions 1", ["demo", "--out", "d", "--impressions", "1"], "at least 2"),
    ("demo --holdout 0", ["demo", "--out", "d", "--holdout", "0"], "--holdout must be in (0, 1)"),
    ("demo --holdout 1.5", ["demo", "--out", "d", "--holdout", "1.5"], "--holdout must be in"),
    ("demo --steps 0", ["demo", "--out", "d", "--steps", "0"], "must be positive"),
    ("demo --out a user's folder", ["demo", "--out", "user_folder"], "or pass --force"),
    ("demo --seed -1", ["demo", "--out", "d", "--seed", "-1"], "--seed -1: must be an integer"),
    ("demo --batch -1", ["demo", "--out", "d", "--batch", "-1"], "must be positive"),
    ("demo --preset huge", ["demo", "--out", "d", "--preset", "huge"], "invalid choice: 'huge'"),
    ("demo --fingers abc", ["demo", "--out", "d", "--fingers", "abc"], "invalid int value"),
    ("demo --out is a file", ["demo", "--out", "a_file.txt"], "exists and is a file"),
    ("demo --fingers 3", ["demo", "--out", "d", "--fingers", "3"], "--fingers must be at least 4"),
    ("demo --impression-pairs 2", ["demo", "--out", "d", "--impression-pairs", "2"],
     "invalid training settings: impression_pairs=2.0"),
    ("demo --max-translation -5", ["demo", "--out", "d", "--max-translation", "-5"],
     "invalid training settings: max_translation=-5.0"),
    ("train dense missing --data", ["train", "dense", "--data", "d", "--workdir", "w"],
     "not a shard folder"),
    ("train match without --from-dense", ["train", "match", "--data", "d", "--workdir", "w"],
     "not a shard folder"),
    ("inspect a file", ["inspect", "a_file.txt"], "not a model bundle"),
    # ---- damaged bundles: one line naming bundle.json and what to do -----------------------
    ("inspect bundle.json not UTF-8", ["inspect", "b_latin1"], "bundle.json: unreadable"),
    ("match bundle.json not UTF-8", ["match", "--model", "b_latin1", "prints/1_1.png",
                                     "prints/1_2.png"], "re-export it"),
    ("inspect bundle.json a list", ["inspect", "b_list"], "holds a JSON list"),
    ("match bundle.json a list", ["match", "--model", "b_list", "prints/1_1.png",
                                  "prints/1_2.png"], "bundle.json: holds a JSON list"),
    ("inspect bundle.json without config", ["inspect", "b_noconfig"], "lacks 'config'"),
    ("match bundle.json without preprocessing", ["match", "--model", "b_nopre",
                                                 "prints/1_1.png", "prints/1_2.png"],
     "lacks 'preprocessing'; the bundle is damaged"),
    # ---- enroll / identify: validation before the model is loaded -------------------------
    ("enroll no --out", ["enroll", "--model", "d", "--data", "prints"],
     "the following arguments are required: --out"),
    ("enroll --layout bogus", ["enroll", "--model", "d", "--data", "prints", "--out", "g",
                               "--layout", "bogus"], "invalid choice: 'bogus'"),
    ("enroll --data missing", ["enroll", "--model", "d", "--data", "nope", "--out", "g"],
     "not a directory"),
    ("enroll --data no prints", ["enroll", "--model", "d", "--data", "empty", "--out", "g"],
     "no print named like the fvc layout"),
    ("enroll --batch 0", ["enroll", "--model", "d", "--data", "prints", "--out", "g",
                          "--batch", "0"], "--batch 0: must be at least 1"),
    ("enroll --dpi 1", ["enroll", "--model", "d", "--data", "prints", "--out", "g", "--dpi", "1"],
     "outside 150-5000"),
    ("enroll --model not a bundle", ["enroll", "--model", "user_folder", "--data", "prints",
                                     "--out", "g"], "not a model bundle"),
    ("identify no probe", ["identify", "--model", "d", "--gallery", "empty"],
     "the following arguments are required: PROBE"),
    ("identify missing probe", ["identify", "--model", "d", "--gallery", "empty", "nope.png"],
     "nope.png: no such file"),
    ("identify --top-k 0", ["identify", "--model", "d", "--gallery", "empty", "prints/1_1.png",
                            "--top-k", "0"], "--top-k 0: must be at least 1"),
    ("identify --rerank -1", ["identify", "--model", "d", "--gallery", "empty", "prints/1_1.png",
                              "--rerank", "-1"], "--rerank -1: must be 0 or more"),
    ("identify --dpi nan", ["identify", "--model", "d", "--gallery", "empty", "prints/1_1.png",
                            "--dpi", "nan"], "--dpi nan dpi is outside"),
    ("identify --gallery not a gallery", ["identify", "--model", "d", "--gallery", "user_folder",
                                          "prints/1_1.png"], "not a gallery (no gallery.json)"),
    ("identify --gallery damaged", ["identify", "--model", "d", "--gallery", "bad_gallery",
                                    "prints/1_1.png"], "not an ifvit-gallery file"),
    ("match missing image", ["match", "--model", "d", "nope0.png", "nope1.png"], "no such file"),
    ("match --viz not png", ["match", "--model", "d", "a_file.txt", "a_file.txt", "--viz", "x.jpg"],
     "give a .png path"),
    ("evaluate missing data", ["evaluate", "--model", "empty", "--data", "nope", "--out", "o"],
     "not a folder"),
    ("evaluate not a bundle", ["evaluate", "--model", "empty", "--data", "prints2", "--out", "o"],
     "not a model bundle"),
    ("evaluate one finger only", ["evaluate", "--model", "empty", "--data", "prints", "--out", "o"],
     "needs two fingers"),
    ("evaluate into a user's folder (shipped model)",
     ["evaluate", "--data", "prints2", "--out", "user_folder"], "not an ifvit evaluation output"),
    ("match --pairs without --out", ["match", "--model", "empty", "--pairs", "a_file.txt"],
     "--out"),
    ("match --pairs bad line", ["match", "--model", "empty", "--pairs", "a_file.txt",
                                "--out", "s.csv"],
     "expected two image paths"),
    ("match a folder as an image", ["match", "empty", "prints/1_1.png"],
     "empty: is a folder, not an image file"),
    ("match a pipe as an image", ["match", "prints/1_1.png", "a_fifo"],
     "a_fifo: is not a regular file"),
    ("match a symlink loop", ["match", "loop1", "prints/1_1.png"], "loop1: a symbolic-link loop"),
    ("match --pairs --batch huge", ["match", "--pairs", "a_file.txt", "--out", "s.csv",
                                    "--batch", "100000"], "--batch 100000: give 1 to 256"),
    # ---- refused before the (shipped) model loads: issue 22 -----------------------------------
    ("match two blank images (shipped)", ["match", "blank.png", "blank.png"],
     "blank.png: not acquired as a fingerprint"),
    ("match --pairs --out a user's file (shipped)", ["match", "--pairs", "pairs.txt", "--out",
                                                     "scores.csv"], "already exists"),
    ("enroll --out a user's folder (shipped)", ["enroll", "--data", "prints2", "--out",
                                                "user_folder"], "not an ifvit gallery output"),
    ("match --pairs and images", ["match", "--pairs", "a_file.txt", "prints/1_1.png"],
     "do not also"),
    ("export onto a user folder", ["export", "empty", "--out", "user_folder"],
     "not an empty folder"),
    ("export not a bundle", ["export", "prints", "--out", "new"], "not a model bundle"),
    ("calibrate no --eval", ["calibrate", "--out", "new"], "arguments are required: --eval"),
    ("calibrate --evidence-k -1", ["calibrate", "--eval", "prints", "--out", "new",
                                   "--evidence-k", "-1"],
     "--evidence-k -1.0: must be a number >= 0"),
    ("calibrate onto a user folder", ["calibrate", "--eval", "prints", "--out", "user_folder"],
     "not an empty folder"),
    ("calibrate --eval not an evaluation", ["calibrate", "--eval", "prints", "--out", "new"],
     "no report.json and scores.csv"),
    ("calibrate --model not a bundle", ["calibrate", "--model", "prints", "--eval", "prints",
                                        "--out", "new"], "not a model bundle"),
]


# Rows refused by what only the model's own files can tell (none today: bundle.json problems are
# read before the weights).
LOADS_MODEL: set[str] = set()


def _scratch(root: Path) -> None:
    """The files the table refers to."""
    (root / "a_file.txt").write_text("a user's file")
    (root / "user_folder").mkdir()
    (root / "user_folder" / "manifest.json").write_text('{"mine": true}')
    (root / "user_folder" / "1_1.png").write_bytes(b"a user's print")
    (root / "dir.png").mkdir()
    (root / "dir.npz").mkdir()
    (root / "sheet.png").write_bytes(b"an existing picture")
    (root / "empty").mkdir()
    prints = root / "prints"
    prints.mkdir()
    rng = np.random.default_rng(0)
    for name in ("1_1.png", "1_2.png"):
        Image.fromarray(rng.integers(0, 255, (80, 80), dtype=np.uint8)).save(prints / name)
    Image.fromarray(np.full((300, 300), 255, np.uint8)).save(root / "blank.png")
    (root / "pairs.txt").write_text("prints/1_1.png prints/1_2.png\n")
    (root / "scores.csv").write_text("a user's scores")
    (root / "prints2").mkdir()
    for name in ("1_1.png", "1_2.png", "2_1.png"):
        Image.fromarray(rng.integers(0, 255, (80, 80),
                                     dtype=np.uint8)).save(root / "prints2" / name)
    (root / "model.ckpt").write_bytes(b"stands in for a checkpoint")
    (root / "model.npz").write_bytes(b"a checkpoint with an output suffix")
    (root / "old.safetensors").write_bytes(b"earlier weights")
    (root / "orphan.safetensors.json").write_text("{}")
    head = '{"format": "ifvit-bundle", "format_version": 1, "kind": "match"'
    for name, text in (("b_latin1", None), ("b_list", "[1, 2]"),
                       ("b_noconfig", head + ', "train": {}, "preprocessing": {}}'),
                       ("b_nopre", head + ', "config": {}, "train": {}}')):
        (root / name).mkdir()
        (root / name / "bundle.json").write_bytes(
            b'{"format": "ifvit-bundle", "note": "caf\xe9"}' if text is None else text.encode())
    os.mkfifo(root / "a_fifo")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "bad_gallery").mkdir()
    (root / "bad_gallery" / "gallery.json").write_text('{"format": "something else"}')
    for name, kind in (("synth_out", "synth"), ("shards_out", "shards")):
        (root / name).mkdir()
        (root / name / ".ifvit-output.json").write_text(
            f'{{"kind": "{kind}", "format_version": 1, "created_by": "test"}}'
        )
        (root / name / "manifest.json").write_text("{}")


def _tree(root: Path) -> dict[str, tuple[str, bytes | str | None, int]]:
    def entry(p: Path) -> tuple[str, bytes | str | None, int]:
        st = p.lstat()  # links, pipes: recorded as such, never followed or read
        if p.is_symlink():
            return "link", os.readlink(p), st.st_mtime_ns
        if p.is_dir():
            return "dir", None, st.st_mtime_ns
        return ("file", p.read_bytes(), st.st_mtime_ns) if p.is_file() else ("other", None,
                                                                             st.st_mtime_ns)

    return {p.relative_to(root).as_posix(): entry(p) for p in sorted(root.rglob("*"))}


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "work"
    root.mkdir()
    _scratch(root)
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize(("case", "argv", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_arguments(
    case: str, argv: list[str], expected: str, scratch: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ifvit_train.serving.bundle as bundle_module

    loads: list[str] = []
    real = bundle_module.build_models

    def counting(*a, **k):  # every model load goes through here (`load_bundle`)
        loads.append(case)
        return real(*a, **k)

    monkeypatch.setattr(bundle_module, "build_models", counting)
    before = _tree(scratch)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    out, err = capsys.readouterr()
    lines = err.splitlines()  # also splits on the carriage returns of a progress bar
    assert code == 2, (case, err)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ifvit {argv[0]}: error: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err + out
    assert _tree(scratch) == before  # no new, changed or removed file
    # every refusal of the table comes before a model is loaded (issue 22: a refusal is quick),
    # except where the model's own files are what is wrong
    assert not loads or case in LOADS_MODEL, f"{case}: refused only after loading the model"


@pytest.mark.parametrize(
    "case", ["synth --out a user's folder", "ingest --out is the input", "ingest --dpi inf",
             "convert --out exists", "demo --holdout 0", "enroll --data missing",
             "identify missing probe"],
)
def test_real_entry_point(case: str, scratch: Path) -> None:
    argv, expected = next((a, e) for c, a, e in CASES if c == case)
    exe = Path(sys.executable).with_name("ifvit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ifvit_cli.main"]
    before = _tree(scratch)
    proc = subprocess.run([*cmd, *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _tree(scratch) == before


@pytest.mark.parametrize(
    "case", ["match two blank images (shipped)", "match --pairs --out a user's file (shipped)",
             "evaluate into a user's folder (shipped model)",
             "enroll --out a user's folder (shipped)", "identify --gallery damaged",
             "identify --gallery not a gallery"],
)
def test_quick_refusals_do_not_import_jax(case: str, scratch: Path) -> None:
    """These refusals come before jax is imported (a fraction of a second, not a model load)."""
    argv, expected = next((a, e) for c, a, e in CASES if c == case)
    code = ("import sys; from ifvit_cli.main import main; rc = main(sys.argv[1:]); "
            "print('jax' in sys.modules, 'flax' in sys.modules); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert proc.stdout.split() == ["False", "False"], proc.stdout


# Runs argv[1:] held to file permissions: as root (Linux), CAP_DAC_OVERRIDE and
# CAP_DAC_READ_SEARCH are dropped from the bounding set before exec (prctl PR_CAPBSET_DROP), so
# root cannot write into a chmod 0o500 folder either. Exits 99 if that is not possible.
UNPRIVILEGED = """
import ctypes, os, sys
if os.geteuid() == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:
            sys.exit(99)
os.execv(sys.argv[1], sys.argv[1:])
"""


@pytest.mark.parametrize(
    "argv",
    [
        [*SYNTH, "--out", "ro/s"],
        ["ingest", "--input", "prints", "--layout", "fvc", "--out", "ro/o"],
        ["convert", "--ckpt", "model.ckpt", "--out", "ro/w.safetensors"],
    ],
    ids=["synth", "ingest", "convert"],
)
def test_unwritable_output(argv: list[str], scratch: Path) -> None:
    """An output in a folder the user cannot write: one line, exit 2, before any work."""
    ro = scratch / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    run = [sys.executable, "-c", UNPRIVILEGED, sys.executable]
    probe = "import sys, pathlib; pathlib.Path(sys.argv[1], 'p').write_text('x')"
    try:
        blocked = subprocess.run([*run, "-c", probe, str(ro)], capture_output=True).returncode
        if blocked != 1:  # 0: the write worked; 99: permissions cannot be enforced here
            pytest.skip("chmod does not block writes here: an unwritable folder cannot be made")
        before = _tree(scratch)
        proc = subprocess.run([*run, "-m", "ifvit_cli.main", *argv], capture_output=True,
                              text=True, timeout=300)
    finally:
        ro.chmod(0o700)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "cannot write in" in proc.stderr, proc.stderr
    assert _tree(scratch) == before


def test_zeroed_weights_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bundle whose weight files were zeroed (truncated copy): one line naming the bundle and
    what to do, no traceback (also none at interpreter exit from Orbax's event loop)."""
    import shutil

    from ifvit_train.serving.shipped import shipped_bundle

    bad = tmp_path / "zeroed"
    shutil.copytree(shipped_bundle(), bad)
    for f in (bad / "module2" / "ocdbt.process_0" / "d").iterdir():
        f.write_bytes(b"")
    from ifvit_data.synth import SynthConfig, generate_dataset

    prints = tmp_path / "prints"  # fingerprints: noise would be refused before the weights load
    generate_dataset(prints, 1, 2, 0, SynthConfig(size=(300, 300)), workers=1)
    assert main(["match", "--model", str(bad), str(prints / "1_1.png"),
                 str(prints / "1_2.png")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "its weights cannot be read" in err[0], err
    assert "the bundle is damaged: re-copy or re-export it" in err[0] and "See full" not in err[0]
