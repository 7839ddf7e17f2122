"""Serving never loads training code: `ifvit match` with the shipped model imports no trainer,
optimizer, train state or mesh module (it restores weights only)."""

import subprocess
import sys
from pathlib import Path

REAL = Path(__file__).resolve().parents[3] / "packages/ifvit-train/tests/data/fvc2002_db1_b"
TRAINING = ("ifvit_train.dense", "ifvit_train.match", "ifvit_train.optim", "ifvit_train.state",
            "ifvit_train.loop", "ifvit_train.run", "ifvit_train.mesh", "ifvit_train.data",
            "ifvit_train.validate", "ifvit_train.calibrate", "grain", "tensorboardX")


def test_match_imports_no_training_module():
    code = ("import sys; from ifvit_cli.main import main; code = main(sys.argv[1:]); "
            f"loaded = sorted(m for m in {TRAINING!r} if m in sys.modules); "
            "print('exit', code, 'training modules', loaded)")
    p = subprocess.run([sys.executable, "-c", code, "match", str(REAL / "101_1.png"),
                        str(REAL / "101_2.png")], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "score" in p.stdout  # it really matched
    assert p.stdout.strip().splitlines()[-1] == "exit 0 training modules []", p.stdout[-2000:]
