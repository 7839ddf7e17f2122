"""Serving never loads training code: `ifvit match` with the shipped model imports nothing from
`ifvit_train.training` or `ifvit_train.evaluation`, nor Grain, the losses or matplotlib (weights
only; optax is loaded by flax.nnx itself)."""

import subprocess
import sys
from pathlib import Path

REAL = Path(__file__).resolve().parents[3] / "packages/ifvit-train/tests/data/fvc2002_db1_b"
# serving (`ifvit_train.serving`) imports no training or evaluation code, nor what only they use
TRAINING = ("ifvit_train.training", "ifvit_train.evaluation", "ifvit_core.losses", "grain",
            "tensorboardX", "matplotlib")


def test_match_imports_no_training_module():
    code = ("import sys; from ifvit_cli.main import main; code = main(sys.argv[1:]); "
            f"loaded = sorted(m for m in sys.modules if m.startswith({TRAINING!r})); "
            "print('exit', code, 'training modules', loaded)")
    p = subprocess.run([sys.executable, "-c", code, "match", str(REAL / "101_1.png"),
                        str(REAL / "101_2.png")], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "score" in p.stdout  # it really matched
    assert p.stdout.strip().splitlines()[-1] == "exit 0 training modules []", p.stdout[-2000:]
