"""ifvit-train must not import torch (ARCHITECTURE.md), nor TensorFlow for its TensorBoard
events."""

import subprocess
import sys


def test_no_torch_import(tmp_path):
    code = ("import sys, ifvit_train.training.module1, ifvit_train.serving.mesh; "
            "import ifvit_train.training.loop; "
            "from ifvit_train.training.tensorboard import ScalarLog; "
            f"log = ScalarLog({str(tmp_path)!r}); log.write({{'step': 1, 'loss': 1.0}}); "
            "log.close(); bad = [m for m in ('torch', 'tensorflow') if m in sys.modules]; assert "
            "not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
