"""ifvit-core stays pure: importing every module pulls no torch, grain, array_record or orbax."""

import subprocess
import sys

MODULES = [
    "ifvit_core", "ifvit_core.config", "ifvit_core.params", "ifvit_core.losses",
    "ifvit_core.geometry", "ifvit_core.loftr", "ifvit_core.ifvit", "ifvit_core.enhance",
]
FORBIDDEN = ("torch", "grain", "array_record", "orbax")


def test_forbidden_imports_never_enter_sys_modules():
    # A fresh interpreter: the test process may have other members' modules loaded.
    code = (
        f"import sys\nfor m in {MODULES!r}: __import__(m)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
