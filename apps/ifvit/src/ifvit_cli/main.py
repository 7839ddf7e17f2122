"""The `ifvit` command: thin sub-commands over the IFViT-JAX packages.

Each sub-command lives in `ifvit_cli.commands.<name>` and exposes

    HELP: str                                   # one line for `ifvit --help`
    def add_arguments(parser) -> None           # its flags, with an example in the epilog
    def run(args) -> int                        # the exit code

Sub-command modules are imported only when that command runs, so `ifvit synth` never imports JAX
and `ifvit --help` stays fast. Expected errors raise `ifvit_cli.errors.UserError` and are printed as
one line on stderr with exit code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ifvit_cli.errors import UserError

# name -> (module, one-line help). Order is the order shown in `ifvit --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("ifvit_cli.commands.synth", "generate synthetic fingerprints (FVC naming, manifest)"),
    "ingest": ("ifvit_cli.commands.ingest", "images -> ArrayRecord shards + manifest.json"),
    "convert": ("ifvit_cli.commands.convert", "LoFTR PyTorch checkpoint -> IFViT-JAX weights"),
    "train": ("ifvit_cli.commands.train", "train Module 1 / Module 2 into a resumable model bundle"),
    "inspect": ("ifvit_cli.commands.inspect", "show what a model bundle holds and how it was trained"),
    "demo": ("ifvit_cli.commands.demo", "the embedded default run on synthetic prints"),
}


def _available() -> dict[str, tuple[str, str]]:
    """Commands whose module exists in this installation (some land in later releases)."""
    import importlib.util

    return {n: v for n, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ifvit",
        description="IFViT-JAX: interpretable fixed-length fingerprint matching (Module 1 dense "
        "registration + Module 2 fixed-length representation) in JAX/Flax.",
        epilog="Run `ifvit COMMAND --help` for the flags and an example of each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in _available().items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    available = _available()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in available:
        parser = build_parser()
        if argv and argv[0] not in ("-h", "--help") and not argv[0].startswith("-"):
            print(f"ifvit: unknown command {argv[0]!r}; choose one of: {', '.join(available)}",
                  file=sys.stderr)
            return 2
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    module = importlib.import_module(available[name][0])
    parser = argparse.ArgumentParser(
        prog=f"ifvit {name}",
        description=getattr(module, "DESCRIPTION", available[name][1]),
        epilog=getattr(module, "EPILOG", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except UserError as e:
        print(f"ifvit {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ifvit {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
