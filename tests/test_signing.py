"""Signed values (reactor._cookies): the version 1 and 2 formats, key versions,
expiry, and what a forger can send.

Pure functions: no event loop, so these run once, not once per backend. The
handler methods built on them are tested through HTTP in
tests/conformance/test_web_cookies.py.
"""

from __future__ import annotations

import logging

import pytest
import tornado.web
from hypothesis import given
from hypothesis import strategies as st

from reactor._cookies import (
    DEFAULT_SIGNED_VALUE_MIN_VERSION,
    DEFAULT_SIGNED_VALUE_VERSION,
    create_signed_value,
    decode_signed_value,
    get_signature_key_version,
)

SECRET = "0123456789abcdef-secret"
NOW = 1_700_000_000.0
DAY = 86400


def clock() -> float:
    return NOW


def sign(value: str | bytes = "hello", *, version: int | None = None, at: float = NOW) -> bytes:
    return create_signed_value(SECRET, "session", value, version=version, clock=lambda: at)


def decode(value: str | bytes | None, **kwargs: object) -> bytes | None:
    kwargs.setdefault("clock", clock)
    return decode_signed_value(SECRET, "session", value, **kwargs)  # type: ignore[arg-type]


# -- the formats -------------------------------------------------------------------


def test_defaults_are_tornados() -> None:
    assert DEFAULT_SIGNED_VALUE_VERSION == tornado.web.DEFAULT_SIGNED_VALUE_VERSION == 2
    assert DEFAULT_SIGNED_VALUE_MIN_VERSION == tornado.web.DEFAULT_SIGNED_VALUE_MIN_VERSION == 1


def test_version_2_layout() -> None:
    value = sign("hello")
    assert value.startswith(b"2|1:0|10:1700000000|7:session|8:aGVsbG8=|")
    signature = value.rsplit(b"|", 1)[1]
    assert len(signature) == 64 and int(signature, 16) >= 0  # hex SHA-256


def test_version_1_layout() -> None:
    payload, timestamp, signature = sign("hello", version=1).split(b"|")
    assert (payload, timestamp) == (b"aGVsbG8=", b"1700000000")
    assert len(signature) == 40  # hex SHA-1


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("value", ["hello", "", "caf\u00e9 \u2603", b"\x00\xff|;,\r\n"])
def test_round_trip(version: int, value: str | bytes) -> None:
    expected = value.encode() if isinstance(value, str) else value
    assert decode(sign(value, version=version)) == expected


@pytest.mark.parametrize("version", [1, 2])
def test_same_bytes_as_tornado(version: int) -> None:
    """Byte for byte, so a cookie signed by the Tornado app before the port
    is still valid after it, and the other way round."""
    for value in ["hello", b"\x00\xfe", "x" * 3000]:
        ours = create_signed_value(SECRET, "n", value, version=version, clock=clock)
        theirs = tornado.web.create_signed_value(SECRET, "n", value, version=version, clock=clock)
        assert ours == theirs


@pytest.mark.parametrize("version", [1, 2])
def test_tornado_values_decode_here_and_back(version: int) -> None:
    theirs = tornado.web.create_signed_value(
        SECRET, "session", "from tornado", version=version, clock=clock
    )
    assert decode(theirs) == b"from tornado"
    ours = sign("from reactor", version=version)
    assert tornado.web.decode_signed_value(SECRET, "session", ours, clock=clock) == b"from reactor"


def test_str_and_bytes_secret_and_value_are_the_same() -> None:
    a = create_signed_value(SECRET, "n", "v", clock=clock)
    b = create_signed_value(SECRET.encode(), "n", b"v", clock=clock)
    assert a == b
    assert decode_signed_value(SECRET.encode(), "n", a.decode(), clock=clock) == b"v"


def test_unsupported_versions_are_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        create_signed_value(SECRET, "n", "v", version=3)
    with pytest.raises(ValueError, match="min_version"):
        decode_signed_value(SECRET, "n", sign(), min_version=3)
    # A value claiming a version we do not know reads as None.
    assert decode(b"3|" + sign()[2:]) is None


def test_min_version_refuses_version_1() -> None:
    old = sign(version=1)
    assert decode(old) == b"hello"
    assert decode(old, min_version=2) is None
    assert decode(sign(), min_version=2) == b"hello"


# -- key versions ---------------------------------------------------------------------

KEYS = {0: "old-key-0000000000", 1: "current-key-111111"}


def test_key_versions_rotate() -> None:
    old = create_signed_value({0: KEYS[0]}, "n", "v", key_version=0, clock=clock)
    new = create_signed_value(KEYS, "n", "v", key_version=1, clock=clock)
    assert get_signature_key_version(old) == 0
    assert get_signature_key_version(new) == 1
    assert decode_signed_value(KEYS, "n", old, clock=clock) == b"v"
    assert decode_signed_value(KEYS, "n", new, clock=clock) == b"v"
    # Retire key 0: its values stop reading; key 1's still do.
    retired = {1: KEYS[1]}
    assert decode_signed_value(retired, "n", old, clock=clock) is None
    assert decode_signed_value(retired, "n", new, clock=clock) == b"v"
    # The same bytes as Tornado's key-versioned values.
    theirs = tornado.web.create_signed_value(KEYS, "n", "v", key_version=1, clock=clock)
    assert new == theirs


def test_key_version_cannot_be_swapped() -> None:
    """The key version is under the signature: pointing a value at another
    key breaks it."""
    value = create_signed_value(KEYS, "n", "v", key_version=1, clock=clock)
    assert value.startswith(b"2|1:1|")
    assert decode_signed_value(KEYS, "n", b"2|1:0|" + value[6:], clock=clock) is None


def test_key_version_dict_misuse_is_an_error() -> None:
    with pytest.raises(ValueError, match="key_version"):
        create_signed_value(KEYS, "n", "v")
    with pytest.raises(ValueError, match="version 1"):
        create_signed_value(KEYS, "n", "v", version=1, key_version=1)


def test_version_1_value_against_a_key_dict_reads_as_none() -> None:
    """Tornado raises AssertionError (a 500) here; a client's cookie must
    not be able to do that."""
    assert decode_signed_value(KEYS, "session", sign(version=1), clock=clock) is None


def test_key_version_of_malformed_values() -> None:
    assert get_signature_key_version(sign(version=1)) is None
    assert get_signature_key_version(b"") is None
    assert get_signature_key_version("2|x:0|") is None
    assert get_signature_key_version("2|3:abc|") is None
    assert get_signature_key_version("\ud800") is None
    assert get_signature_key_version(sign().decode()) == 0


# -- time ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_expiry(version: int) -> None:
    value = sign(version=version, at=NOW - 10 * DAY)
    assert decode(value) == b"hello"  # default max_age_days=31
    assert decode(value, max_age_days=11) == b"hello"
    assert decode(value, max_age_days=9) is None
    assert decode(sign(version=version, at=NOW - 32 * DAY)) is None


@pytest.mark.parametrize("version", [1, 2])
def test_far_future_timestamps_are_refused(version: int) -> None:
    assert decode(sign(version=version, at=NOW + 30 * DAY)) == b"hello"  # clock skew
    assert decode(sign(version=version, at=NOW + 32 * DAY)) is None


@pytest.mark.parametrize(("value", "digit"), [(b"ab5", b"1"), (b"ab4", b"0")])
def test_version_1_digits_moved_into_the_timestamp_are_refused(value: bytes, digit: bytes) -> None:
    """Version 1 hashes name+payload+timestamp with no delimiter, so moving
    the payload's last character into the timestamp keeps the signature
    valid. A digit moved this way makes a timestamp far in the future, or
    one with a leading zero: both are refused."""
    payload, timestamp, signature = create_signed_value(
        SECRET, "n", value, version=1, clock=clock
    ).split(b"|")
    assert payload.endswith(digit)
    forged = b"|".join([payload[:-1], digit + timestamp, signature])
    tornado_agrees = tornado.web.decode_signed_value(SECRET, "n", forged, clock=clock)
    assert decode_signed_value(SECRET, "n", forged, clock=clock) is None is tornado_agrees


# -- forgeries and garbage --------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_wrong_secret_or_name_reads_as_none(version: int, caplog: pytest.LogCaptureFixture) -> None:
    value = sign(version=version)
    with caplog.at_level(logging.WARNING, logger="reactor.general"):
        assert decode_signed_value("another secret", "session", value, clock=clock) is None
    assert "signature" in caplog.text
    # Version 2 binds the name into the signed bytes; version 1 hashes it.
    assert decode_signed_value(SECRET, "admin", value, clock=clock) is None


def test_name_mismatch_with_a_valid_signature_reads_as_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A value signed for one cookie cannot be replayed as another."""
    value = create_signed_value(SECRET, "xsrf", "v", clock=clock)
    with caplog.at_level(logging.WARNING, logger="reactor.general"):
        assert decode_signed_value(SECRET, "session", value, clock=clock) is None
    assert "another name" in caplog.text


@pytest.mark.parametrize("version", [1, 2])
def test_tampered_payload_reads_as_none(version: int) -> None:
    value = bytearray(sign("user=alice", version=version))
    index = value.index(b"dXNlcj1hbGljZQ==")
    value[index + 2] ^= 0x01
    assert decode(bytes(value)) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        b"",
        b"|",
        b"||",
        b"2|",
        b"2||||||",
        b"2|1:0|",
        b"2|1:0|10:1700000000|7:session|8:aGVsbG8=",
        b"2|9999999999999999999999999:0|",
        b"2|" + b"9" * 5000 + b":0|",
        b"2|-1:0|",
        b"2|+1:0|",
        b"2| 1:0|",
        b"2|1_0:0|",
        b"2|1:0|10:1700000000|7:session|8:aGVsbG8=|" + b"0" * 64,
        b"2|1:0|10:1700000000|7:session|3:@@@|" + b"0" * 64,
        b"aGVsbG8=|1700000000",
        b"aGVsbG8=|1700000000|sig|extra",
        b"aGVsbG8=|-1700000000|" + b"0" * 40,
        "2|1:0|\ud800",
        "caf\u00e9|\u2603|x",
        b"\x00" * 100,
    ],
)
def test_malformed_values_read_as_none(value: str | bytes | None) -> None:
    assert decode(value) is None


@given(st.binary(max_size=300))
def test_any_bytes_read_as_none_without_raising(value: bytes) -> None:
    assert decode(value) is None
    assert decode_signed_value(KEYS, "session", value, clock=clock) is None
    key_version = get_signature_key_version(value)
    assert key_version is None or key_version >= 0


@given(st.text(max_size=200))
def test_any_text_reads_as_none_without_raising(value: str) -> None:
    assert decode(value) is None


@given(st.binary(max_size=40), st.integers(min_value=0, max_value=10_000), st.sampled_from([1, 2]))
def test_signature_covers_every_byte(payload: bytes, position: int, version: int) -> None:
    value = bytearray(sign(payload, version=version))
    value[position % len(value)] ^= 0x20
    assert decode(bytes(value)) is None


@pytest.mark.parametrize(
    "value",
    [
        b"2|" + b"1:" * 400_000,  # a million bytes of length prefixes
        b"2|1:0|" + b"9" * 1_000_000,
        b"2|" + b"0" * 1_000_000 + b":0|",
        b"|" * 1_000_000,
        b"A" * 1_000_000 + b"|1700000000|" + b"0" * 40,
        b"2|1:0|10:1700000000|7:session|999999:" + b"A" * 1_000_000,
    ],
    ids=["prefixes", "digits", "zeros", "bars", "v1-payload", "v2-payload"],
)
def test_huge_malformed_values_cost_linear_time(value: bytes) -> None:
    """A megabyte of hostile framing reads as None. Decoding is one pass:
    a quadratic parser would take hours on these, not exceed the timeout by
    a little, so no timing is asserted."""
    for _ in range(20):
        assert decode(value) is None
        assert get_signature_key_version(value) is None
