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
    from ifvit_train.training.config import TrainConfig
    from ifvit_train.training.run import train_dense, train_match

    root = tmp_path_factory.mktemp("world")
    synth = root / "synth"
    generate_dataset(synth, 5, 2, 7, SynthConfig(size=(160, 160)), workers=1)
    ingest(synth, "fvc", root / "shards")
    tc = TrainConfig(steps=2, batch_size=8, warmup_steps=1, validate_every=0, val_pairs=8,
                     val_prints=10, holdout=0.4, checkpoint_every=2,
                     input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    def quiet(s: str) -> None:
        pass

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
    assert out[0] == f"{probe}:" and len(out) == 4 and out[1].strip().startswith("1. 3 "
                                                                                 "(impression 2)")

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
    assert main(["evaluate", "--model", model, "--data", str(synth), "--out", str(ev),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["calibrate", "--model", model, "--eval", str(ev), "--out", str(cal),
                 "--evidence-k", "5"]) == 0
    assert "evidence k 5 (given)" in capsys.readouterr().out
    meta = json.loads((cal / "bundle.json").read_text())
    assert meta["config"]["module2"]["evidence_k"] == 5.0
    first_set = meta["calibration"]["sets"][0]
    assert first_set["genuine"] == 5 and first_set["impostor"] == 10
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
    assert main(["calibrate", "--model", str(cal), "--eval", str(ev), "--out",
                 str(tmp_path / "c2")]) == 2
    assert "scores made with" in capsys.readouterr().err and not (tmp_path / "c2").exists()


def _blank(path, value=255, size=400):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((size, size), value, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("shipped", [False, True], ids=["train-all bundle (k 0)", "shipped model"])
def test_match_never_scores_what_is_not_a_fingerprint(world, tmp_path, capsys, shipped):
    """Two empty captures scored 0.993 and were accepted by a `train all` bundle; now they are a
    failure to acquire: one line, exit 2, and with --json "acquired": false and no score."""
    import numpy as np
    from PIL import Image

    model = [] if shipped else ["--model", str(world / "match")]
    a, b = _blank(tmp_path / "a.png"), _blank(tmp_path / "b.png", 128)
    _one_line_error(capsys, ["match", *model, str(a), str(b)],
                    f"{a}: not acquired as a fingerprint")
    assert main(["match", *model, str(a), str(b), "--json"]) == 2
    cap = capsys.readouterr()
    r = json.loads(cap.out)
    assert r["acquired"] is False and r["score"] is None and r["decision"] is None
    assert r["prints"]["image0"]["acquired"] is False and r["prints"]["image0"]["quality"] == 0.0
    assert r["prints"]["image1"]["acquired"] is False and "no score" in cap.err
    noise = tmp_path / "noise.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 300), dtype=np.uint8)).save(noise)
    real = world / "synth" / "2_1.png"
    assert main(["match", *model, str(real), str(noise), "--json"]) == 2
    r = json.loads(capsys.readouterr().out)
    assert r["prints"]["image0"]["acquired"] is True and r["prints"]["image1"]["acquired"] is False
    # a pair of prints: scored, with each print's quality in the result
    assert main(["match", *model, str(real), str(world / "synth" / "2_2.png"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["prints"]["image0"]["acquired"] and r["prints"]["image0"]["quality"] > 0.1
    assert isinstance(r["score"], float)
    # --pairs: the blank's pairs fail (empty score, rejected), the others are scored
    pairs, out = tmp_path / "pairs.txt", tmp_path / "s.csv"
    pairs.write_text(f"{real} {a}\n{real} {world / 'synth' / '2_2.png'}\n")
    assert main(["match", *model, "--pairs", str(pairs), "--out", str(out)]) == 0
    assert "1 images unreadable or not acquired" in capsys.readouterr().out
    head, blank_row, ok_row = out.read_text().splitlines()
    cols = head.split(",")
    row = dict(zip(cols, blank_row.split(","), strict=True))
    assert row["score"] == "" and row["quality1"] == "0.0000" and float(row["quality0"]) > 0.1
    assert all(v == "false" for k, v in row.items() if k.startswith("accept_"))
    assert dict(zip(cols, ok_row.split(","), strict=True))["score"] != ""


def test_enroll_evaluate_and_identify_with_non_prints(world, tmp_path, capsys):
    import shutil

    model = str(world / "match")
    data = tmp_path / "data"
    shutil.copytree(world / "synth", data)
    _blank(data / "6_1.png", size=160)
    _blank(data / "6_2.png", size=160)
    gallery = tmp_path / "g"
    assert main(["enroll", "--model", model, "--data", str(data), "--out", str(gallery),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "10 templates of 5 identities" in out and "skipped" in out and "not acquired" in out
    meta = json.loads((gallery / "gallery.json").read_text())
    assert all(e["quality"] > 0.1 for e in meta["entries"])
    assert main(["enroll", "--model", model, "--data", str(data), "--out", str(tmp_path / "g2"),
                 "--quiet", "--allow-low-quality"]) == 0
    assert "12 templates of 6 identities" in capsys.readouterr().out
    low = json.loads((tmp_path / "g2" / "gallery.json").read_text())["entries"]
    assert [e["quality"] for e in low if e.get("acquired") is False] == [0.0, 0.0]
    # a blank probe is refused; a probe's quality is in the JSON
    _one_line_error(capsys, ["identify", "--model", model, "--gallery", str(gallery),
                             str(data / "6_1.png")], "not acquired as a fingerprint")
    assert main(["identify", "--model", model, "--gallery", str(gallery), str(data / "2_1.png"),
                 "--rerank", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["quality"] > 0.1
    # evaluate: the blank prints are failures to acquire, counted; quality in scores.csv
    ev = tmp_path / "ev"
    assert main(["evaluate", "--model", model, "--data", str(data), "--out", str(ev),
                 "--quiet"]) == 0
    assert "2 prints failed (2 not acquired as fingerprints)" in capsys.readouterr().out
    rep = json.loads((ev / "report.json").read_text())
    assert rep["prints_failed_to_acquire"] == 2 and rep["quality"]["min"] == 0.0
    head, *rows = (ev / "scores.csv").read_text().splitlines()
    assert head.endswith(",quality0,quality1")
    blank_rows = [r for r in rows if r.startswith("6_")]
    assert blank_rows and all(r.split(",")[3] == "" for r in blank_rows)


def test_identify_refuses_a_gallery_of_nan_templates(world, tmp_path, capsys):
    import hashlib
    import io

    import numpy as np

    model, synth = str(world / "match"), world / "synth"
    gallery = tmp_path / "g"
    assert main(["enroll", "--model", model, "--data", str(synth), "--out", str(gallery),
                 "--quiet"]) == 0
    capsys.readouterr()
    meta = json.loads((gallery / "gallery.json").read_text())
    old = gallery / meta["templates"]["file"]
    t = np.load(old)
    buf = io.BytesIO()
    np.save(buf, np.full_like(t, np.nan), allow_pickle=False)
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    # first the NaNs in place: the file is not the enrolled one
    old.write_bytes(buf.getvalue())
    _one_line_error(capsys, ["identify", "--model", model, "--gallery", str(gallery),
                             str(synth / "1_1.png")], "not the enrolled one")
    # then consistently renamed and re-hashed: the NaNs themselves are refused
    new = gallery / f"templates-{digest[:16]}.npy"
    old.rename(new)
    meta["templates"].update(file=new.name, sha256=digest)
    (gallery / "gallery.json").write_text(json.dumps(meta))
    _one_line_error(capsys, ["identify", "--model", model, "--gallery", str(gallery),
                             str(synth / "1_1.png")], "hold NaN or inf values")


def test_whiten_writes_a_bundle_whose_embeddings_are_white(world, tmp_path, capsys):
    """`ifvit whiten`: the new bundle's pre-neck vectors of the same pairs have zero mean and unit
    covariance (numpy's, not the fit's), it records the folder by name and hash, drops the old
    thresholds, and every command loads it."""
    import numpy as np

    from ifvit_train.evaluation import evaluate as ev
    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.serving.infer import Verifier
    from ifvit_train.training.whiten import neck_features, sample_pairs, stacked

    model, synth, out = str(world / "match"), world / "synth", tmp_path / "white"
    assert main(["whiten", "--model", model, "--data", str(synth), "--out", str(out),
                 "--eps", "1e-6", "--no-templates", "--quiet"]) == 0
    assert "run `ifvit calibrate" in capsys.readouterr().out
    meta = json.loads((out / "bundle.json").read_text())
    (s,) = meta["whitened"]["sets"]
    assert s["data"] == "synth" and len(s["files_sha256"]) == 64 and s["prints"] == 10
    assert "thresholds" not in meta and meta["whitened"]["replaced"]["thresholds"]
    v = Verifier(load_bundle(out))
    prints = ev.load_prints(v, synth, "fvc")
    pairs = sample_pairs(prints, 400, 0)
    f = neck_features(v, prints, pairs)
    back = neck_features(v, prints, pairs[::-1])  # row k belongs to pair k, in any batch
    for k in ("global0", "global1", "local0", "local1"):
        np.testing.assert_allclose(back[k][::-1], f[k], rtol=1e-4, atol=1e-4)
    for h in (stacked(f, "global"), stacked(f, "local")):
        lam = np.linalg.eigvalsh(np.cov(h, rowvar=False))
        assert np.abs(h.mean(axis=0)).max() < 1e-3
        assert 0.99 < lam.max() < 1.001  # whitened up to the eigenvalue floor
    assert main(["match", "--model", str(out), str(synth / "2_1.png"), str(synth / "2_2.png"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cosine"] is not None
    # never over its own source or an existing folder
    assert main(["whiten", "--model", model, "--data", str(synth), "--out", str(out)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def prints30(tmp_path_factory):
    """6 synthetic fingers x 5 impressions: 30 - 6 > 16 (the tiny embedding) for the necks."""
    from ifvit_data.synth import SynthConfig, generate_dataset

    data = tmp_path_factory.mktemp("prints30") / "prints"
    generate_dataset(data, 6, 5, 11, SynthConfig(size=(160, 160)), workers=1)
    return data


def test_whiten_pairs_neck_within_finger(world, prints30, tmp_path, capsys):
    """`--pairs-neck within-finger`: the new bundle's pre-neck vectors of the same pairs, grouped
    by the finger of their print here, have unit within-finger covariance; the record says so."""
    import numpy as np

    from ifvit_train.evaluation import evaluate as ev
    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.serving.infer import Verifier
    from ifvit_train.training.whiten import neck_features, sample_pairs, stacked

    out = tmp_path / "wf"
    assert main(["whiten", "--model", str(world / "match"), "--data", str(prints30), "--layout",
                 "fvc", "--pairs-neck", "within-finger", "--no-templates", "--eps", "1e-9",
                 "--quiet", "--out", str(out)]) == 0
    meta = json.loads((out / "bundle.json").read_text())
    assert meta["whitened"]["pairs_method"] == "within-finger"
    assert "within-finger covariance" in meta["whitened"]["method"]
    v = Verifier(load_bundle(out))
    prints = ev.load_prints(v, prints30, "fvc")
    pairs = sample_pairs(prints, 400, 0)  # the pairs `ifvit whiten` drew (seed 0 + set 0)
    f = neck_features(v, prints, pairs)
    kept = pairs[f["kept"]]
    finger = np.array([e.finger for e in prints.entries])
    labels = np.concatenate([finger[kept[:, 0]], finger[kept[:, 1]]])
    for b in ("global", "local"):
        h = stacked(f, b)
        dev = np.concatenate([h[labels == g] - h[labels == g].mean(axis=0) for g in set(labels)])
        cov = dev.T @ dev / (len(h) - len(set(labels)))
        lam = np.linalg.eigvalsh(cov)  # float32 weights: the smallest direction is amplified most
        assert 0.9 < lam.min() and lam.max() < 1.01, lam
    _one_line_error(capsys, ["whiten", "--model", str(world / "match"), "--data", str(prints30),
                             "--data", str(world / "synth"), "--layout", "fvc", "--layout", "fvc",
                             "--layout", "fvc", "--out", str(tmp_path / "x")],
                    "give one for all --data or one per --data (2)")


def test_whiten_templates_only(world, prints30, tmp_path, capsys):
    """`ifvit whiten --templates-only`: pairwise scores and thresholds stay; the new bundle's
    templates are L2norm(T(h)) of the global branch only, and T whitens the spread of each
    finger's impressions (checked finger by finger here, from the vectors the model computes)."""
    import numpy as np

    from ifvit_train.evaluation import evaluate as ev
    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.serving.gallery import Embedder
    from ifvit_train.serving.infer import Verifier
    from ifvit_train.training.whiten import batchnorm_neck, single_features

    model, out, data = str(world / "match"), tmp_path / "templates", prints30
    _one_line_error(capsys, ["whiten", "--templates-only", "--model", model, "--data",
                             str(world / "synth"), "--out", str(tmp_path / "few"), "--quiet"],
                    "more impressions per finger")
    assert not (tmp_path / "few").exists()
    assert main(["whiten", "--templates-only", "--model", model, "--data", str(data), "--out",
                 str(out), "--template-eps", "1e-9", "--template-alpha", "1", "--quiet"]) == 0
    assert "template neck fitted on 30 prints of 6 fingers" in capsys.readouterr().out
    src, meta = json.loads((world / "match" / "bundle.json").read_text()), json.loads(
        (out / "bundle.json").read_text())
    assert meta["config"]["module2"]["template_neck"] is True
    assert meta["config"]["module2"]["template_alpha"] == 1.0
    assert meta["thresholds"] == src["thresholds"]  # pairwise scores unchanged: kept
    assert meta["whitened"]["templates"]["sets"][0]["data"] == "prints"
    a, b = str(data / "1_1.png"), str(data / "1_2.png")
    scores = []
    for m in (model, str(out)):
        assert main(["match", "--model", m, a, b, "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out)["score"])
    assert scores[0] == pytest.approx(scores[1], abs=1e-6)
    new, old = load_bundle(out), load_bundle(world / "match")
    prints = ev.load_prints(Verifier(old), data, "fvc")
    f = single_features(Verifier(old), prints)
    br = new.matcher.global_branch
    t = (batchnorm_neck(old.matcher.global_branch, f["global"])
         @ np.asarray(br.template_neck.kernel[...], np.float64)
         + np.asarray(br.template_neck.bias[...], np.float64))
    fingers = np.array([prints.entries[k].finger for k in f["kept"]])
    dev = np.concatenate([t[fingers == g] - t[fingers == g].mean(axis=0) for g in set(fingers)])
    np.testing.assert_allclose(dev.T @ dev / (len(t) - 6), np.eye(16), atol=2e-2)  # float32
    templates = Embedder(new).embed([prints.prepared[k] for k in f["kept"]])
    want = t / np.linalg.norm(t, axis=1, keepdims=True)
    np.testing.assert_allclose(templates[:, :16], want, atol=2e-3)
    np.testing.assert_array_equal(templates[:, 16:], 0.0)  # template alpha 1: global only
