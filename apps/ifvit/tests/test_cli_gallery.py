"""`ifvit enroll` + `ifvit identify` end to end on synthetic prints with a tiny trained bundle."""

import json

import pytest

from ifvit_cli.main import main


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """5 synthetic fingers x 2 impressions (FVC names), their shards and a tiny Module 2 bundle."""
    from ifvit_core import config
    from ifvit_data.ingest import ingest
    from ifvit_data.synth import SynthConfig, generate_dataset
    from ifvit_train.config import TrainConfig
    from ifvit_train.run import train_dense, train_match

    root = tmp_path_factory.mktemp("world")
    synth = root / "synth"
    generate_dataset(synth, 5, 2, 7, SynthConfig(size=(160, 160)), workers=1)
    ingest(synth, "fvc", root / "shards")
    tc = TrainConfig(steps=2, batch_size=8, warmup_steps=1, validate_every=0, val_pairs=8,
                     val_prints=10, holdout=0.4, checkpoint_every=2)
    quiet = lambda s: None
    train_dense(root / "shards", root / "dense", config.tiny(), tc, log=quiet, progress=False)
    train_match(root / "shards", root / "match", root / "dense", tc, log=quiet, progress=False)
    return root


def _one_line_error(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and "Traceback" not in err[0], err


def test_enroll_then_identify(world, tmp_path, capsys):
    model, synth = str(world / "match"), world / "synth"
    gallery = tmp_path / "gallery"
    assert main(["enroll", "--model", model, "--data", str(synth), "--out", str(gallery),
                 "--quiet"]) == 0
    assert "10 templates of 5 identities" in capsys.readouterr().out
    meta = json.loads((gallery / "gallery.json").read_text())
    assert len(meta["entries"]) == 10 and meta["template"]["mode"] == "self"
    assert sorted(p.name for p in gallery.iterdir()) == [
        ".ifvit-output.json", "gallery.json", meta["templates"]["file"]]
    probe = synth / "3_2.png"
    assert main(["identify", "--model", model, "--gallery", str(gallery), str(probe),
                 str(synth / "1_1.png"), "--top-k", "4", "--rerank", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["probe"] for r in res] == [str(probe), str(synth / "1_1.png")]
    for r in res:
        c = r["candidates"]
        assert [x["rank"] for x in c] == [1, 2, 3, 4] and len({x["id"] for x in c}) == 4
        assert all(x["score"] is not None for x in c[:2]) and c[2]["score"] is None
        assert c[0]["score"] >= c[1]["score"]
        # an enrolled file searched as a probe is among the re-ranked pair with template cosine 1
        own = [x for x in c if x["path"] == r["probe"]]
        assert own and own[0]["rank"] <= 2 and own[0]["template_score"] > 0.9999
    # text output
    assert main(["identify", "--model", model, "--gallery", str(gallery), str(probe),
                 "--top-k", "3", "--rerank", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{probe}:" and len(out) == 4 and out[1].strip().startswith("1. 3 (impression 2)")

    # refusals: one line, exit 2, nothing written
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    _one_line_error(capsys, ["enroll", "--model", model, "--data", str(synth), "--out",
                             str(gallery)], "earlier gallery output")
    _one_line_error(capsys, ["enroll", "--model", model, "--data", str(synth), "--out", str(user)],
                    "not empty")
    _one_line_error(capsys, ["enroll", "--model", model, "--data", str(synth), "--out",
                             str(synth / "g")], "inside the input")
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
    # a gallery made by another model (its hash differs) is refused
    meta["model"]["sha256"] = "f" * 64
    (gallery / "gallery.json").write_text(json.dumps(meta))
    _one_line_error(capsys, ["identify", "--model", model, "--gallery", str(gallery), str(probe)],
                    "enrolled with another model")
    _one_line_error(capsys, ["identify", "--model", str(world / "dense"), "--gallery", str(gallery),
                             str(probe)], "Module 2")


def test_evaluate_calibrate_then_match_uses_the_evidence_weighted_score(world, tmp_path, capsys):
    model, synth = str(world / "match"), world / "synth"
    ev, cal = tmp_path / "ev", tmp_path / "cal"
    assert main(["evaluate", "--model", model, "--data", str(synth), "--out", str(ev), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["calibrate", "--model", model, "--eval", str(ev), "--out", str(cal),
                 "--evidence-k", "5"]) == 0
    assert "evidence k 5 (given)" in capsys.readouterr().out
    meta = json.loads((cal / "bundle.json").read_text())
    assert meta["config"]["module2"]["evidence_k"] == 5.0
    assert meta["calibration"]["sets"][0]["genuine"] == 5 and meta["calibration"]["sets"][0]["impostor"] == 10
    assert main(["match", "--model", str(cal), str(synth / "2_1.png"), str(synth / "2_2.png"),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    n = r["alignment"]["inliers"]
    assert r["evidence_k"] == 5.0
    assert abs(r["score"] - (1 + r["cosine"]) / 2 * n / (n + 5)) < 1e-5
    assert r["decision"] == {k: r["score"] >= t for k, t in meta["thresholds"].items()
                             if isinstance(t, float)}
    assert main(["inspect", str(cal)]) == 0
    assert "calibrated  evidence k 5 (given)" in capsys.readouterr().out
    # an evaluation of another model is refused, nothing written
    assert main(["calibrate", "--model", str(cal), "--eval", str(ev), "--out", str(tmp_path / "c2")]) == 2
    assert "scores made with" in capsys.readouterr().err and not (tmp_path / "c2").exists()
