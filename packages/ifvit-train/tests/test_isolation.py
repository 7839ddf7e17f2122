"""ifvit-train must not import torch (ARCHITECTURE.md)."""

import subprocess
import sys


def test_no_torch_import():
    code = ("import sys, ifvit_train.dense, ifvit_train.mesh; "
            "bad = [m for m in ('torch',) if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
