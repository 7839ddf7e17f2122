"""The training loop: NaN stops keep the last good checkpoint; metrics history follows resumes;
TensorBoard events equal metrics.jsonl across a resume."""

import json
import math
import struct

import grain
import jax.numpy as jnp
import numpy as np
import pytest
from tensorboardX.proto.event_pb2 import Event

from ifvit_train.training.checkpoint import Checkpointer
from ifvit_train.training.config import TrainConfig
from ifvit_train.training.loop import TrainingDiverged, run_loop
from ifvit_train.training.optim import learning_rate_schedule


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
    tc = TrainConfig(steps=10, checkpoint_every=2,
                     warmup_steps=50, input_downscale=1.0, max_translation=0.0,
                     impression_pairs=0.0, margin_warmup_steps=0)
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


def read_records(path):
    """Events of one file, parsed from the TFRecord framing (u64 length, u32 crc, data, u32 crc)."""
    data, pos, out = path.read_bytes(), 0, []
    while pos < len(data):
        (n,) = struct.unpack("<Q", data[pos:pos + 8])
        out.append(Event.FromString(data[pos + 12:pos + 12 + n]))
        pos += 12 + n + 4
    assert pos == len(data), f"{path}: truncated record"
    return out


def scalars(logdir):
    """(raw [(tag, step, value)] in file order, {(tag, step): value} as TensorBoard shows them:
    a SessionLog.START at step s drops every earlier event at step >= s)."""
    raw, shown = [], {}
    for f in sorted(logdir.glob("events.out.tfevents.*")):  # TensorBoard's (time-ordered) order
        for e in read_records(f):
            if e.HasField("session_log") and e.session_log.status == e.session_log.START:
                shown = {k: v for k, v in shown.items() if k[1] < e.step}
            for v in e.summary.value:
                raw.append((v.tag, e.step, v.simple_value))
                assert (v.tag, e.step) not in shown, f"{v.tag} logged twice at step {e.step}"
                shown[(v.tag, e.step)] = v.simple_value
    return raw, shown


def test_event_scalars_equal_metrics_jsonl_after_a_resume(tmp_path):
    tc = TrainConfig(steps=10, checkpoint_every=4, validate_every=5, learning_rate=1e-2,
                     warmup_steps=3,
                     input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    state = {"w": jnp.zeros(()), "n": jnp.zeros((), jnp.int32)}
    def validate(s: dict) -> dict[str, float]:
        return {"w_half": float(s["w"]) / 2}

    kw = dict(validate=validate, initial_validation={"w_half": 0.0}, progress=False,
              log=lambda s: None)
    with pytest.raises(TrainingDiverged):  # NaN at step 7: steps 5, 6 were logged, checkpoint at 4
        run_loop(tmp_path, state, _step(7), _batches, lambda b: b, 10, tc, **kw)
    run_loop(tmp_path, state, _step(-1), _batches, lambda b: b, 10, tc, **kw)

    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 11))
    raw, shown = scalars(tmp_path / "tensorboard")
    # the killed run's steps 5 and 6 are in its file; the resumed run's purge marker hides them
    assert sum(1 for t, s, _ in raw if t == "train/loss" and s == 5) == 2
    expected = {("val/w_half", 0): 0.0}
    for r in rows:
        for k, v in r.items():
            if k not in ("step", "time") and math.isfinite(v):
                expected[("val/" + k[4:] if k.startswith("val_") else "train/" + k, r["step"])] = v
    assert shown.keys() == expected.keys()
    for key, v in expected.items():
        assert shown[key] == pytest.approx(v, rel=1e-6, abs=1e-6), key
    # the logged learning rate is the optimizer's schedule, and validation landed at 5 and 10
    sched = learning_rate_schedule(tc)
    assert [shown[("train/lr", s)] for s in (1, 2, 10)] == pytest.approx(
        [float(sched(0)), float(sched(1)), float(sched(9))], rel=1e-6)
    assert {s for t, s in shown if t == "val/w_half"} == {0, 5, 10}
    assert all(shown[("train/step_seconds", s)] >= 0 for s in range(1, 11))
