"""Pair lists: the text files that name pairs of prints to score (`ifvit match --pairs`).

One pair per line: two image paths separated by whitespace or by a comma. A path that holds a
space, a comma or a '#' is written in double quotes (`"my prints/a.png",b.png`). `#` outside
quotes starts a comment; blank lines are skipped.
UTF-8 with or without a byte-order mark; LF or CRLF line ends. Relative paths are relative to the
pair list's own folder.
"""

from __future__ import annotations

import shlex
from pathlib import Path


class PairListError(ValueError):
    """A pair list that cannot be read; the message names the file (and line) and what to do."""


def _fields(line: str) -> list[str]:
    """The fields of one line, comments removed (raises ValueError on unbalanced quotes)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=",")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    lexer.quotes = '"'  # an apostrophe is a path character
    lexer.escape = ""  # so is a backslash (Windows paths)
    return [t for t in lexer if t != ","]


def read_pair_list(path: str | Path) -> list[tuple[Path, Path]]:
    """[(image0, image1)] of a pair list (see the module docstring).

    Raises:
      PairListError: unreadable, not UTF-8, a line without exactly two paths, or no pair at all.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise PairListError(f"{path}: unreadable ({e}); save it as UTF-8 text") from None
    pairs = []
    for n, line in enumerate(text.splitlines(), start=1):
        try:
            fields = _fields(line)
        except ValueError as e:
            raise PairListError(f"{path}:{n}: {e} (a quoted path must end with a quote)") from None
        if not fields:
            continue
        if len(fields) != 2:
            raise PairListError(
                f"{path}:{n}: expected two image paths, got {len(fields)} field(s); quote a path "
                'that holds spaces, commas or #, e.g. "my prints/a.png",b.png')
        pairs.append(tuple(p if p.is_absolute() else path.parent / p for p in map(Path, fields)))
    if not pairs:
        raise PairListError(f"{path}: no pair listed; write one pair of image paths per line")
    return pairs
