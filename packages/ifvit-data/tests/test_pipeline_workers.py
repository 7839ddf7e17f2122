"""Worker processes (Grain `mp_prefetch`) give exactly the batches of the in-process iterator."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from ifvit_data.memory import MemorySource
    from ifvit_data.pipeline import PairConfig, make_iterator, module1_dataset
    from ifvit_data.preprocess import CropConfig

    def records():
        y, x = np.mgrid[0:96, 0:96]
        out = []
        for k in range(12):
            r = np.hypot(x - 48 + k, y - 44)
            img = np.where(r < 40, 127 + 100 * np.cos(2 * np.pi * r / 9), 255).astype(np.uint8)
            out.append({"image": img, "finger": k // 3, "impression": k % 3 + 1})
        return out

    if __name__ == "__main__":  # workers re-import this module
        # No absl flag parsing here: make_iterator(num_workers=...) takes care of it. (The flag
        # pitfall only bites where jax is installed: ifvit-train's test_grain_workers.py covers it.)
        cfg = PairConfig(crop=CropConfig((64, 64), jitter=4.0), noise_bank=4)
        ds = module1_dataset(MemorySource(records()), cfg, seed=5, batch_size=2, num_epochs=2)
        ref = list(make_iterator(ds, num_threads=1))
        it = make_iterator(ds, num_workers=2)
        got = list(it)
        same = len(ref) == len(got) == 12 and all(
            np.array_equal(a[k], b[k]) for a, b in zip(ref, got) for k in a)
        print("SAME" if same else "DIFFERENT", len(ref), len(got))
    """
)


@pytest.mark.slow
def test_worker_processes_match_threads(tmp_path: Path) -> None:
    script = tmp_path / "mp_check.py"
    script.write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "SAME 12 12", out.stdout
