"""Forbidden imports (ARCHITECTURE.md): importing ifvit_convert and loading a converted file must
not pull torch (only reading a PyTorch checkpoint may), nor grain / array_record (data-side
packages).

Run in a fresh interpreter: this test process has torch imported by the other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys

from ifvit_convert.convert import convert_file

FORBIDDEN = ("torch", "kornia", "grain", "array_record")

SCRIPT = """
import json, sys
import ifvit_convert
import ifvit_convert.checkpoint, ifvit_convert.cli, ifvit_convert.convert, ifvit_convert.hooks
import ifvit_convert.io, ifvit_convert.mapping, ifvit_convert.verify
from ifvit_convert import load_converted, load_loftr
flat, meta = load_converted(sys.argv[1])
model, meta = load_loftr(sys.argv[1])
from ifvit_core.params import flat_state
assert all((flat_state(model)[k] == v).all() for k, v in flat.items())
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2:]))))
"""


def test_loading_a_converted_file_is_torch_free(tiny_ckpt, tmp_path):
    _, written = convert_file(tiny_ckpt, tmp_path / "tiny.safetensors", preset="tiny")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(written), *FORBIDDEN],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
