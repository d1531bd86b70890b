"""The web layer against a hostile client, through real HTTP on every backend.

Each test replays an input found in a review to make the server misbehave
(forge a log line, log a traceback at will, ...) and checks that it now
gets a clear 4xx answer and a log that says what happened and no more.

Every test checks the log: nothing at ERROR and no traceback from reactor's
loggers (the ``reactor_log`` fixture).
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from reactor import httputil, web
from reactor.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse
from tests.util import LogRecords

pytestmark = pytest.mark.usefixtures("reactor_log")  # no ERROR logged (conftest)

CLIENT_TIMEOUT = 4.0
FORGED = "WARNING:reactor.access:200 GET /forged (10.0.0.1) 0.10ms"
"""A log line a client would like to see written in the server's log."""


class QueryCount(web.RequestHandler):
    def get(self) -> None:
        self.write({"fields": len(self.request.query_arguments)})


class QueryArgument(web.RequestHandler):
    async def get(self) -> None:
        self.write({"a": self.get_argument("a")})


class BodySize(web.RequestHandler):
    def post(self) -> None:
        self.write({"size": len(self.request.body)})


@web.stream_request_body
class StreamedSize(web.RequestHandler):
    size = 0

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)

    def post(self) -> None:
        self.write({"size": self.size})


class EchoError(web.RequestHandler):
    def get(self) -> None:
        # A common pattern: the client's argument in the log message.
        raise web.HTTPError(400, "bad value %s", self.get_argument("v"))


@pytest.fixture
def app(tmp_path: Path) -> web.Application:
    root = tmp_path / "static"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "index.html").write_bytes(b"index")
    return web.Application(
        [
            (r"/error", EchoError),
            (r"/size", BodySize),
            (r"/query-count", QueryCount),
            (r"/query-argument", QueryArgument),
            (r"/streamed-size", StreamedSize),
            (r"/static/(.*)", web.StaticFileHandler, {"path": str(root)}),
            (r"/go/(.*)", web.RedirectHandler, {"url": "/to/{0}"}),
        ]
    )


MAX_BODY = 1024 * 1024


@pytest.fixture
def http_server_options() -> dict[str, Any]:
    return {"decompress_request": True, "max_body_size": MAX_BODY}


async def fetch(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    kwargs.setdefault("request_timeout", CLIENT_TIMEOUT)
    kwargs.setdefault("follow_redirects", False)
    kwargs.setdefault("raise_error", False)
    return await client.fetch(url, **kwargs)


def _lines(records: LogRecords) -> list[str]:
    """The log lines the records would write, each record one line or more."""
    lines = []
    for record in records.records:
        if record.name.startswith("reactor") and record.levelno >= logging.INFO:
            lines.extend(record.getMessage().splitlines())
    return lines


# -- log injection: a CR or LF of the client's in a log message -------------------------


@pytest.mark.parametrize(
    "path",
    [
        # A path outside the root: its 403 log names the decoded path.
        "/static/%2e%2e/x%0a" + FORGED.replace(" ", "%20"),
        "/static/%2e%2e/x%0d%0a" + FORGED.replace(" ", "%20"),
        # A NUL: the 404 log names the decoded path.
        "/static/x%0a" + FORGED.replace(" ", "%20") + "%00",
    ],
)
async def test_static_path_cannot_forge_a_log_line(
    http_client: AsyncHTTPClient, base_url: str, reactor_log: LogRecords, path: str
) -> None:
    response = await fetch(http_client, base_url + path)
    assert response.code in (403, 404)
    lines = _lines(reactor_log)
    assert not [line for line in lines if line.startswith(FORGED)], lines
    # The refusal is still logged, with the newline shown as an escape.
    assert any("\\n" + FORGED in line for line in reactor_log.warnings()), lines


async def test_argument_in_an_http_error_message_cannot_forge_a_log_line(
    http_client: AsyncHTTPClient, base_url: str, reactor_log: LogRecords
) -> None:
    # get_argument keeps CR and LF (form fields may be multi-line).
    response = await fetch(http_client, f"{base_url}/error?v=1%0d%0a{FORGED.replace(' ', '+')}")
    assert response.code == 400
    assert not [line for line in _lines(reactor_log) if line.startswith(FORGED)]
    assert any(f"bad value 1\\r\\n{FORGED}" in line for line in reactor_log.warnings())


@pytest.mark.parametrize(
    ("sent", "logged"),
    [
        ("%1b%5b2J", "\\x1b[2J"),  # ESC: a terminal escape (clear the screen)
        ("%c2%9b2J", "\\x9b2J"),  # U+009B: CSI, the same as a C1 control
        ("%c2%85", "\\x85"),  # NEL: a line break for str.splitlines
        ("%e2%80%a8", "\\u2028"),  # LINE SEPARATOR
    ],
)
async def test_terminal_escapes_and_unicode_line_breaks_are_logged_as_escapes(
    http_client: AsyncHTTPClient, base_url: str, reactor_log: LogRecords, sent: str, logged: str
) -> None:
    # A path group is not cleaned as get_argument's values are.
    response = await fetch(http_client, f"{base_url}/static/%2e%2e/a{sent}b")
    assert response.code == 403
    (line,) = [w for w in reactor_log.warnings() if "not in root" in w]
    assert line.endswith(f"../a{logged}b is not in root static directory")
    assert len(line.splitlines()) == 1


# -- RedirectHandler: a path group that cannot go in a Location header ----------------


@pytest.mark.parametrize("group", ["%0d%0aSet-Cookie:%20a=b", "%09/evil.example", "a%00b", "%7f"])
async def test_redirect_handler_refuses_a_control_character_with_400(
    http_client: AsyncHTTPClient, base_url: str, reactor_log: LogRecords, group: str
) -> None:
    # Before: the Location header's check raised ValueError: a 500 and a
    # traceback at ERROR for every such request a client cared to send.
    response = await fetch(http_client, f"{base_url}/go/{group}")
    assert response.code == 400
    assert response.headers.get("Location") is None
    assert "Set-Cookie" not in response.headers
    assert any("/go/" in line for line in reactor_log.warnings())


async def test_redirect_handler_still_redirects(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, f"{base_url}/go/a%20b?x=1")
    assert response.code == 301
    assert response.headers["Location"] == "/to/a b?x=1"
    with pytest.raises(HTTPClientError):
        await http_client.fetch(f"{base_url}/go/%0a", request_timeout=CLIENT_TIMEOUT)


# -- decompress_request: a gzip bomb -------------------------------------------------


@pytest.mark.parametrize("path", ["/size", "/streamed-size"])
async def test_a_gzip_bomb_is_held_to_max_body_size(
    http_client: AsyncHTTPClient, base_url: str, reactor_log: LogRecords, path: str
) -> None:
    # 16 MiB of zeros is 16 KiB of gzip: far under max_body_size as sent.
    # Before: the server decompressed and buffered all of it (a 300 KB
    # request made it hold 300 MiB), whatever max_body_size said.
    bomb = gzip.compress(b"\0" * (16 * MAX_BODY))
    assert len(bomb) < MAX_BODY // 10
    response = await fetch(
        http_client,
        base_url + path,
        method="POST",
        body=bomb,
        headers={"Content-Encoding": "gzip"},
    )
    assert response.code == 413
    # A gzip body that is within the limit once decompressed is served.
    body = b"x" * (MAX_BODY // 2)
    response = await fetch(
        http_client,
        base_url + path,
        method="POST",
        body=gzip.compress(body),
        headers={"Content-Encoding": "gzip"},
    )
    assert response.code == 200
    assert json.loads(response.body) == {"size": len(body)}


# -- a query string of too many fields ------------------------------------------------


@pytest.mark.parametrize("path", ["/query-count", "/query-argument"])
async def test_a_query_string_over_max_arguments_is_a_400(
    http_client: AsyncHTTPClient, base_url: str, reactor_log: LogRecords, path: str
) -> None:
    # Before: the query string is parsed when the handler first reads it,
    # and its HTTPInputError (over urlencoded.max_arguments, 1000) was a 500
    # with a traceback at ERROR. Tornado refuses it with 400.
    limit = httputil.ParseBodyConfig().urlencoded.max_arguments
    query = "&".join(f"a={i}" for i in range(limit + 1))
    response = await fetch(http_client, f"{base_url}{path}?{query}")
    assert response.code == 400
    assert any("Max number of fields" in line for line in reactor_log.warnings())
    # At the limit, served.
    query = "&".join(f"a={i}" for i in range(limit))
    response = await fetch(http_client, f"{base_url}{path}?{query}")
    assert response.code == 200
