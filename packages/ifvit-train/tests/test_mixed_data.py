"""Module 2 on several shard folders at once (synthetic shards with exact correspondences + plain
shards): pairs follow the mix and stay in their folder, classes and held-out fingers stay apart,
the bundle records every folder, a resume is exact, and --from-dense takes a Module 2 bundle."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from ifvit_data.shards import MANIFEST
from ifvit_train.training.config import TrainConfig

# conftest's tiny_bundle was trained with these settings
TC = TrainConfig(steps=2, batch_size=8, warmup_steps=1, validate_every=0, val_pairs=8,
                 val_prints=8, holdout=0.4, checkpoint_every=2,
                 input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                 margin_warmup_steps=0)


def quiet(s: str) -> None:
    pass


@pytest.fixture(scope="module")
def synth_shards(tmp_path_factory):
    """5 synthetic fingers x 2 impressions (`ifvit synth` folder kept beside its shards, so the
    shards get the generator's exact correspondences)."""
    from ifvit_data.ingest import ingest
    from ifvit_data.synth import SynthConfig, generate_dataset

    root = tmp_path_factory.mktemp("synth_mix")
    cfg = SynthConfig(size=(192, 176), master_size=(288, 240), contact_shift_px=20.0,
                      max_translation_px=15.0)
    generate_dataset(root / "synth", 5, 2, 5, cfg, workers=1)
    ingest(root / "synth", "fvc", root / "synth_shards")
    return root / "synth_shards"


def _split(folder, tc):
    """(sorted training fingers, held-out fingers) of a folder, computed here from the records."""
    from ifvit_data.shards import RecordSource
    from ifvit_data.split import split_by_finger

    train, held = split_by_finger(RecordSource(folder), tc.holdout, seed=tc.seed)
    return np.unique(train.fingers), set(np.unique(held.fingers).tolist())


def _pairs(data, n_batches, tc=TC, size=64):
    from ifvit_data.pipeline import make_iterator
    from ifvit_train.training.data import match_dataset

    it = make_iterator(match_dataset(data, tc, size))
    bs = [next(it) for _ in range(n_batches)]
    return {k: np.concatenate([b[k] for b in bs]) for k in bs[0]}


def test_pairs_follow_the_mix_and_never_cross_folders(synth_shards, tiny_shards):
    from ifvit_train.training.data import MixedData, open_match_data

    tc = TC.replace(synthetic_fraction=0.0)  # genuine pairs: two impressions, no corrupted copies
    data = open_match_data([synth_shards, tiny_shards], tc, [0.25, 0.75])
    assert isinstance(data, MixedData) and data.weights == (0.25, 0.75)
    (t0, h0), (t1, h1) = _split(synth_shards, TC), _split(tiny_shards, TC)
    assert data.num_classes == len(t0) + len(t1)
    p = _pairs(data, 40, tc)  # 320 pairs
    l0, l1, gen = p["label0"], p["label1"], p["is_genuine"].astype(bool)
    folder0, folder1 = l0 < len(t0), l1 < len(t0)
    assert np.all((l0 >= 0) & (l0 < data.num_classes) & (l1 >= 0) & (l1 < data.num_classes))
    assert np.array_equal(folder0, folder1)  # impostor partners come from the anchor's folder
    assert np.array_equal(l0[gen], l1[gen]) and np.all(l0[~gen] != l1[~gen])
    # share of folder 0: binomial(320, 0.25), sd 0.024; 4 sd = 0.097 (0.5 or 0.75 would fail)
    share = folder0.mean()
    assert abs(share - 0.25) < 0.097, share
    # every class of both folders is drawn, and maps to a training (never a held-out) finger
    assert set(l0.tolist()) == set(range(data.num_classes))
    fingers0, fingers1 = t0[l0[folder0]], t1[l0[~folder0] - len(t0)]
    assert not set(fingers0.tolist()) & h0 and not set(fingers1.tolist()) & h1
    # exact correspondences only for the synth folder's genuine impression pairs
    n_gt = p["gt_valid"].sum(axis=1)
    assert np.all(n_gt[gen & ~folder0] == 0) and np.all(n_gt[~gen] == 0)
    assert (n_gt[gen & folder0] > 0).mean() > 0.5


def test_the_mixed_stream_is_seeded_and_resumes_exactly(synth_shards, tiny_shards):
    from ifvit_data.pipeline import make_iterator
    from ifvit_train.training.data import match_dataset, open_match_data

    data = open_match_data([synth_shards, tiny_shards], TC)
    # default mix: proportional to the training records
    n0, n1 = (len(p.train) for p in data.parts)
    assert data.weights == pytest.approx((n0 / (n0 + n1), n1 / (n0 + n1)))
    it = make_iterator(match_dataset(data, TC, 64))
    for _ in range(3):
        next(it)
    state = it.get_state()
    want = [next(it) for _ in range(2)]
    again = make_iterator(match_dataset(data, TC, 64))
    again.set_state(state)
    for w in want:
        got = next(again)
        assert all(np.array_equal(got[k], w[k]) for k in w)
    s1 = TC.replace(seed=1)
    other = _pairs(open_match_data([synth_shards, tiny_shards], s1), 5, s1)
    assert not np.array_equal(other["label0"], _pairs(data, 5)["label0"])


def test_heldout_fingers_of_every_folder_validate_together(synth_shards, tiny_shards):
    from ifvit_train.training.data import open_match_data
    from ifvit_train.training.validate import check_verification_split

    data = open_match_data([synth_shards, tiny_shards], TC)
    view = data.heldout
    assert len(view) == sum(len(p.heldout) for p in data.parts)
    pairs, gen = check_verification_split(view, TC.val_prints)
    assert set(view.part[pairs[gen == 0].ravel()].tolist()) == {0, 1}  # both folders validate
    for k in range(len(view)):  # each record is its folder's, with a finger id of its own
        part = data.parts[int(view.part[k])].heldout
        j = k - sum(len(p.heldout) for p in data.parts[: int(view.part[k])])
        assert np.array_equal(view[k]["image"], part[j]["image"])
    ids = [set(view.fingers[view.part == p].tolist()) for p in (0, 1)]
    assert not ids[0] & ids[1]
    assert [len(s) for s in ids] == [len(_split(f, TC)[1]) for f in (synth_shards, tiny_shards)]


@pytest.mark.parametrize("dirs, mix, msg", [
    (["{a}", "{a}"], None, "given twice"),
    (["{a}", "{b}"], [1.0], "1 mix weights for 2 data folders"),
    (["{a}", "{b}"], [1.0, -1.0], "each must be >= 0"),
    (["{a}", "{b}"], [0.0, 0.0], "at least one > 0"),
])
def test_bad_folder_lists_are_refused(synth_shards, tiny_shards, dirs, mix, msg):
    from ifvit_train.training.run import check_match_data

    dirs = [d.format(a=synth_shards, b=tiny_shards) for d in dirs]
    with pytest.raises(ValueError, match=msg.replace("(", r"\(")):
        check_match_data(dirs, TC, mix)


@pytest.fixture(scope="module")
def exported_match(tiny_bundle, tmp_path_factory):
    """tiny_bundle's Module 2 bundle exported (weights only: module1/, module2/, no
    checkpoints/), like the shipped model."""
    from ifvit_train.serving.bundle import export_bundle

    out = tmp_path_factory.mktemp("exported") / "m2"
    export_bundle(tiny_bundle / "match", out)
    return out


@pytest.fixture(scope="module")
def mixed_run(synth_shards, tiny_shards, exported_match, tmp_path_factory):
    """A 4-step Module 2 run on both folders, from the exported Module 2 bundle's Module 1."""
    from ifvit_train.training.run import train_match

    work = tmp_path_factory.mktemp("mixed") / "m"
    tc = TC.replace(steps=4)
    meta = train_match([synth_shards, tiny_shards], work, exported_match, tc, mix=[0.5, 0.5],
                       log=quiet, progress=False)
    return work, meta, tc


def _flat(bundle_dir):
    from ifvit_core import params
    from ifvit_train.serving.bundle import load_bundle

    b = load_bundle(bundle_dir)
    return params.flat_state(b.module1), params.flat_state(b.matcher)


@pytest.mark.slow  # a training run on two folders
def test_bundle_records_both_folders(mixed_run, synth_shards, tiny_shards):
    work, meta, _ = mixed_run
    on_disk = json.loads((work / "bundle.json").read_text())
    data = on_disk["data"]
    assert data == meta["data"] and meta["status"] == "complete"
    assert [f["name"] for f in data["folders"]] == ["synth_shards", "shards"]
    for f, d in zip(data["folders"], (synth_shards, Path(tiny_shards)), strict=True):
        assert f["manifest_sha256"] == hashlib.sha256((d / MANIFEST).read_bytes()).hexdigest()
        assert f["mix_weight"] == 0.5 and f["heldout_fingers"] == sorted(_split(d, TC)[1])
    assert [f["exact_impression_correspondences"] for f in data["folders"]] == [True, False]
    assert str(synth_shards.parent) not in json.dumps(data)  # folder names only
    classes = sum(len(_split(d, TC)[0]) for d in (synth_shards, tiny_shards))
    assert data["train_fingers"] == classes == on_disk["config"]["module2"]["num_classes"]


@pytest.mark.slow  # the training run on two folders
def test_from_dense_takes_a_module2_bundles_module1(mixed_run, exported_match):
    from ifvit_train.serving.bundle import state_hash

    work, meta, _ = mixed_run
    fd = meta["from_dense"]
    assert fd["kind"] == "match" and fd["state_sha256"] == state_hash(exported_match / "module1")
    m1, _ = _flat(work)
    want, _ = _flat(exported_match)
    assert m1.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(m1[k], want[k], err_msg=k)


@pytest.mark.slow  # two more training runs
def test_a_resumed_two_folder_run_is_exact(mixed_run, synth_shards, tiny_shards, exported_match,
                                           tmp_path, monkeypatch):
    from ifvit_train.serving.bundle import BundleError
    from ifvit_train.training import run

    ref_dir, _, tc = mixed_run
    make = run.make_match_step

    def failing(*a, **k):  # the run dies in its 3rd step, after the step-2 checkpoint
        step, calls = make(*a, **k), []

        def wrapped(*args):
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("killed")
            return step(*args)
        return wrapped

    kw = dict(mix=[0.5, 0.5], log=quiet, progress=False)
    monkeypatch.setattr(run, "make_match_step", failing)
    with pytest.raises(RuntimeError, match="killed"):
        run.train_match([synth_shards, tiny_shards], tmp_path / "m", exported_match, tc, **kw)
    monkeypatch.setattr(run, "make_match_step", make)
    lines = []
    run.train_match([synth_shards, tiny_shards], tmp_path / "m", exported_match, tc, **{
        **kw, "log": lines.append})
    assert any("resuming from step 2" in s for s in lines), lines
    for got, want in zip(_flat(tmp_path / "m"), _flat(ref_dir), strict=True):
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    # another mix, or the folders in another order, is another run
    for dirs, mix in (([synth_shards, tiny_shards], [0.3, 0.7]),
                      ([tiny_shards, synth_shards], [0.5, 0.5])):
        with pytest.raises(BundleError, match="holds another training run"):
            run.train_match(dirs, tmp_path / "m", exported_match, tc, mix=mix, log=quiet,
                            progress=False)
