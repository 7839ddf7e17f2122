"""`ifvit train` / `ifvit inspect`: bad inputs are one line, exit 2, nothing written."""

import pytest

from ifvit_cli.main import main


@pytest.mark.parametrize("argv, msg", [
    (["train", "dense", "--data", "{tmp}/nope", "--workdir", "{tmp}/w"], "not a shard folder"),
    (["train", "match", "--data", "{shards}", "--workdir", "{tmp}/w"], "needs --from-dense"),
    (["train", "dense", "--data", "{shards}", "--workdir", "{tmp}/w", "--steps", "0"], "steps=0"),
    (["train", "dense", "--data", "{shards}", "--workdir", "{shards}"], "input"),
    (["train", "dense", "--data", "{shards}", "--workdir", "{tmp}/user"], "--force"),
    (["train", "all", "--data", "{shards}", "--workdir", "{shards}/sub"], "input"),
    (["train", "dense", "--data", "{shards}", "--workdir", "{tmp}/w", "--init-loftr", "{tmp}/x"],
     "no such file"),
    (["train", "match", "--data", "{shards}", "--workdir", "{tmp}/w", "--from-dense", "{tmp}",
      "--train-fine"], "--train-fine is for"),
    (["train", "dense", "--data", "{shards}", "--workdir", "{tmp}/w", "--init-from", "{tmp}/user"],
     "not a model bundle"),
    (["train", "all", "--data", "{shards}", "--workdir", "{tmp}/w", "--init-from", "{tmp}"],
     "--init-from is for"),
    (["train", "dense", "--data", "{shards}", "--workdir", "{tmp}/w", "--image-size", "100"],
     "multiple of 8"),
    (["train", "match", "--data", "{shards}", "--workdir", "{tmp}/w", "--from-dense", "{tmp}",
      "--image-size", "256"], "takes its model and window size"),
    (["train", "match", "--data", "{shards}", "--workdir", "{tmp}/w", "--from-dense", "{tmp}",
      "--lambda-dense", "-1"], "must be >= 0"),
    (["train", "match", "--data", "{shards}", "--workdir", "{tmp}/w", "--from-dense", "{tmp}",
      "--enhance"], "--enhance is for"),
    (["train", "dense", "--data", "{shards}", "--workdir", "{tmp}/w", "--max-translation", "-1"],
     "max_translation=-1.0"),
    (["train", "all", "--data", "{shards}", "--workdir", "{tmp}/w", "--holdout", "1"],
     "validation needs >= 2 held-out fingers"),
    (["inspect", "{tmp}"], "not a model bundle"),
    (["train", "dense", "--data", "{shards}", "--workdir", "{tmp}/w", "--pseudo-labels", "0.3"],
     "Module 2 settings"),
    (["train", "all", "--data", "{shards}", "--workdir", "{tmp}/w", "--pseudo-labels", "1.5"],
     "pseudo_label_conf=1.5"),
    (["train", "match", "--data", "{shards}", "--workdir", "{tmp}/w", "--from-dense", "{tmp}",
      "--lambda-template", "-1"], "must be >= 0"),
    # several --data folders (train match) and --mix
    (["train", "match", "--data", "{shards}", "--data", "{shards}/", "--workdir", "{tmp}/w",
      "--from-dense", "{tmp}"], "given twice as a data folder"),
    (["train", "match", "--data", "{shards}", "--data", "{two}", "--workdir", "{tmp}/w",
      "--from-dense", "{tmp}", "--mix", "1"], "1 mix weights for 2 data folders"),
    (["train", "match", "--data", "{shards}", "--data", "{two}", "--workdir", "{tmp}/w",
      "--from-dense", "{tmp}", "--mix", "1,-1"], "each must be >= 0"),
    (["train", "match", "--data", "{shards}", "--data", "{two}", "--workdir", "{tmp}/w",
      "--from-dense", "{tmp}", "--mix", "0,0"], "at least one > 0"),
    (["train", "match", "--data", "{shards}", "--data", "{two}", "--workdir", "{tmp}/w",
      "--from-dense", "{tmp}", "--mix", "half,half"], "numbers separated by commas"),
    (["train", "match", "--data", "{shards}", "--data", "{two}", "--workdir", "{tmp}/w",
      "--from-dense", "{tmp}"], "two: 1 training finger(s); every data folder needs >= 2"),
    (["train", "match", "--data", "{shards}", "--data", "{tmp}/nope", "--workdir", "{tmp}/w",
      "--from-dense", "{tmp}"], "nope: not a shard folder"),
    (["train", "dense", "--data", "{shards}", "--workdir", "{tmp}/w", "--mix", "1"],
     "--mix is only for `train match`"),
    (["train", "all", "--data", "{shards}", "--data", "{two}", "--workdir", "{tmp}/w"],
     "several --data folders are for `train match`"),
])
def test_bad_arguments(tmp_path, capsys, argv, msg):
    import numpy as np

    from ifvit_data.shards import write_shards

    rng = np.random.default_rng(0)
    shards = tmp_path / "shards"
    write_shards([{"image": rng.integers(0, 255, (96, 96), dtype=np.uint8), "subject": str(f),
                   "finger": f, "impression": k, "dpi": 500.0, "source": f"{f}_{k}.png"}
                  for f in range(4) for k in (1, 2)], shards)
    write_shards([{"image": rng.integers(0, 255, (96, 96), dtype=np.uint8), "subject": str(f),
                   "finger": f, "impression": k, "dpi": 500.0, "source": f"{f}_{k}.png"}
                  for f in range(2) for k in (1, 2)], tmp_path / "two")  # 1 training finger
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("a user's file")
    argv = [a.format(tmp=tmp_path, shards=shards, two=tmp_path / "two") for a in argv]
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0], err
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_train_fine_flag_reaches_the_training_settings():
    import argparse

    from ifvit_cli.commands import train

    p = argparse.ArgumentParser()
    train.add_arguments(p)
    base = ["dense", "--data", "d", "--workdir", "w"]
    assert train._settings_from_args(p.parse_args(base + ["--train-fine"])).train_fine
    assert not train._settings_from_args(p.parse_args(base)).train_fine


def test_help_teaches_several_data_folders(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--data synth_shards --data real_shards --mix 0.5,0.5" in out
    assert "--mix W1,W2,..." in out
