"""`ifvit train all --enhance` end to end: the bundles record the enhancement, Module 2 inherits
it, `ifvit inspect` shows it and `ifvit match` runs on the bundle."""

import json

import pytest

from ifvit_cli.main import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """5 synthetic fingers x 2 impressions, their shards and a tiny enhanced bundle (CLI)."""
    from ifvit_data.ingest import ingest
    from ifvit_data.synth import SynthConfig, generate_dataset

    root = tmp_path_factory.mktemp("enhance")
    synth = root / "synth"
    generate_dataset(synth, 5, 2, 3, SynthConfig(size=(160, 160)), workers=1)
    ingest(synth, "fvc", root / "shards")
    assert main(["train", "all", "--data", str(root / "shards"), "--workdir", str(root / "run"),
                 "--preset", "tiny", "--steps", "2", "--batch", "8", "--holdout", "0.4",
                 "--validate-every", "0", "--checkpoint-every", "2", "--downscale", "1.5",
                 "--enhance", "--no-progress"]) == 0
    return root


def test_bundles_record_the_enhancement_and_match_inherits_it(trained, capsys):
    dense = json.loads((trained / "run" / "dense" / "bundle.json").read_text())
    match = json.loads((trained / "run" / "match" / "bundle.json").read_text())
    enh = dense["preprocessing"]["enhancement"]
    assert enh["method"] == "gabor" and enh["ridge_period"] == pytest.approx(9.5 / 1.5)
    assert match["preprocessing"] == dense["preprocessing"]
    assert dense["train"]["enhance"] and match["train"]["enhance"]
    # the bundles name the recipe (`default`) and stage; flags override only what they give
    assert dense["training_recipe"] == {"name": "default", "stage": "dense"}
    assert match["training_recipe"] == {"name": "default", "stage": "match"}
    assert dense["train"]["warmup_steps"] == 0  # the recipe's warm-up follows --steps: 2 // 10
    assert dense["train"]["max_translation"] == 24.0
    assert match["train"]["margin_warmup_steps"] == 100
    capsys.readouterr()
    assert main(["inspect", str(trained / "run" / "match")]) == 0
    out = capsys.readouterr().out
    assert "trained by  recipe 'default', stage 'match'" in out
    assert "enhancement orientation field + Gabor filtering (period 6.33 px" in out


def test_match_runs_on_the_enhanced_bundle(trained, capsys):
    synth = trained / "synth"
    capsys.readouterr()
    assert main(["match", "--model", str(trained / "run" / "match"), str(synth / "1_1.png"),
                 str(synth / "1_2.png"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert isinstance(res["score"], float) and -1.0 <= res["score"] <= 1.0
