"""One trainer per workdir: a second `train` on a workdir another trainer holds is refused
before any work, in one line (ifvit_data.outputs.FolderLock; a killed holder frees it at once,
tested in ifvit-data)."""

import pytest

from ifvit_core import config
from ifvit_data.outputs import FolderLock, OutputError, claim_output_dir
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.run import train_dense


def test_a_second_trainer_on_the_same_workdir_is_refused(tiny_shards, tmp_path):
    workdir = tmp_path / "run"
    claim_output_dir(workdir, "bundle-dense")  # what the first trainer did...
    held = FolderLock(workdir)  # ...and it is still running
    tc = TrainConfig(steps=1, batch_size=8, warmup_steps=1, validate_every=0, holdout=0.4,
                     input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    with pytest.raises(OutputError, match="another process is writing this training workdir"):
        train_dense(tiny_shards, workdir, config.tiny(), tc, log=lambda s: None, progress=False)
    assert not (workdir / "checkpoints").exists() and not (workdir / "bundle.json").exists()
    held.release()
