"""Galleries and 1:N search: exact sharded top-k, gallery files, identification with a tiny
bundle."""

import json

import jax
import numpy as np
import pytest
from PIL import Image

from ifvit_train.serving.mesh import make_mesh
from ifvit_train.serving.search import padded_rows, shard_gallery, sharded_top_k, top_k


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("n", [64, 1003])  # 1003: not a multiple of the 8 devices
@pytest.mark.parametrize("shape", [(8, 1), (4, 2)])
def test_sharded_top_k_equals_unsharded(n, shape):
    assert jax.device_count() == 8
    rng = np.random.default_rng(n)
    g, q, k = _unit(rng, n, 16), _unit(rng, 5, 16), 7
    mesh = make_mesh(*shape)
    rows = shard_gallery(g, mesh)
    assert rows.shape == (padded_rows(n, mesh), 16) and rows.shape[0] % 8 == 0
    assert len(rows.addressable_shards) == 8
    s, i = sharded_top_k(mesh, rows, q, k, n)
    s1, i1 = top_k(g, q, k)
    np.testing.assert_array_equal(np.asarray(i), np.asarray(i1))
    np.testing.assert_allclose(np.asarray(s), np.asarray(s1), atol=1e-6)
    # reference computed with numpy: the k largest dot products, best first
    ref = np.argsort(-(q @ g.T), axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(np.asarray(i1), ref)


def test_padding_never_wins():
    """Padded rows are zeros (cosine 0): with every real score negative they must still lose."""
    rng = np.random.default_rng(1)
    q = _unit(rng, 3, 8)
    g = -np.repeat(q[:1], 9, 0) + 0.01 * rng.standard_normal((9, 8)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)  # 9 rows: 7 padded rows on 8 devices
    mesh = make_mesh()
    s, i = sharded_top_k(mesh, shard_gallery(g, mesh), q[:1], 1, 9)
    assert int(i[0, 0]) < 9 and float(s[0, 0]) < 0
    s, i = sharded_top_k(mesh, shard_gallery(g, mesh), q, 9, 9)  # k above the 2 rows per device
    np.testing.assert_array_equal(np.asarray(i), np.asarray(top_k(g, q, 9)[1]))
    with pytest.raises(ValueError, match="between 1 and the gallery size"):
        sharded_top_k(mesh, shard_gallery(g, mesh), q, 10, 9)


# ---- with a trained tiny bundle ---------------------------------------------------------------


@pytest.fixture(scope="module")
def prints(tmp_path_factory, make_print):
    """4 fingers x 2 impressions of ridge-like prints (FVC names) plus a broken file."""
    d = tmp_path_factory.mktemp("prints")
    rng = np.random.default_rng(5)
    for f in range(1, 5):
        base = make_print(rng, 120)
        for k in (1, 2):
            Image.fromarray(np.roll(base, (3 * k, -2 * k), (0, 1))).save(d / f"{f}_{k}.png")
    (d / "9_1.png").write_bytes(b"not an image")
    return d


def _enrolees(folder):
    from ifvit_data.readers import scan
    from ifvit_train.serving.gallery import Enrolee

    entries, _ = scan(folder, "fvc")
    return [Enrolee(e.path, e.subject, e.impression) for e in entries]


def test_gallery_round_trip_and_identify(tiny_bundle, prints, tmp_path):
    from ifvit_data.outputs import OutputError
    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.serving.gallery import Embedder, GalleryError, enroll, load_gallery, model_hash
    from ifvit_train.serving.identify import Identifier

    bundle = load_bundle(tiny_bundle / "match", require="match")
    out = tmp_path / "g"
    gallery, skipped = enroll(bundle, _enrolees(prints), out, inputs=[prints], batch_size=3)
    assert [p for p, _ in skipped] == [str(prints / "9_1.png")]
    assert len(gallery) == 8
    meta = json.loads((out / "gallery.json").read_text())
    assert meta["format"] == "ifvit-gallery" and meta["model"]["sha256"] == model_hash(bundle)
    assert [e["subject"] for e in meta["entries"]] == ["1", "1", "2", "2", "3", "3", "4", "4"]
    t = np.load(out / meta["templates"]["file"], allow_pickle=False)
    assert t.dtype == np.float32 and t.shape == (8, 2 * bundle.cfg.module2.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    # the stored templates are those of each file embedded alone (batch 3 with padding = batch 1)
    emb = Embedder(bundle, batch_size=1)
    alone = emb.embed([emb.prepare(prints / "3_2.png")])[0]
    np.testing.assert_allclose(t[5], alone, atol=1e-5)
    loaded = load_gallery(out, expect_model=model_hash(bundle))
    np.testing.assert_array_equal(np.asarray(loaded.templates), t)
    assert loaded.entries == gallery.entries
    # another model's hash is refused; so is writing over the gallery without force
    with pytest.raises(GalleryError, match="enrolled with another model"):
        load_gallery(out, expect_model="0" * 64)
    with pytest.raises(OutputError, match="earlier gallery output"):
        enroll(bundle, _enrolees(prints), out, inputs=[prints])
    # identification: a probe that is an enrolled file finds itself first (template cosine 1)
    ident = Identifier(bundle, out)
    probe = emb.prepare(prints / "2_1.png")
    res = ident.identify([probe], k=4, rerank=0)[0]["candidates"]
    assert res[0]["path"] == str(prints / "2_1.png") and res[0]["template_score"] > 0.9999
    assert [c["rank"] for c in res] == [1, 2, 3, 4]
    scores = [c["template_score"] for c in res]
    assert scores == sorted(scores, reverse=True)
    # re-ranking scores the first 3 with the pairwise model and orders them by it
    rr = ident.identify([probe], k=4, rerank=3)[0]["candidates"]
    assert {c["id"] for c in rr[:3]} == {c["id"] for c in res[:3]} and rr[3]["id"] == res[3]["id"]
    pair = [c["score"] for c in rr[:3]]
    assert pair == sorted(pair, reverse=True) and rr[3]["score"] is None
    cand = next(c for c in rr if c["id"] == res[1]["id"])
    b = ident.verifier.prepare(res[1]["path"])
    assert abs(cand["score"] - ident.verifier.verify(probe, b)["score"]) < 1e-5
    # sharded over the 8 devices: the same candidates
    sharded = Identifier(bundle, out, mesh=make_mesh())
    assert sharded.identify([probe], k=4, rerank=0)[0]["candidates"] == res


def test_prints_of_different_sizes_are_scored_whole_and_batched_by_shape(tiny_bundle, tmp_path,
                                                                         make_print):
    """Windows grow with the print (bundle.json max_input_size): a tall print gets a taller
    window, and batched scoring / embedding of mixed sizes equals each pair / print alone."""
    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.serving.gallery import Embedder
    from ifvit_train.serving.infer import Verifier

    bundle = load_bundle(tiny_bundle / "match", require="match")
    pre = bundle.meta["preprocessing"]
    assert pre["input_size"] == [64, 64] and pre["max_input_size"][0] >= 256
    rng = np.random.default_rng(11)
    paths = []
    for name, (h, w) in (("sq_a", (120, 120)), ("tall", (200, 120)), ("sq_b", (120, 120))):
        Image.fromarray(make_print(rng, max(h, w))[:h, :w]).save(tmp_path / f"{name}.png")
        paths.append(tmp_path / f"{name}.png")
    ver = Verifier(bundle)
    a, tall, b = (ver.prepare(p) for p in paths)
    assert a.window.shape == b.window.shape == (128, 128) and tall.window.shape == (256, 128)
    assert tall.mask[:40].any() and tall.mask[-40:].any()  # both ends of the tall print are in
    pairs = [(a, tall), (a, b), (tall, tall), (tall, a), (b, a)]
    got = ver.score_pairs(pairs, batch_size=2)
    for i, (p, q) in enumerate(pairs):
        alone = ver.verify(p, q)
        assert abs(got["score"][i] - alone["score"]) < 1e-5, (i, got["score"][i], alone["score"])
        assert got["inliers"][i] == alone["alignment"]["inliers"]
    emb = Embedder(bundle, batch_size=2)
    mixed = emb.embed([a, tall, b])
    for row, p in zip(mixed, (a, tall, b), strict=True):
        np.testing.assert_allclose(row, emb.embed([p])[0], atol=1e-5)


def test_enrolment_refuses_non_prints_and_records_quality(tiny_bundle, prints, tmp_path):
    import shutil

    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.serving.gallery import enroll, load_gallery

    data = tmp_path / "data"
    shutil.copytree(prints, data)
    Image.fromarray(np.full((120, 120), 255, np.uint8)).save(data / "7_1.png")  # empty capture
    Image.fromarray(np.full((120, 120), 255, np.uint8)).save(data / "7_2.png")
    bundle = load_bundle(tiny_bundle / "match", require="match")
    gallery, skipped = enroll(bundle, _enrolees(data), tmp_path / "g", inputs=[data])
    why = dict(skipped)
    assert sorted(why) == sorted(str(data / n) for n in ("7_1.png", "7_2.png", "9_1.png"))
    assert "not acquired as a fingerprint" in why[str(data / "7_1.png")]
    assert len(gallery) == 8 and all(e["quality"] > 0.1 and "acquired" not in e
                                     for e in gallery.entries)
    # told to, the empty captures are enrolled and marked
    g2, skipped2 = enroll(bundle, _enrolees(data), tmp_path / "g2", inputs=[data],
                          allow_low_quality=True)
    assert [p for p, _ in skipped2] == [str(data / "9_1.png")]
    low = [e for e in load_gallery(tmp_path / "g2").entries if e.get("acquired") is False]
    assert [(e["subject"], e["quality"]) for e in low] == [("7", 0.0), ("7", 0.0)]


def test_a_damaged_gallery_is_refused_on_load(tiny_bundle, prints, tmp_path):
    import hashlib
    import io

    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.serving.gallery import GalleryError, enroll, load_gallery

    bundle = load_bundle(tiny_bundle / "match", require="match")
    out = tmp_path / "g"
    enroll(bundle, _enrolees(prints), out, inputs=[prints])
    meta = json.loads((out / "gallery.json").read_text())
    tfile = out / meta["templates"]["file"]
    t = np.load(tfile)
    # the templates file changed after enrolment (same shape): its hash no longer matches
    np.save(tfile, t[::-1].copy(), allow_pickle=False)
    with pytest.raises(GalleryError, match="not the enrolled one") as e:
        load_gallery(out)
    assert str(tfile) in str(e.value) and "re-run `ifvit enroll`" in str(e.value)
    # all-NaN templates, written consistently (name and gallery.json hash match): refused
    buf = io.BytesIO()
    np.save(buf, np.full_like(t, np.nan), allow_pickle=False)
    digest = hashlib.sha256(buf.getvalue()).hexdigest()
    tfile.unlink()
    nan_file = out / f"templates-{digest[:16]}.npy"
    nan_file.write_bytes(buf.getvalue())
    meta["templates"].update(file=nan_file.name, sha256=digest)
    (out / "gallery.json").write_text(json.dumps(meta))
    with pytest.raises(GalleryError, match="8 of 8 templates hold NaN or inf") as e:
        load_gallery(out)
    assert str(nan_file) in str(e.value) and len(str(e.value).splitlines()) == 1
    # an entry without the keys a search result reads (hand-edited gallery.json): one line
    np.save(nan_file, t, allow_pickle=False)  # valid templates again, hash made consistent
    digest = hashlib.sha256(nan_file.read_bytes()).hexdigest()
    good = out / f"templates-{digest[:16]}.npy"
    nan_file.rename(good)
    meta["templates"].update(file=good.name, sha256=digest)
    load_gallery_ok = {**meta}
    (out / "gallery.json").write_text(json.dumps(load_gallery_ok))
    assert len(load_gallery(out).entries) == 8  # the repaired gallery loads
    del meta["entries"][3]["path"]
    (out / "gallery.json").write_text(json.dumps(meta))
    with pytest.raises(GalleryError, match="entry 3 lacks path; the gallery is damaged"):
        load_gallery(out)


def test_identification_scores_templates_as_a_one_to_one_matcher(tiny_bundle, tmp_path,
                                                                 make_print):
    """`identification`'s template_verification: every pair of prints, genuine = same finger,
    scored by the template dot product (pairs and labels rebuilt here by loops)."""
    from ifvit_train.evaluation.evaluate import load_prints
    from ifvit_train.evaluation.identification import identification
    from ifvit_train.evaluation.metrics import verification_report
    from ifvit_train.serving.bundle import load_bundle
    from ifvit_train.serving.gallery import Embedder
    from ifvit_train.serving.infer import Verifier

    bundle = load_bundle(tiny_bundle / "match", require="match")
    rng = np.random.default_rng(5)
    for f in (1, 2, 3):
        base = make_print(rng, 120)
        for i in (1, 2):
            Image.fromarray(np.roll(base, 3 * i, axis=1)).save(tmp_path / f"{f}_{i}.png")
    prints = load_prints(Verifier(bundle), tmp_path, "fvc")
    report, _ = identification(bundle, prints, rerank=0)
    tv = report["template_verification"]
    t = Embedder(bundle).embed(prints.prepared)
    gen, imp = [], []
    for i in range(6):
        for j in range(i + 1, 6):
            same = prints.entries[i].finger == prints.entries[j].finger
            (gen if same else imp).append(float(t[i] @ t[j]))
    assert (tv["n_genuine"], tv["n_impostor"]) == (3, 12) == (len(gen), len(imp))
    ref = verification_report(np.array(gen), np.array(imp))
    assert abs(tv["eer"] - ref.eer) < 1e-9 and abs(tv["fmr100"] - ref.fmr100) < 1e-9
