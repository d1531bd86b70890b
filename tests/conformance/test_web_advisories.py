"""Tornado's web-layer advisories, each replayed against reactor through real
HTTP on every backend: what a client that crafts its headers or body to cost
the server can make it do, and that the answer is a clean response and a
bounded log.

- CVE-2024-52804: a Cookie header whose backslashes and quotes took Tornado
  (through http.cookies) quadratic time to unquote.
- CVE-2025-47287: a multipart/form-data body of many malformed parts, each
  logged by Tornado 6.4: a few bytes sent per log line written.

No timing is asserted: the hostile inputs are sized so that a quadratic
parser would take minutes where a linear one takes milliseconds, and every
client waits at most ``CLIENT_TIMEOUT`` seconds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from reactor import web
from reactor.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse
from reactor.httputil import parse_cookie

CLIENT_TIMEOUT = 4.0
# Under the server's default 64 KiB limit for the request head.
HEADER_BYTES = 60_000
MANY_COOKIES = 6_800  # "c6799=v; " and shorter: just over HEADER_BYTES


class Cookies(web.RequestHandler):
    def get(self) -> None:
        value = self.get_cookie("a")
        self.write({"cookies": len(self.cookies), "a": None if value is None else len(value)})


class Upload(web.RequestHandler):
    def post(self) -> None:
        self.write({"fields": len(self.request.body_arguments), "files": len(self.request.files)})


@pytest.fixture
def app() -> web.Application:
    return web.Application([(r"/cookies", Cookies), (r"/upload", Upload)])


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def reactor_log() -> Iterator[list[logging.LogRecord]]:
    """Every record reactor's loggers write during the test, DEBUG and up."""
    logger = logging.getLogger("reactor")
    handler = _Records()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


async def fetch(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    kwargs.setdefault("request_timeout", CLIENT_TIMEOUT)
    return await client.fetch(url, **kwargs)


# -- CVE-2024-52804: the Cookie header ---------------------------------------------------


HOSTILE_COOKIES = {
    # One quoted value of backslash pairs: each unescapes to one backslash.
    "backslashes": 'a="' + "\\\\" * (HEADER_BYTES // 2) + '"',
    # Escaped quotes, the pattern of the advisory's proof of concept.
    "escaped-quotes": 'a="' + '\\"' * (HEADER_BYTES // 2) + '"',
    # Octal escapes, three digits each.
    "octal": 'a="' + "\\012" * (HEADER_BYTES // 4) + '"',
    # An unterminated quote followed by backslashes.
    "unterminated": 'a="' + "\\" * HEADER_BYTES,
    # Bare quotes and separators.
    "quotes": '"' * HEADER_BYTES,
    "semicolons": "a=1" + ";" * HEADER_BYTES,
    # Thousands of distinct small cookies.
    "many": "; ".join(f"c{i}=v" for i in range(MANY_COOKIES)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_COOKIES))
async def test_hostile_cookie_header_parses_in_linear_time(
    http_client: AsyncHTTPClient, base_url: str, name: str
) -> None:
    header = HOSTILE_COOKIES[name]
    assert len(header) >= HEADER_BYTES
    response = await fetch(http_client, f"{base_url}/cookies", headers={"Cookie": header})
    answer = json.loads(response.body)
    expected = parse_cookie(header)
    assert answer["a"] == (len(expected["a"]) if "a" in expected else None)
    if name == "backslashes":
        assert answer["a"] == HEADER_BYTES // 2
    if name == "many":
        assert answer["cookies"] == MANY_COOKIES


ODD_COOKIES = [
    "",
    ";",
    "=",
    "==;==",
    "a",
    "a=",
    '"',
    'a="',
    'a="unterminated',
    "a=\\",
    "a=1; a=2; a=3",
    "\u00e9=\u00ff; a=\u00e9",  # obs-text, read as latin-1
    "a=1;;;; ;b=2",
    "$Version=1; a=1; $Path=/",
    "expires=1; path=2; a=1",  # reserved names as cookie names
    "a=\t1\t",
    "a=" + "=" * 1000,
    "a=1, b=2",
]


@pytest.mark.parametrize("header", ODD_COOKIES)
async def test_odd_cookie_headers_are_read_not_crashed_on(
    http_client: AsyncHTTPClient, base_url: str, header: str
) -> None:
    response = await fetch(http_client, f"{base_url}/cookies", headers={"Cookie": header})
    answer = json.loads(response.body)
    expected = parse_cookie(header)
    assert answer["a"] == (len(expected["a"]) if "a" in expected else None)


def test_parse_cookie_on_a_quarter_megabyte() -> None:
    """Four times the header limit, parsed directly (no loop needed): a
    quadratic unquoting would take hours here."""
    for pattern, unquoted in [("\\\\", "\\"), ('\\"', '"'), ("\\012", "\n"), ("\\", None)]:
        count = 250_000 // len(pattern)
        value = parse_cookie('a="' + pattern * count + '"')["a"]
        # A lone "\\" escapes the next one: 250,000 of them are 125,000 pairs.
        assert value == (unquoted * count if unquoted else "\\" * (count // 2))


async def test_cookie_header_over_the_limit_is_431(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    with pytest.raises(HTTPClientError) as info:
        await fetch(http_client, f"{base_url}/cookies", headers={"Cookie": "a=" + "\\" * 70_000})
    assert info.value.code == 431


# -- CVE-2025-47287: malformed multipart bodies ---------------------------------------------


def multipart(parts: list[bytes], boundary: bytes = b"B0undary") -> tuple[bytes, str]:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + b"--" + boundary + b"--\r\n", f"multipart/form-data; boundary={boundary.decode()}"


GOOD_PART = b'Content-Disposition: form-data; name="ok"\r\n\r\nvalue'
BAD_PARTS = {
    "no-disposition": b"Content-Type: text/plain\r\n\r\nx",
    "no-name": b"Content-Disposition: form-data\r\n\r\nx",
    "not-form-data": b'Content-Disposition: attachment; name="x"\r\n\r\nx',
    "no-blank-line": b'Content-Disposition: form-data; name="x"',
    "bad-header": b"Content-Disposition form-data\r\n\r\nx",
}


@pytest.mark.parametrize("kind", sorted(BAD_PARTS))
async def test_many_bad_parts_are_one_400_and_one_log_line(
    http_client: AsyncHTTPClient,
    base_url: str,
    reactor_log: list[logging.LogRecord],
    kind: str,
) -> None:
    """Ten thousand malformed parts after a good one: the first bad part
    ends the parse with a 400 naming what is wrong, the handler never runs
    with half the fields, and the request costs one log line about it."""
    body, content_type = multipart([GOOD_PART] + [BAD_PARTS[kind]] * 10_000)
    with pytest.raises(HTTPClientError) as info:
        await fetch(
            http_client,
            f"{base_url}/upload",
            method="POST",
            body=body,
            headers={"Content-Type": content_type},
        )
    assert info.value.code == 400
    about_it = [r for r in reactor_log if "multipart" in r.getMessage()]
    assert len(about_it) == 1, [r.getMessage() for r in about_it]
    assert len(reactor_log) <= 2, [r.getMessage() for r in reactor_log]  # and an access log line
    assert all(len(r.getMessage()) < 500 for r in reactor_log)


async def test_bad_multipart_on_keep_alive_leaves_the_server_serving(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    body, content_type = multipart([BAD_PARTS["no-name"]] * 100)
    for _ in range(3):
        with pytest.raises(HTTPClientError) as info:
            await fetch(
                http_client,
                f"{base_url}/upload",
                method="POST",
                body=body,
                headers={"Content-Type": content_type},
            )
        assert info.value.code == 400
    good, content_type = multipart([GOOD_PART] * 3)
    response = await fetch(
        http_client,
        f"{base_url}/upload",
        method="POST",
        body=good,
        headers={"Content-Type": content_type},
    )
    assert response.body == b'{"fields": 1, "files": 0}'
