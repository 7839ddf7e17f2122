"""The `ifvit` command: thin sub-commands over the IFViT-JAX packages.

Each sub-command lives in `ifvit_cli.commands.<name>` and exposes

    HELP: str                                   # one line for `ifvit --help`
    def add_arguments(parser) -> None           # its flags, with an example in the epilog
    def run(args) -> int                        # the exit code

Sub-command modules are imported only when that command runs, so `ifvit synth` never imports JAX
and `ifvit --help` stays fast. Expected errors raise `ifvit_cli.errors.UserError` (or
`ifvit_data.outputs.OutputError`, the output-safety policy) and are printed as one line on stderr
with exit code 2 (no traceback); so are argparse's errors. Every command runs inside
`ifvit_data.outputs.interrupt_guard()`: Ctrl-C (SIGINT) exits 130 and SIGTERM 143, and no output is
committed after either, even if a library swallowed the KeyboardInterrupt on the way.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import typing

from ifvit_cli.errors import UserError
from ifvit_data.outputs import OutputError, interrupt_guard, interrupted
from ifvit_train.serving import compile_cache

# name -> (module, one-line help). Order is the order shown in `ifvit --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("ifvit_cli.commands.synth", "generate synthetic fingerprints (FVC naming, manifest)"),
    "ingest": ("ifvit_cli.commands.ingest", "images -> ArrayRecord shards + manifest.json"),
    "convert": ("ifvit_cli.commands.convert", "LoFTR PyTorch checkpoint -> IFViT-JAX weights"),
    "train": ("ifvit_cli.commands.train",
              "train Module 1 / Module 2 into a resumable model bundle"),
    "match": ("ifvit_cli.commands.match", "verify two prints: score, decision, correspondences"),
    "evaluate": ("ifvit_cli.commands.evaluate",
                 "FVC metrics of a model on a folder of prints (EER, DET)"),
    "export": ("ifvit_cli.commands.export", "weights-only copy of a trained bundle, to ship"),
    "whiten": ("ifvit_cli.commands.whiten",
               "adapt a bundle's embeddings to your sensors from unlabelled prints"),
    "calibrate": ("ifvit_cli.commands.calibrate",
                  "fit thresholds and evidence weight to validation prints"),
    "enroll": ("ifvit_cli.commands.enroll",
               "prints -> a gallery of per-print templates for 1:N search"),
    "identify": ("ifvit_cli.commands.identify", "1:N search of probe prints in a gallery"),
    "inspect": ("ifvit_cli.commands.inspect",
                "show what a model bundle holds and how it was trained"),
    "demo": ("ifvit_cli.commands.demo", "the embedded default run on synthetic prints"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (`ifvit X: error: ...; see ifvit X --help`), exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}; see {self.prog} --help\n")


def _available() -> dict[str, tuple[str, str]]:
    """Commands whose module exists in this installation."""
    import importlib.util

    return {n: v for n, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ifvit",
        description="IFViT-JAX: interpretable fixed-length fingerprint matching (Module 1 dense "
        "registration + Module 2 fixed-length representation) in JAX/Flax.",
        epilog="Run `ifvit COMMAND --help` for the flags and an example of each command.\n\n"
        "Compiled XLA programs are kept in a persistent cache, so the second run of a command "
        "answers in seconds: $IFVIT_COMPILE_CACHE, else $XDG_CACHE_HOME/ifvit/jax (default "
        "~/.cache/ifvit/jax), at most $IFVIT_COMPILE_CACHE_MAX_BYTES (1 GiB). "
        "`ifvit --compile-cache DIR COMMAND ...` moves it for one run; `--compile-cache off` or "
        "IFVIT_COMPILE_CACHE=off disables it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in _available().items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def _compile_cache_option(argv: list[str]) -> tuple[str | None, list[str]]:
    """Takes a leading `--compile-cache DIR|off` (or `--compile-cache=...`) off argv."""
    if argv and argv[0].startswith("--compile-cache="):
        return argv[0].split("=", 1)[1], argv[1:]
    if argv and argv[0] == "--compile-cache":
        if len(argv) < 2:
            raise UserError("--compile-cache needs a folder, or 'off'")
        return argv[1], argv[2:]
    return None, argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cache, argv = _compile_cache_option(argv)
    except UserError as e:
        print(f"ifvit: error: {e}", file=sys.stderr)
        return 2
    # Before any command imports jax: compiled programs are reused across runs.
    compile_cache.configure(cache)
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
    parser = _Parser(
        prog=f"ifvit {name}",
        description=getattr(module, "DESCRIPTION", available[name][1]),
        epilog=getattr(module, "EPILOG", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    with interrupt_guard():
        try:
            code = int(module.run(args) or 0)
            if interrupted() is None:
                return code
        except (UserError, OutputError) as e:
            print(f"ifvit {name}: error: {' '.join(str(e).split())}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            pass
        signum = interrupted() or signal.SIGINT
        print(f"ifvit {name}: interrupted ({signal.Signals(signum).name}); no partial output "
              "was committed", file=sys.stderr)
        return 128 + int(signum)


if __name__ == "__main__":
    sys.exit(main())
