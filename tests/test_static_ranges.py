"""The static file handler's pure helpers: Range parsing, the root check, redirects.

Sans-IO: these are fed strings, with no event loop, so they run once, not once
per backend. The same rules are checked through real HTTP in
``tests/conformance/test_web_static.py``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactor._static import (
    RangeNotSatisfiable,
    content_range,
    inside,
    is_protocol_relative,
    parse_byte_range,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", (0, 1)),
        ("bytes=1-2", (1, 3)),
        ("bytes=5-", (5, 10)),
        ("bytes=-3", (7, 10)),
        ("bytes=9-9", (9, 10)),
        ("bytes=2-999999999", (2, 10)),  # capped at the end (RFC 9110 14.1.2)
        ("bytes=2-" + "9" * 5000, (2, 10)),  # too wide to convert: past the end
        ("Bytes = 1-2", (1, 3)),  # range units are case-insensitive (14.1)
        ("bytes= 1 - 2 ", (1, 3)),
        ("bytes=5", (5, 10)),  # no dash: an open range, as in Tornado
        ("bytes=" + "0" * 30 + "1-" + "0" * 30 + "2", (1, 3)),  # leading zeros are not width
    ],
)
def test_one_range(header: str, expected: tuple[int, int]) -> None:
    assert parse_byte_range(header, 10) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-",  # the whole file: 200, not 206
        "bytes=0-9",
        "bytes=0-99",
        "bytes=-10",
        "bytes=-11",  # a suffix longer than the file is the file (14.1.3)
        "bytes=-" + "9" * 5000,
        "bytes=",
        "bytes=-",
        "bytes",
        "items=0-5",  # another unit is ignored (14.2)
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=+1-2",  # 1*DIGIT: no sign,
        "bytes=1_0-20",  # no underscores,
        "bytes=\u0661-2",  # and no digits other than ASCII
        "bytes=0x1-2",
        "bytes=1-2,4-5",  # several ranges: the whole file, as Tornado does
        "bytes=1-2, 4-5",
        "bytes=1,2-3",
        "",
    ],
)
def test_whole_file(header: str) -> None:
    assert parse_byte_range(header, 10) is None


@pytest.mark.parametrize(
    "header",
    [
        "bytes=10-",  # starts at the end
        "bytes=10",
        "bytes=10-20",
        "bytes=999999-",
        "bytes=" + "9" * 5000 + "-",
        "bytes=5-2",  # last before first: an invalid spec, rejected (14.2)
        "bytes=-0",  # a zero-length suffix selects nothing (14.1.3)
    ],
)
def test_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_byte_range(header, 10)


def test_empty_file_has_no_satisfiable_range() -> None:
    for header in ("bytes=0-", "bytes=0-0", "bytes=-1"):
        with pytest.raises(RangeNotSatisfiable):
            parse_byte_range(header, 0)
    assert parse_byte_range("bytes=", 0) is None


@given(
    size=st.integers(0, 50),
    first=st.one_of(st.none(), st.integers(0, 60)),
    last=st.one_of(st.none(), st.integers(0, 60)),
)
def test_matches_the_slice_model(size: int, first: int | None, last: int | None) -> None:
    """Every single range agrees with slicing ``bytes(size)`` as RFC 9110 reads it."""
    spec = ("" if first is None else str(first), "" if last is None else str(last))
    header = f"bytes={spec[0]}-{spec[1]}"
    data = bytes(range(size))
    if first is None and last is None:
        expected: object = "whole"
    elif first is None:
        assert last is not None
        expected = "416" if last == 0 or size == 0 else data[max(0, size - last) :]
    elif first >= size or (last is not None and last < first):
        expected = "416"
    else:
        expected = data[first : size if last is None else last + 1]
    try:
        got = parse_byte_range(header, size)
    except RangeNotSatisfiable:
        assert expected == "416"
        return
    if got is None:
        assert expected == "whole" or expected == data
    else:
        start, end = got
        assert data[start:end] == expected
        assert 0 <= start < end <= size and (start, end) != (0, size)


def test_content_range() -> None:
    assert content_range(0, 1, 10) == "bytes 0-0/10"
    assert content_range(7, 10, 10) == "bytes 7-9/10"


@pytest.mark.parametrize(
    "url",
    ["//evil.example/", "/\\evil.example/", "\\\\evil.example", " //x.example", "/\t/x.example"],
)
def test_protocol_relative(url: str) -> None:
    assert is_protocol_relative(url)


@pytest.mark.parametrize("url", ["/static/a/", "/", "/%5Cevil.example/", "/%2F/evil.example"])
def test_not_protocol_relative(url: str) -> None:
    assert not is_protocol_relative(url)


def test_inside() -> None:
    root = os.path.abspath("/srv/www")
    assert inside(root, root)
    assert inside(root, os.path.join(root, "a", "b"))
    assert not inside(root, root + "2")  # a sibling that shares the prefix
    assert not inside(root, os.path.abspath(os.path.join(root, "..", "etc")))
    assert not inside(root, "relative/path")
    assert inside(os.path.abspath("/"), os.path.abspath("/etc/passwd"))


def test_get_content_yields_bounded_chunks(tmp_path: Path) -> None:
    from reactor.web import StaticFileHandler

    data = os.urandom(200 * 1024 + 5)
    (tmp_path / "f").write_bytes(data)
    path = str(tmp_path / "f")
    chunks = list(StaticFileHandler.get_content(path))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) == 64 * 1024
    part = list(StaticFileHandler.get_content(path, 65_000, 140_000))
    assert b"".join(part) == data[65_000:140_000]
    assert all(len(c) <= 64 * 1024 for c in part)
    assert b"".join(StaticFileHandler.get_content(path, None, 10)) == data[:10]
    assert b"".join(StaticFileHandler.get_content(path, len(data) - 3)) == data[-3:]


def test_get_content_version_is_sha512_and_bounded(tmp_path: Path) -> None:
    from reactor.web import StaticFileHandler

    (tmp_path / "f").write_bytes(b"abc")
    assert StaticFileHandler.get_content_version(str(tmp_path / "f")) == (
        hashlib.sha512(b"abc").hexdigest()
    )

    class Small(StaticFileHandler):
        MAX_VERSION_CONTENT_SIZE = 2

    with pytest.raises(ValueError, match="MAX_VERSION_CONTENT_SIZE"):
        Small.get_content_version(str(tmp_path / "f"))


def test_version_cache_is_bounded(tmp_path: Path) -> None:
    from reactor.web import StaticFileHandler

    class Few(StaticFileHandler):
        MAX_CACHED_VERSIONS = 3

    Few.reset()
    for i in range(10):
        (tmp_path / f"{i}.txt").write_bytes(str(i).encode())
        assert Few.get_version({"static_path": str(tmp_path)}, f"{i}.txt") == (
            hashlib.sha512(str(i).encode()).hexdigest()
        )
    assert len(Few._static_hashes) == 3
    assert list(Few._static_hashes) == [str(tmp_path / f"{i}.txt") for i in (7, 8, 9)]
    Few.reset()
    assert Few._static_hashes == {}


def test_inside_agrees_with_commonpath() -> None:
    paths = ["/", "/srv", "/srv/www", "/srv/www2", "/srv/www/a", "/srv/www/a/b", "/srvx", "/etc"]
    for directory in paths:
        for path in paths:
            assert inside(directory, path) == (
                os.path.commonpath([directory, path]) == directory
            ), (directory, path)
