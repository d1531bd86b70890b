"""reactor.http1connection's helpers: parse_int, parse_hex_int,
is_transfer_encoding_chunked and the patterns they use.

Sans-IO: strings in, values or errors out, no loop; these run once, not once
per backend. What each helper refuses is what a peer could use to make two
readers of one message disagree on its framing.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactor.http1connection import (
    CR_OR_LF_RE,
    DIGITS,
    HEXDIGITS,
    is_transfer_encoding_chunked,
    parse_hex_int,
    parse_int,
)
from reactor.httputil import HTTPHeaders, HTTPInputError

# -- parse_int ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("7", 7), ("0012", 12), ("1" * 30, int("1" * 30))]
)
def test_parse_int_takes_ascii_digits(text: str, value: int) -> None:
    assert parse_int(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1\t",
        "1_000",
        "0x10",
        "1.0",
        "1e3",
        "\u0661\u0662",  # Arabic-Indic digits, which int() takes
        "\uff11",  # a fullwidth digit
        "1\n",
        "a",
    ],
)
def test_parse_int_refuses_what_int_would_take(text: str) -> None:
    with pytest.raises(ValueError):
        parse_int(text)


@given(st.integers(min_value=0, max_value=10**30))
def test_parse_int_reads_what_str_writes(n: int) -> None:
    assert parse_int(str(n)) == n


@given(st.text(max_size=12))
def test_parse_int_accepts_exactly_ascii_digit_strings(text: str) -> None:
    ascii_digits = bool(text) and all("0" <= c <= "9" for c in text)
    try:
        value = parse_int(text)
    except ValueError:
        assert not ascii_digits
    else:
        assert ascii_digits and value == int(text)


# -- parse_hex_int --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("a", 10), ("FF", 255), ("00fF", 255), ("10", 16)]
)
def test_parse_hex_int_takes_hex_digits(text: str, value: int) -> None:
    assert parse_hex_int(text) == value


@pytest.mark.parametrize("text", ["", "-1", "+a", " a", "a ", "0x1", "1_0", "g", "1;ext", "\u0661"])
def test_parse_hex_int_refuses_signs_spaces_prefixes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hex_int(text)


@given(st.integers(min_value=0, max_value=2**128))
def test_parse_hex_int_reads_both_cases(n: int) -> None:
    assert parse_hex_int(f"{n:x}") == n
    assert parse_hex_int(f"{n:X}") == n


def test_parse_hex_int_has_no_length_limit_of_its_own() -> None:
    """int() refuses long decimal strings (CPython's 4300 digits); a
    hexadecimal one is not limited, so the caller bounds the line."""
    assert parse_hex_int("0" * 5000 + "1") == 1


# -- the patterns ---------------------------------------------------------------------


def test_patterns() -> None:
    assert CR_OR_LF_RE.search(b"a\rb") and CR_OR_LF_RE.search(b"a\nb")
    assert CR_OR_LF_RE.search(b"a b\t") is None
    assert DIGITS.fullmatch("123") and not DIGITS.fullmatch("12a")
    assert HEXDIGITS.fullmatch("12aF") and not HEXDIGITS.fullmatch("12g")


# -- is_transfer_encoding_chunked -----------------------------------------------------


def test_no_transfer_encoding_is_not_chunked() -> None:
    assert is_transfer_encoding_chunked(HTTPHeaders()) is False
    # A Content-Length alone is fine.
    assert is_transfer_encoding_chunked(HTTPHeaders({"Content-Length": "3"})) is False


@pytest.mark.parametrize("value", ["chunked", "Chunked", "CHUNKED"])
def test_chunked_in_any_case(value: str) -> None:
    assert is_transfer_encoding_chunked(HTTPHeaders({"Transfer-Encoding": value})) is True


@pytest.mark.parametrize(
    "value",
    ["gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked", ",chunked", "identity", "x"],
)
def test_other_codings_are_refused(value: str) -> None:
    with pytest.raises(HTTPInputError, match="Transfer-Encoding"):
        is_transfer_encoding_chunked(HTTPHeaders({"Transfer-Encoding": value}))


def test_repeated_chunked_header_lines_are_refused() -> None:
    """Two ``Transfer-Encoding: chunked`` lines are the list ``chunked,chunked``."""
    headers = HTTPHeaders.parse("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")
    with pytest.raises(HTTPInputError):
        is_transfer_encoding_chunked(headers)


@pytest.mark.parametrize("length", ["0", "5", "x"])
def test_both_headers_are_refused(length: str) -> None:
    headers = HTTPHeaders({"Transfer-Encoding": "chunked", "Content-Length": length})
    with pytest.raises(HTTPInputError, match="both"):
        is_transfer_encoding_chunked(headers)
