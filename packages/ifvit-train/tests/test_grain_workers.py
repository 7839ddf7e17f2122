"""Grain worker processes where jax is installed (as in training): grain then reads absl flags in
its workers and fails with UnparsedFlagAccessError unless flags were parsed;
`ifvit_data.pipeline.make_iterator(num_workers=...)` must handle that for plain scripts."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from ifvit_data.memory import MemorySource
    from ifvit_data.pipeline import PairConfig, make_iterator, module1_dataset
    from ifvit_data.preprocess import CropConfig

    if __name__ == "__main__":  # workers re-import this module; no absl.app, no flag parsing
        y, x = np.mgrid[0:96, 0:96]
        r = np.hypot(x - 48, y - 44)
        img = np.where(r < 40, 127 + 100 * np.cos(2 * np.pi * r / 9), 255).astype(np.uint8)
        recs = [{"image": img, "finger": k // 2, "impression": k % 2 + 1} for k in range(6)]
        ds = module1_dataset(MemorySource(recs), PairConfig(crop=CropConfig((64, 64))),
                             seed=0, batch_size=2)
        ref = list(make_iterator(ds))
        got = list(make_iterator(ds, num_workers=2))
        same = len(ref) == len(got) == 3 and all(
            np.array_equal(a[k], b[k]) for a, b in zip(ref, got) for k in a)
        print("SAME" if same else "DIFFERENT")
    """
)


@pytest.mark.slow
def test_worker_processes_without_absl_app(tmp_path):
    import jax  # noqa: F401  (the pitfall needs jax importable; this env has it)

    script = tmp_path / "workers.py"
    script.write_text(SCRIPT)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "SAME"
