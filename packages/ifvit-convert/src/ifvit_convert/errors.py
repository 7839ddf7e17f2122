"""The one exception the converter raises for bad input; its message is a single line."""

from __future__ import annotations

TORCH_HINT = (
    "install it with `pip install 'ifvit-convert[torch]'` "
    "(or `uv sync --extra convert` in the workspace)"
)

VERIFY_HINT = (
    "install it with `pip install 'ifvit-convert[verify]'` "
    "(or `uv sync --extra convert` in the workspace, `pip install 'ifvit[convert]'` for the app)"
)


class ConversionError(Exception):
    """Bad input or environment. The message names the file, what is wrong and what to do, on one
    line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


class TorchMissingError(ConversionError):
    """Reading a PyTorch checkpoint needs torch, which is an optional extra of ifvit-convert."""
