"""The training loop: NaN stops keep the last good checkpoint; metrics history follows resumes."""

import json

import grain
import jax.numpy as jnp
import numpy as np
import pytest

from ifvit_train.checkpoint import Checkpointer
from ifvit_train.config import TrainConfig
from ifvit_train.loop import TrainingDiverged, run_loop


def _batches(state):
    it = iter(grain.MapDataset.source(list(range(1000))).map(lambda i: {"x": np.float32(i)})
              .to_iter_dataset())
    if state is not None:
        it.set_state(state)
    return it


def _step(bad_at):
    def step(state, batch):
        new = {"w": state["w"] + batch["x"], "n": state["n"] + 1}
        loss = jnp.where(new["n"] == bad_at, jnp.nan, new["w"])
        return new, {"loss": loss}
    return step


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    tc = TrainConfig(steps=10, checkpoint_every=2)
    state = {"w": jnp.zeros(()), "n": jnp.zeros((), jnp.int32)}
    with pytest.raises(TrainingDiverged, match="loss is nan at step 5.*step 4"):
        run_loop(tmp_path, state, _step(5), _batches, lambda b: b, 10, tc, progress=False,
                 log=lambda s: None)
    ck = Checkpointer(tmp_path / "checkpoints", async_save=False)
    step, restored, data = ck.restore(state)
    ck.close()
    assert step == 4 and float(restored["w"]) == 0 + 1 + 2 + 3 and data is not None
    # Resume with a healthy step: continues from step 4 with the data stream where it stopped.
    res = run_loop(tmp_path, state, _step(-1), _batches, lambda b: b, 10, tc, progress=False,
                   log=lambda s: None)
    assert res.resumed_from == 4 and res.step == 10
    assert float(res.state["w"]) == sum(range(10))
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 11))  # the NaN row of step 5 was dropped
    assert (tmp_path / "train_curves.png").stat().st_size > 1000
