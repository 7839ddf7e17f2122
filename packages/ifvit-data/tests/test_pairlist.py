"""Pair lists (`ifvit match --pairs`): separators, quoting, comments, BOM, CRLF, errors."""

from pathlib import Path

import pytest

from ifvit_data.pairlist import PairListError, read_pair_list


def _write(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "pairs.txt"
    p.write_bytes(data)
    return p


def test_separators_quotes_comments_bom_and_crlf(tmp_path):
    text = ("# a comment line\r\n"
            "a.png b.png\r\n"
            "c.png,d.png   # a trailing comment\r\n"
            '"my prints/e 1.png", "f,#2.png"\r\n'
            "\r\n"
            "/abs/g.png\tC:\\scans\\O'Brien.png\r\n")
    pairs = read_pair_list(_write(tmp_path, b"\xef\xbb\xbf" + text.encode()))
    assert pairs == [(tmp_path / "a.png", tmp_path / "b.png"),
                     (tmp_path / "c.png", tmp_path / "d.png"),
                     (tmp_path / "my prints/e 1.png", tmp_path / "f,#2.png"),
                     (Path("/abs/g.png"), tmp_path / "C:\\scans\\O'Brien.png")]


@pytest.mark.parametrize(("data", "message"), [
    (b"a.png b.png c.png\n", r"pairs.txt:1: expected two image paths, got 3"),
    (b"ok.png ok2.png\na b c\n", r"pairs.txt:2: expected two"),
    (b'"unclosed.png b.png\n', r"pairs.txt:1: .*quoted path must end with a quote"),
    (b"# only comments\n\n", r"no pair listed"),
    (b"\xff\xfe a b\n", r"unreadable .*save it as UTF-8"),
])
def test_bad_lists_are_one_clear_error(tmp_path, data, message):
    with pytest.raises(PairListError, match=message):
        read_pair_list(_write(tmp_path, data))
