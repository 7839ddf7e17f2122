"""A Module 1 training run in its own process (used by test_resume.py with real kills).

usage: python train_job.py SHARDS WORKDIR STEPS [--kill-during-save STEP]
Writes WORKDIR/final_params.npz (flat '/'-keyed arrays) when the run completes.
"""

import os
import signal
import sys

import numpy as np


def main() -> None:
    shards, workdir, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if "--kill-during-save" in sys.argv:
        kill_step = sys.argv[sys.argv.index("--kill-during-save") + 1]
        from orbax.checkpoint._src.path import atomicity

        for cls in (atomicity.AtomicRenameTemporaryPath, atomicity.CommitFileTemporaryPath):
            original = cls.finalize

            async def finalize(self, *a, _orig=original, **k):
                # The step's files are written; die before Orbax commits (renames) them.
                if os.path.basename(str(self.get_final())) == kill_step:
                    os.kill(os.getpid(), signal.SIGKILL)
                return await _orig(self, *a, **k)

            cls.finalize = finalize

    from ifvit_core import config
    from ifvit_train.training.config import TrainConfig
    from ifvit_train.training.run import train_dense

    tc = TrainConfig(steps=steps, batch_size=8, checkpoint_every=3, validate_every=0, val_pairs=8,
                     holdout=0.25, warmup_steps=2, keep_checkpoints=2,
                     input_downscale=1.0, max_translation=0.0, impression_pairs=0.0,
                     margin_warmup_steps=0)
    train_dense(shards, workdir, config.tiny(), tc, progress=False,
                log=lambda s: print(s, flush=True))
    from ifvit_core import params
    from ifvit_train.serving.bundle import load_bundle

    flat = params.flat_state(load_bundle(workdir).module1)
    np.savez(os.path.join(workdir, "final_params.npz"),
             **{k.replace("/", "|"): v for k, v in flat.items()})


if __name__ == "__main__":
    main()
