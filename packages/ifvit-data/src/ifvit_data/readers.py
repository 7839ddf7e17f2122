"""Dataset readers: file-name layouts -> fingerprint records (image, subject, finger, impression,
dpi).

Layouts (a regular expression on the file name unless noted; `pattern=` overrides it):

| layout | file names | finger identity | impression |
|---|---|---|---|
| `fvc` | `{finger}_{impression}.tif/bmp/png/wsq`, optionally under `DBn_A/`, `DBn_B/`, ... | (folder, finger) | the number |
| `nist-sd4` | `f####_##.png`, `s####_##.png` | (folder, ####) | f = 1, s = 2 |
| `nist-sd300` | `{subject}_{ppi}_{roll|plain}_{frgp}.png` | (subject, frgp) | rank within the finger |
| `nist-sd301`, `nist-sd302` | `{subject}_{device}_{ppi}_{capture}_{frgp}.png` | (subject, frgp) | rank within the finger |
| `folder` | `subject/.../impression.ext` (relative path), any of `IMAGE_EXTS` | the parent folder | rank within the finger |

Files with other extensions are counted as ignored, not read. `.wsq` needs the `wsq` package
(`imagefile` module docstring): without it each WSQ file is skipped with the advice to install it.

The NIST SD300/301/302 patterns are *our reading* of NIST's naming, not a NIST specification: check
a few names of your copy and pass `pattern=` (named groups `subject`, `finger`, `frgp`,
`impression`, `ppi`; any of them optional; matched against the file name) if they differ. "rank
within the finger" numbers a finger's files 1, 2, ...
in sorted path order.

`finger` in a record is a dense 0-based index over the sorted finger identities of the folder; the
readable identity is in `subject` (e.g. `DB1_B/101`, or `00002` for a NIST subject).

Resolution: an explicit `dpi=` wins; else the file's metadata (Pillow `info['dpi']`, unless it is a
placeholder such as FVC's 1 dpi, see `imagefile.PLACEHOLDER_DPI`); else a `ppi` field of the file
name; else the layout default (500 ppi, the resolution of FVC and SD4). A resolution outside
`imagefile.DPI_RANGE` skips the file with the reason (`dpi=` outside it is refused up front).
Every image is resampled to 500 ppi and normalised to 8-bit gray (`imagefile` lists the pixel modes
and the size limits).
"""  # noqa: E501 (the table rows above cannot wrap in Markdown)

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ifvit_data.imagefile import (
    ImageReadError,
    check_dpi,
    check_side,
    read_image,
    resample_to,
    resampled_shape,
)

IMAGE_EXTS: frozenset[str] = frozenset(
    {".tif", ".tiff", ".bmp", ".png", ".jpg", ".jpeg", ".pgm", ".wsq"}
)
"""Every extension `read_image` decodes (the `folder` layout accepts all of them)."""


@dataclass(frozen=True)
class Layout:
    """How file names encode identity.

    Attributes:
      name: the layout name used on the command line.
      pattern: regex matched against the file name (or the relative path for `folder`).
      exts: accepted file extensions (lower case, with the dot).
      use_folder: prefix the identity with the file's parent folder (FVC DBs reuse finger numbers).
      impression_map: maps the `impression` group's text to a number (otherwise int() or rank).
      default_dpi: resolution assumed when neither a flag, metadata nor the name gives one.
    """

    name: str
    pattern: str
    exts: frozenset[str]
    use_folder: bool = False
    impression_map: dict[str, int] = field(default_factory=dict)
    default_dpi: float = 500.0


_SD30X = (
    r"(?P<subject>\d+)_(?P<device>[A-Za-z0-9]+)_(?P<ppi>\d+)_(?P<capture>\d+)_(?P<frgp>\d+)\.png"
)
LAYOUTS: dict[str, Layout] = {
    "fvc": Layout(
        "fvc",
        r"(?P<finger>\d+)_(?P<impression>\d+)\.(?i:tif|tiff|bmp|png|wsq)",
        frozenset({".tif", ".tiff", ".bmp", ".png", ".wsq"}),
        use_folder=True,
    ),
    "nist-sd4": Layout(
        "nist-sd4",
        r"(?P<impression>[fs])(?P<finger>\d{4})_(?P<frgp>\d{2})\.(?i:png)",
        frozenset({".png"}),
        use_folder=True,
        impression_map={"f": 1, "s": 2},
    ),
    "nist-sd300": Layout(
        "nist-sd300",
        r"(?P<subject>\d+)_(?P<ppi>\d+)_(?P<kind>roll|plain)_(?P<frgp>\d+)\.(?i:png)",
        frozenset({".png"}),
    ),
    "nist-sd301": Layout("nist-sd301", _SD30X, frozenset({".png"})),
    "nist-sd302": Layout("nist-sd302", _SD30X, frozenset({".png"})),
    "folder": Layout("folder", r"(?P<subject>[^/]+)/(?:.+/)?[^/]+", IMAGE_EXTS),
}


class DatasetError(ValueError):
    """The folder cannot be read as the requested layout (message: what, where, what to do)."""


@dataclass(frozen=True)
class Entry:
    """One file of the dataset after name parsing (before decoding).

    Attributes:
      path: absolute file path.
      rel: path relative to the dataset root (POSIX).
      subject: readable identity of the finger (or person).
      finger: dense finger id.
      impression: impression number (1-based).
      name_ppi: resolution from the file name, if the layout has one.
    """

    path: Path
    rel: str
    subject: str
    finger: int
    impression: int
    name_ppi: float | None


@dataclass
class Skipped:
    """Files that did not become records: `(relative path, reason)` pairs, plus ignored
    non-images."""

    files: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0


def _natural(s: str) -> tuple[Any, ...]:
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", s) if t)


def scan(
    root: Path, layout: str, pattern: str | None = None, strict: bool = False
) -> tuple[list[Entry], Skipped]:
    """Lists and parses the files of a dataset folder.

    Args:
      root: the dataset folder (searched recursively).
      layout: a key of `LAYOUTS`.
      pattern: optional regex replacing the layout's file-name pattern.
      strict: raise on an image file whose name does not match instead of skipping it.

    Returns:
      `(entries sorted by finger then impression, skipped)`.

    Raises:
      DatasetError: unknown layout, missing folder, bad pattern, or (strict) a non-matching name.
    """
    if layout not in LAYOUTS:
        raise DatasetError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory; pass the folder that holds the images")
    lay = LAYOUTS[layout]
    try:
        rx = re.compile(pattern or lay.pattern)
    except re.error as e:
        raise DatasetError(f"bad --pattern {pattern!r}: {e}") from None
    skipped = Skipped()
    parsed: list[tuple[tuple[Any, ...], str, str, Path, dict[str, str]]] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.suffix.lower() not in lay.exts:
            skipped.ignored += 1
            continue
        target = rel if layout == "folder" and pattern is None else path.name
        m = rx.fullmatch(target)
        if m is None:
            msg = f"name does not match the {layout} layout ({rx.pattern})"
            if strict:
                raise DatasetError(f"{path}: {msg}; rename it, use --pattern, or drop --strict")
            skipped.files.append((rel, msg))
            continue
        g = {k: v for k, v in m.groupdict().items() if v is not None}
        folder = path.parent.relative_to(root).as_posix() if lay.use_folder else ""
        folder = "" if folder == "." else folder
        if layout == "folder" and pattern is None:
            ident_parts = [path.parent.relative_to(root).as_posix()]
        else:
            ident_parts = [folder] + [g[k] for k in ("subject", "finger", "frgp") if k in g]
        ident_parts = [p for p in ident_parts if p]
        if not ident_parts:
            raise DatasetError(
                f"pattern {rx.pattern!r} has no subject/finger/frgp group to identify fingers"
            )
        parsed.append((tuple(_natural("/".join(ident_parts))), "/".join(ident_parts), rel, path, g))

    idents = sorted({p[0] for p in parsed})
    fid = {k: n for n, k in enumerate(idents)}
    by_finger: dict[int, list[tuple[str, Path, dict[str, str], str]]] = {}
    for key, name, rel, path, g in parsed:
        by_finger.setdefault(fid[key], []).append((rel, path, g, name))
    entries: list[Entry] = []
    for f in sorted(by_finger):
        files = sorted(by_finger[f], key=lambda t: _natural(t[0]))
        imps: list[int] = []
        for rank, (_rel, _path, g, _name) in enumerate(files, start=1):
            text = g.get("impression")
            if text is not None and text in lay.impression_map:
                imps.append(lay.impression_map[text])
            elif text is not None and text.isdigit():
                imps.append(int(text))
            else:
                imps.append(rank)
        if len(set(imps)) != len(imps):  # e.g. the same impression number in two sub-folders
            imps = list(range(1, len(files) + 1))
        for (rel, path, g, name), imp in zip(files, imps, strict=True):
            ppi = float(g["ppi"]) if g.get("ppi", "").isdigit() and float(g["ppi"]) > 0 else None
            entries.append(Entry(path, rel, name, f, imp, ppi))
    entries.sort(key=lambda e: (e.finger, e.impression))
    return entries, skipped


class DatasetReader:
    """Iterates the records of a dataset folder, skipping (or, strict, raising on) unreadable files.

    Args:
      root: the dataset folder.
      layout: a key of `LAYOUTS`.
      dpi: resolution of every file (overrides metadata and names), or None.
      strict: raise `DatasetError` on the first bad file instead of skipping it.
      pattern: optional regex replacing the layout's file-name pattern.

    Attributes:
      entries: the parsed files, in output order.
      skipped: files that were skipped so far (filled while iterating).
      dpi_sources: how many records took their dpi from `flag`, `metadata`, `name` or `default`.
    """

    def __init__(
        self,
        root: Path,
        layout: str,
        dpi: float | None = None,
        strict: bool = False,
        pattern: str | None = None,
    ):
        if dpi is not None and (reason := check_dpi(float(dpi), "--dpi")) is not None:
            raise DatasetError(f"{reason}; give the scan resolution of the images, e.g. --dpi 500")
        self.root = Path(root)
        self.layout = layout
        self.dpi = dpi
        self.strict = strict
        self.entries, self.skipped = scan(self.root, layout, pattern, strict)
        self.dpi_sources: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, entry: Entry) -> dict[str, Any]:
        """Decodes one entry into a record (uint8 `[H, W]` image at 500 ppi plus metadata).

        Raises:
          ImageReadError: the file is unreadable, its resolution is implausible, or its size at
            500 ppi is outside the accepted range (see `ifvit_data.imagefile`).
        """
        image, meta_dpi = read_image(entry.path)
        if self.dpi is not None:
            dpi, src = float(self.dpi), "flag"
        elif meta_dpi is not None:
            dpi, src = meta_dpi, "metadata"
        elif entry.name_ppi is not None:
            dpi, src = entry.name_ppi, "name"
        else:
            dpi, src = LAYOUTS[self.layout].default_dpi, "default"
        what = {"flag": "--dpi", "metadata": "its metadata says", "name": "its file name says"}
        if (reason := check_dpi(dpi, what.get(src, "the layout default"))) is not None:
            raise ImageReadError(entry.path, reason)
        shape = resampled_shape(image.shape, dpi)
        if (reason := check_side(shape, f"at 500 ppi ({dpi:g} dpi) the image")) is not None:
            raise ImageReadError(entry.path, reason)
        self.dpi_sources[src] += 1
        return {
            "image": resample_to(image, dpi),
            "subject": entry.subject,
            "finger": entry.finger,
            "impression": entry.impression,
            "dpi": dpi,
            "source": entry.rel,
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for entry in self.entries:
            try:
                yield self.load(entry)
            except ImageReadError as e:
                if self.strict:
                    raise DatasetError(f"{e} (or drop --strict to skip bad files)") from None
                self.skipped.files.append((entry.rel, e.reason))
