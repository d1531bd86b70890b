"""StaticFileHandler through real HTTP, on every backend.

Files are served from a fresh directory per test; beside it (outside the
root) sits ``secret.txt``, which no request may ever read. Clients are the
project's AsyncHTTPClient, ``http.client`` (in a thread of the loop's
executor, for request targets the async client would not send as written),
a raw IOStream that reads slowly, and ``curl``.

Every test checks the log: nothing at ERROR and no traceback from reactor's
loggers (a refused path is a 4xx with a warning, never a crash).
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import http.client
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reactor.httpclient import AsyncHTTPClient, HTTPResponse
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream
from reactor.locks import Event
from reactor.netutil import bind_sockets
from reactor.web import Application, RequestHandler, StaticFileHandler
from tests.util import LogRecords, run_curl

pytestmark = pytest.mark.usefixtures("reactor_log")  # no ERROR logged (conftest)

CLIENT_TIMEOUT = 4.0
"""Seconds a blocking client waits for the server before the test fails."""

SECRET = b"the secret outside the root\n"
TEXT = b"0123456789abcdefghij" * 5  # 100 bytes
BIG_SIZE = 10 * 1024 * 1024


@pytest.fixture(autouse=True)
def fresh_versions() -> Iterator[None]:
    """Versions are cached on the class: each test starts and ends with none."""
    StaticFileHandler.reset()
    yield
    StaticFileHandler.reset()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The static root: text files, a subdirectory with an index, and a secret beside it."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    static = tmp_path / "static"
    static.mkdir()
    (static / "a.txt").write_bytes(TEXT)
    (static / "style.css").write_bytes(b"body { color: red }\n")
    (static / "archive.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    (static / "blob.unknownext").write_bytes(b"?")
    (static / "empty.txt").write_bytes(b"")
    (static / "sub").mkdir()
    (static / "sub" / "index.html").write_bytes(b"<p>index</p>")
    (static / "sub" / "b.txt").write_bytes(b"in sub")
    return static


@pytest.fixture
def serve(io_loop: IOLoop) -> Iterator[Callable[[Application], int]]:
    """``serve(app) -> port``: an HTTPServer for ``app`` on 127.0.0.1, stopped after the test."""
    servers: list[HTTPServer] = []

    def start(app: Application) -> int:
        server = HTTPServer(app)
        [sock] = bind_sockets(0, "127.0.0.1")
        server.add_sockets([sock])
        servers.append(server)
        return int(sock.getsockname()[1])

    yield start
    for server in servers:
        server.stop()
        io_loop.run_sync(server.close_all_connections, timeout=CLIENT_TIMEOUT)


def blocking(io_loop: IOLoop, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a thread, while the loop keeps serving (await the result)."""
    return io_loop.run_in_executor(None, fn, *args)


def raw_get(
    port: int, target: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """``target`` sent exactly as written, with http.client: (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


async def fetch(
    client: AsyncHTTPClient, url: str, method: str = "GET", **headers: str
) -> HTTPResponse:
    return await client.fetch(
        url,
        method=method,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
        raise_error=False,
        follow_redirects=False,
        decompress_response=False,
    )


def sha512(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


@pytest.fixture
def app(root: Path) -> Application:
    class Page(RequestHandler):
        def get(self) -> None:
            self.write(self.static_url("a.txt"))

    return Application(
        [
            (r"/page", Page),
            (
                r"/index/(.*)",
                StaticFileHandler,
                {"path": str(root), "default_filename": "index.html"},
            ),
            (r"/(.*)", StaticFileHandler, {"path": str(root), "default_filename": "index.html"}),
        ],
        static_path=str(root),
    )


# -- serving a file ----------------------------------------------------------------


async def test_get_file(http_client: AsyncHTTPClient, base_url: str, root: Path) -> None:
    response = await fetch(http_client, base_url + "/static/a.txt")
    assert response.code == 200
    assert response.body == TEXT
    h = response.headers
    assert h["Content-Type"] == "text/plain"
    assert h["Content-Length"] == str(len(TEXT))
    assert h["Accept-Ranges"] == "bytes"
    assert h["Etag"] == f'"{sha512(TEXT)}"'
    modified = datetime.datetime.fromtimestamp(
        int((root / "a.txt").stat().st_mtime), datetime.timezone.utc
    )
    assert email.utils.parsedate_to_datetime(h["Last-Modified"]) == modified
    assert "Cache-Control" not in h and "Expires" not in h  # unversioned: browser's choice


async def test_head_has_the_headers_and_no_body(
    io_loop: IOLoop, http_server: Any, http_port: int
) -> None:
    status, headers, body = await blocking(io_loop, raw_get, http_port, "/static/a.txt", {}, "HEAD")
    assert status == 200 and body == b""
    assert headers["content-length"] == str(len(TEXT))
    assert headers["etag"] == f'"{sha512(TEXT)}"'


async def test_content_type(http_client: AsyncHTTPClient, base_url: str) -> None:
    for name, content_type in [
        ("style.css", "text/css"),
        ("archive.tar.gz", "application/gzip"),  # RFC 6713: no Content-Encoding
        ("blob.unknownext", "application/octet-stream"),
        ("sub/index.html", "text/html"),
    ]:
        response = await fetch(http_client, f"{base_url}/static/{name}")
        assert response.code == 200
        assert response.headers["Content-Type"] == content_type, name
        assert "Content-Encoding" not in response.headers


async def test_empty_file(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/static/empty.txt")
    assert response.code == 200 and response.body == b""
    assert response.headers["Content-Length"] == "0"


async def test_static_url_is_versioned_and_cached_for_long(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    page = await fetch(http_client, base_url + "/page")
    assert page.body.decode() == f"/static/a.txt?v={sha512(TEXT)}"
    response = await fetch(http_client, base_url + page.body.decode())
    assert response.code == 200 and response.body == TEXT
    max_age = StaticFileHandler.CACHE_MAX_AGE
    assert response.headers["Cache-Control"] == f"max-age={max_age}"
    expires = email.utils.parsedate_to_datetime(response.headers["Expires"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(days=3640) < expires - now <= datetime.timedelta(seconds=max_age)


async def test_post_is_405(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await http_client.fetch(
        base_url + "/static/a.txt", method="POST", body=b"x", raise_error=False
    )
    assert response.code == 405


# -- validators: 304 -----------------------------------------------------------------


async def test_if_none_match(http_client: AsyncHTTPClient, base_url: str) -> None:
    etag = f'"{sha512(TEXT)}"'
    url = base_url + "/static/a.txt"
    # If-None-Match compares weakly (RFC 9110 13.1.2); * matches any version.
    for if_none_match in (etag, "W/" + etag, f'"other", {etag}', "*"):
        response = await fetch(http_client, url, If_None_Match=if_none_match)
        assert response.code == 304, if_none_match
        assert response.body == b""
        assert response.headers["Etag"] == etag
    other = await fetch(http_client, url, If_None_Match='"other"')
    assert other.code == 200 and other.body == TEXT


async def test_if_modified_since(http_client: AsyncHTTPClient, base_url: str) -> None:
    first = await fetch(http_client, base_url + "/static/a.txt")
    last_modified = first.headers["Last-Modified"]
    same = await fetch(http_client, base_url + "/static/a.txt", If_Modified_Since=last_modified)
    assert same.code == 304 and same.body == b""
    earlier = email.utils.format_datetime(
        email.utils.parsedate_to_datetime(last_modified) - datetime.timedelta(seconds=1),
        usegmt=True,
    )
    older = await fetch(http_client, base_url + "/static/a.txt", If_Modified_Since=earlier)
    assert older.code == 200 and older.body == TEXT
    # Not an HTTP-date: ignored (RFC 9110 13.1.3).
    bad = await fetch(http_client, base_url + "/static/a.txt", If_Modified_Since="yesterday")
    assert bad.code == 200 and bad.body == TEXT


async def test_if_none_match_decides_over_if_modified_since(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    first = await fetch(http_client, base_url + "/static/a.txt")
    # RFC 9110 13.2.2: with If-None-Match present, If-Modified-Since is ignored.
    response = await fetch(
        http_client,
        base_url + "/static/a.txt",
        If_None_Match='"other"',
        If_Modified_Since=first.headers["Last-Modified"],
    )
    assert response.code == 200 and response.body == TEXT


# -- ranges: 206 and 416 -------------------------------------------------------------


async def test_range_206(http_client: AsyncHTTPClient, base_url: str) -> None:
    for range_header, start, end in [
        ("bytes=0-0", 0, 1),
        ("bytes=10-19", 10, 20),
        ("bytes=90-", 90, 100),
        ("bytes=90", 90, 100),  # no dash: an open range, as in Tornado
        ("bytes=-5", 95, 100),
        ("bytes=98-99999999999999999999999999", 98, 100),  # capped at the end
    ]:
        response = await fetch(http_client, base_url + "/static/a.txt", Range=range_header)
        assert response.code == 206, range_header
        assert response.body == TEXT[start:end]
        assert response.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(TEXT)}"
        assert response.headers["Content-Length"] == str(end - start)
        assert response.headers["Etag"] == f'"{sha512(TEXT)}"'  # the whole file's


async def test_range_ignored_is_200(http_client: AsyncHTTPClient, base_url: str) -> None:
    for range_header in [
        "bytes=0-",  # the whole file: 200, as Chrome needs for audio
        "bytes=0-99",
        "bytes=-100",
        "bytes=-99999999999999999999",
        "items=0-5",  # another unit: ignored (RFC 9110 14.2)
        "bytes=abc",
        "bytes=1-2,5-6",  # several ranges: the whole file, as Tornado
        "bytes=--1",
        "bytes=" + "1" * 3000 + "x-",
    ]:
        response = await fetch(http_client, base_url + "/static/a.txt", Range=range_header)
        assert response.code == 200, range_header
        assert response.body == TEXT
        assert "Content-Range" not in response.headers


async def test_range_416(
    http_client: AsyncHTTPClient, base_url: str, reactor_log: LogRecords
) -> None:
    for range_header in [
        "bytes=100-",
        "bytes=999999-",
        "bytes=5-2",
        "bytes=-0",
        "bytes=" + "9" * 3000 + "-",
    ]:
        response = await fetch(http_client, base_url + "/static/a.txt", Range=range_header)
        assert response.code == 416, range_header
        assert response.headers["Content-Range"] == f"bytes */{len(TEXT)}"
        assert TEXT not in response.body
    assert sum("416 GET /static/a.txt" in line for line in reactor_log.warnings()) == 5


async def test_range_on_empty_file_is_416(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/static/empty.txt", Range="bytes=0-")
    assert response.code == 416
    assert response.headers["Content-Range"] == "bytes */0"


async def test_head_range(io_loop: IOLoop, http_server: Any, http_port: int) -> None:
    status, headers, body = await blocking(
        io_loop, raw_get, http_port, "/static/a.txt", {"Range": "bytes=1-3"}, "HEAD"
    )
    assert status == 206 and body == b""
    assert headers["content-range"] == "bytes 1-3/100"
    assert headers["content-length"] == "3"


async def test_if_none_match_beats_range(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(
        http_client, base_url + "/static/a.txt", Range="bytes=1-3", If_None_Match="*"
    )
    assert response.code == 304


async def test_if_range(http_client: AsyncHTTPClient, base_url: str) -> None:
    first = await fetch(http_client, base_url + "/static/a.txt")
    etag, last_modified = first.headers["Etag"], first.headers["Last-Modified"]
    url = base_url + "/static/a.txt"
    # RFC 9110 13.1.5: the range only if the client's copy is this version.
    for if_range in (etag, last_modified):
        same = await fetch(http_client, url, Range="bytes=1-3", If_Range=if_range)
        assert same.code == 206 and same.body == TEXT[1:4]
    for if_range in ('"other"', "W/" + etag, "Mon, 01 Jan 2001 00:00:00 GMT", "garbage"):
        other = await fetch(http_client, url, Range="bytes=1-3", If_Range=if_range)
        assert other.code == 200 and other.body == TEXT


# -- paths that must never leave the root --------------------------------------------


TRAVERSALS = [
    ("/static/../secret.txt", 403),
    ("/static/%2e%2e/secret.txt", 403),
    ("/static/%2E%2E%2Fsecret.txt", 403),
    ("/static/..%2fsecret.txt", 403),
    ("/static/sub/..%2f..%2fsecret.txt", 403),
    ("/static//etc/passwd", 403),  # join() drops the root before an absolute path
    ("/static/%2fetc%2fpasswd", 403),
    ("/static/%2f%2fetc/passwd", 403),
    ("/..%2fsecret.txt", 403),
    ("//..%2fsecret.txt", 403),
    ("/static/..%5csecret.txt", 404),  # on POSIX a backslash is part of a name
    ("/static/..\\secret.txt", 404),
    ("/static/....//secret.txt", 404),
    ("/static/a.txt%00.png", 404),  # no file name holds a NUL
    ("/static/%00", 404),
]


async def test_traversal_is_refused(
    io_loop: IOLoop, http_server: Any, http_port: int, reactor_log: LogRecords
) -> None:
    for target, expected in TRAVERSALS:
        status, headers, body = await blocking(io_loop, raw_get, http_port, target)
        assert status == expected, (target, status, body)
        assert SECRET not in body and b"root:" not in body
        assert "location" not in headers
    warnings = reactor_log.warnings()
    for target, expected in TRAVERSALS:
        # The access log names each refusal.
        assert any(line.startswith(f"{expected} GET {target} ") for line in warnings), target


async def test_symlink_out_of_root_is_403(
    http_client: AsyncHTTPClient, base_url: str, root: Path
) -> None:
    (root / "link.txt").symlink_to(root.parent / "secret.txt")
    (root / "linkdir").symlink_to(root.parent)
    for path in ("/static/link.txt", "/static/linkdir/secret.txt", "/static/linkdir"):
        response = await fetch(http_client, base_url + path)
        assert response.code == 403, path
        assert SECRET not in response.body


async def test_default_filename_symlink_out_of_root_is_403(
    http_client: AsyncHTTPClient, base_url: str, root: Path
) -> None:
    (root / "trap").mkdir()
    (root / "trap" / "index.html").symlink_to(root.parent / "secret.txt")
    response = await fetch(http_client, base_url + "/index/trap/")
    assert response.code == 403 and SECRET not in response.body


async def test_static_url_outside_root_is_403(
    io_loop: IOLoop, root: Path, serve: Callable[[Application], int], cleanup: Any
) -> None:
    class Page(RequestHandler):
        def get(self) -> None:
            self.write(self.static_url("../secret.txt"))

    port = serve(Application([(r"/page", Page)], static_path=str(root)))
    client = cleanup(AsyncHTTPClient(force_instance=True))
    response = await fetch(client, f"http://127.0.0.1:{port}/page")
    assert response.code == 403
    assert sha512(SECRET) not in response.body.decode()
    assert StaticFileHandler._static_hashes == {}  # nothing outside was read


async def test_symlink_inside_root_is_served(
    http_client: AsyncHTTPClient, base_url: str, root: Path
) -> None:
    (root / "alias.txt").symlink_to(root / "a.txt")
    response = await fetch(http_client, base_url + "/static/alias.txt")
    assert response.code == 200 and response.body == TEXT


async def test_allowed_symlink_directory(
    io_loop: IOLoop, root: Path, tmp_path: Path, serve: Callable[[Application], int], cleanup: Any
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "s.txt").write_bytes(b"shared")
    (root / "s.txt").symlink_to(shared / "s.txt")
    (root / "secret-link.txt").symlink_to(tmp_path / "secret.txt")
    app = Application(
        [
            (
                r"/s/(.*)",
                StaticFileHandler,
                {"path": str(root), "allowed_symlink_directory": [str(root), str(shared)]},
            )
        ]
    )
    port = serve(app)
    client = cleanup(AsyncHTTPClient(force_instance=True))
    ok = await fetch(client, f"http://127.0.0.1:{port}/s/s.txt")
    assert ok.code == 200 and ok.body == b"shared"
    refused = await fetch(client, f"http://127.0.0.1:{port}/s/secret-link.txt")
    assert refused.code == 403 and SECRET not in refused.body
    escape = await fetch(client, f"http://127.0.0.1:{port}/s/..%2fshared%2fs.txt")
    assert escape.code == 403  # a wider symlink allowance lets no ../ through


async def test_missing_file_is_404(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, base_url + "/static/nope.txt")
    assert response.code == 404


async def test_fifo_is_403_without_blocking(
    http_client: AsyncHTTPClient, base_url: str, root: Path
) -> None:
    os.mkfifo(root / "pipe")
    response = await fetch(http_client, base_url + "/static/pipe")
    assert response.code == 403


async def test_directory(http_client: AsyncHTTPClient, base_url: str) -> None:
    # Without default_filename (the /static/ mount): a directory is not a file.
    plain = await fetch(http_client, base_url + "/static/sub/")
    assert plain.code == 403
    redirect = await fetch(http_client, base_url + "/index/sub")
    assert redirect.code == 301
    assert redirect.headers["Location"] == "/index/sub/"
    index = await fetch(http_client, base_url + "/index/sub/")
    assert index.code == 200 and index.body == b"<p>index</p>"


async def test_directory_redirect_stays_on_this_host(
    io_loop: IOLoop, http_server: Any, http_port: int, reactor_log: LogRecords
) -> None:
    # /\evil.example/..%2fsub is the directory sub; adding its slash would
    # answer Location: /\evil.example/..%2fsub/, which browsers read as
    # //evil.example/... (CVE-2023-28370).
    target = "/\\evil.example/..%2fsub"
    status, headers, _ = await blocking(io_loop, raw_get, http_port, target)
    assert status == 403 and "location" not in headers
    assert any("cannot redirect path with two initial slashes" in w for w in reactor_log.warnings())
    for target in ("//evil.example/..%2fsub", "/%2f/evil.example/..%2f..%2fsub"):
        status, headers, _ = await blocking(io_loop, raw_get, http_port, target)
        assert status == 403 and "location" not in headers, target
    status, headers, _ = await blocking(io_loop, raw_get, http_port, "/sub")
    assert status == 301 and headers["location"] == "/sub/"


async def test_static_prefix_double_slash_stays_on_this_host(
    io_loop: IOLoop, http_server: Any, http_port: int
) -> None:
    status, headers, _ = await blocking(io_loop, raw_get, http_port, "/static//evil.example/")
    assert status in (403, 404)
    assert "location" not in headers


# -- large files: streamed, never read whole -----------------------------------------


class _MeteredStatic(StaticFileHandler):
    """Records the most bytes the server's stream held queued after each chunk.

    The stream also refuses to queue more than 4 chunks (max_write_buffer_size),
    so a handler that wrote the file in one piece would fail the response.
    """

    peak = 0
    chunks = 0

    def prepare(self) -> None:
        assert self.request.connection is not None
        self.request.connection.stream.max_write_buffer_size = 4 * 64 * 1024  # type: ignore[attr-defined]

    def flush(self, include_footers: bool = False) -> Any:
        future = super().flush(include_footers)
        stream = self.request.connection.stream  # type: ignore[union-attr]
        type(self).peak = max(type(self).peak, stream._write_buffer_size)
        type(self).chunks += 1
        return future


async def test_large_file_is_streamed_to_a_slow_reader(
    io_loop: IOLoop, tmp_path: Path, serve: Callable[[Application], int], cleanup: Any
) -> None:
    big_root = tmp_path / "big"
    big_root.mkdir()
    block = os.urandom(64 * 1024 - 7)  # not aligned with the chunks
    with open(big_root / "big.bin", "wb") as f:
        for _ in range(BIG_SIZE // len(block)):
            f.write(block)
        f.write(block[: BIG_SIZE % len(block)])
    digest = hashlib.sha256((big_root / "big.bin").read_bytes()).hexdigest()
    _MeteredStatic.peak = _MeteredStatic.chunks = 0
    app = Application([(r"/(.*)", _MeteredStatic, {"path": str(big_root)})])
    port = serve(app)

    # A reader with a small receive buffer that takes 16 KiB at a time.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    stream = cleanup(IOStream(sock))
    await stream.connect(("127.0.0.1", port))
    await stream.write(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head = await stream.read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert f"Content-Length: {BIG_SIZE}".encode() in head
    hasher = hashlib.sha256()
    received = 0
    while received < BIG_SIZE:
        piece = await stream.read_bytes(min(16 * 1024, BIG_SIZE - received), partial=True)
        received += len(piece)
        hasher.update(piece)
    assert hasher.hexdigest() == digest
    assert _MeteredStatic.chunks >= BIG_SIZE // (64 * 1024)
    # The reader was slow enough for writes to queue (10 MiB is more than the
    # kernel's buffers hold), and they queued one chunk (plus the headers)
    # at a time, never the file.
    assert 0 < _MeteredStatic.peak <= 64 * 1024 + 4096, _MeteredStatic.peak


async def test_range_of_large_file(
    io_loop: IOLoop, tmp_path: Path, serve: Callable[[Application], int], cleanup: Any
) -> None:
    big_root = tmp_path / "big"
    big_root.mkdir()
    data = os.urandom(300 * 1024)
    (big_root / "b.bin").write_bytes(data)
    app = Application([(r"/(.*)", StaticFileHandler, {"path": str(big_root)})])
    port = serve(app)
    client = cleanup(AsyncHTTPClient(force_instance=True))
    start, end = 70_000, 250_001  # across several chunks, unaligned
    response = await fetch(client, f"http://127.0.0.1:{port}/b.bin", Range=f"bytes={start}-{end}")
    assert response.code == 206
    assert response.body == data[start : end + 1]


async def test_too_large_to_hash_has_no_etag(
    io_loop: IOLoop, tmp_path: Path, serve: Callable[[Application], int], cleanup: Any
) -> None:
    class Small(StaticFileHandler):
        MAX_VERSION_CONTENT_SIZE = 1000

    big_root = tmp_path / "big"
    big_root.mkdir()
    (big_root / "b.bin").write_bytes(b"x" * 1001)
    app = Application([(r"/(.*)", Small, {"path": str(big_root)})])
    port = serve(app)
    client = cleanup(AsyncHTTPClient(force_instance=True))
    response = await fetch(client, f"http://127.0.0.1:{port}/b.bin")
    assert response.code == 200 and response.body == b"x" * 1001
    assert "Etag" not in response.headers


# -- versions of a changing file -----------------------------------------------------


@pytest.mark.parametrize("hash_cache", [False, True])
async def test_changed_file_version(
    io_loop: IOLoop, root: Path, serve: Callable[[Application], int], cleanup: Any, hash_cache: bool
) -> None:
    class Page(RequestHandler):
        def get(self) -> None:
            self.write(self.static_url("a.txt"))

    app = Application([(r"/page", Page)], static_path=str(root), static_hash_cache=hash_cache)
    port = serve(app)
    client = cleanup(AsyncHTTPClient(force_instance=True))
    base = f"http://127.0.0.1:{port}"
    before = await fetch(client, base + "/static/a.txt")
    url_before = (await fetch(client, base + "/page")).body
    (root / "a.txt").write_bytes(b"new content")
    after = await fetch(client, base + "/static/a.txt")
    url_after = (await fetch(client, base + "/page")).body
    assert after.body == b"new content"
    if hash_cache:
        # Cached until reset(): the default, as in Tornado (debug turns it off).
        assert after.headers["Etag"] == before.headers["Etag"]
        assert url_after == url_before
    else:
        assert after.headers["Etag"] == f'"{sha512(b"new content")}"' != before.headers["Etag"]
        assert url_after.decode() == f"/static/a.txt?v={sha512(b'new content')}"


# -- curl ----------------------------------------------------------------------------


def curl(*args: str) -> tuple[int, dict[str, str], bytes]:
    """curl -i: (status, lower-cased headers, body)."""
    out, _ = run_curl("-i", *args)
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


async def test_curl_range_and_if_none_match(
    io_loop: IOLoop, http_server: Any, base_url: str, need_curl: str
) -> None:
    url = base_url + "/static/a.txt"
    status, headers, body = await blocking(io_loop, curl, "-r", "2-5", url)
    assert status == 206 and body == TEXT[2:6]
    assert headers["content-range"] == "bytes 2-5/100"
    etag = headers["etag"]
    status, headers, body = await blocking(io_loop, curl, "-H", f"If-None-Match: {etag}", url)
    assert status == 304 and body == b""
    status, _, body = await blocking(io_loop, curl, "-r", "500-", url)
    assert status == 416


# -- a client that leaves mid-file ---------------------------------------------------


class _ClosingStatic(StaticFileHandler):
    """Sets ``closed`` when the content generator of a response is closed."""

    closed: Event

    @classmethod
    def get_content(
        cls, abspath: str, start: int | None = None, end: int | None = None
    ) -> Iterator[bytes]:
        try:
            yield from super().get_content(abspath, start, end)
        finally:
            cls.closed.set()


async def test_client_leaving_mid_file_stops_the_response(
    io_loop: IOLoop, tmp_path: Path, serve: Callable[[Application], int], cleanup: Any
) -> None:
    big_root = tmp_path / "big"
    big_root.mkdir()
    (big_root / "big.bin").write_bytes(b"z" * (4 * 1024 * 1024))
    (big_root / "small.txt").write_bytes(b"after")
    _ClosingStatic.closed = Event()
    port = serve(Application([(r"/(.*)", _ClosingStatic, {"path": str(big_root)})]))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    stream = cleanup(IOStream(sock))
    await stream.connect(("127.0.0.1", port))
    await stream.write(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    await stream.read_until(b"\r\n\r\n")
    await stream.read_bytes(100_000)
    stream.close()
    # The server notices at its next write and closes the file; nothing is
    # logged as an error (the reactor_log fixture checks this).
    await _ClosingStatic.closed.wait(timeout=datetime.timedelta(seconds=CLIENT_TIMEOUT))
    client = cleanup(AsyncHTTPClient(force_instance=True))
    response = await fetch(client, f"http://127.0.0.1:{port}/small.txt")
    assert response.code == 200 and response.body == b"after"


async def test_subclass_with_its_own_get(
    io_loop: IOLoop, root: Path, serve: Callable[[Application], int], cleanup: Any
) -> None:
    class Listing(StaticFileHandler):
        def get(self, path: str, include_body: bool = True) -> None:
            self.write(f"listing of {path}")

    port = serve(Application([(r"/ls/(.*)", Listing, {"path": str(root)})]))
    client = cleanup(AsyncHTTPClient(force_instance=True))
    response = await fetch(client, f"http://127.0.0.1:{port}/ls/sub")
    assert response.code == 200 and response.body == b"listing of sub"
    # No file was validated: the Etag is the body's, as for any handler.
    etag = response.headers["Etag"]
    again = await fetch(client, f"http://127.0.0.1:{port}/ls/sub", If_None_Match=etag)
    assert again.code == 304


async def test_root_reached_through_a_symlink(
    io_loop: IOLoop, root: Path, tmp_path: Path, serve: Callable[[Application], int], cleanup: Any
) -> None:
    # A deploy's /srv/www -> /srv/releases/v1: files resolve below the link's
    # target, and are served; a link out of the target is still refused.
    linked = tmp_path / "www"
    linked.symlink_to(root)
    (root / "out.txt").symlink_to(tmp_path / "secret.txt")
    port = serve(Application([(r"/w/(.*)", StaticFileHandler, {"path": str(linked)})]))
    client = cleanup(AsyncHTTPClient(force_instance=True))
    ok = await fetch(client, f"http://127.0.0.1:{port}/w/a.txt")
    assert ok.code == 200 and ok.body == TEXT
    refused = await fetch(client, f"http://127.0.0.1:{port}/w/out.txt")
    assert refused.code == 403 and SECRET not in refused.body


async def test_version_cache_holds_only_files_that_exist(
    http_client: AsyncHTTPClient, base_url: str, root: Path
) -> None:
    (root / "alias.txt").symlink_to(root / "a.txt")
    spellings = ["a.txt", "./a.txt", "sub/../a.txt", "sub/./../a.txt", "alias.txt", ".//a.txt"]
    for spelling in spellings:
        response = await fetch(http_client, f"{base_url}/static/{spelling}")
        assert response.code == 200 and response.body == TEXT, spelling
    for i in range(20):
        response = await fetch(http_client, f"{base_url}/static/missing-{i}.txt")
        assert response.code == 404
    assert list(StaticFileHandler._static_hashes) == [str(root / "a.txt")]


class _GrowingStatic(StaticFileHandler):
    """Its content runs past the size it was stat'ed at, as a file appended to mid-send."""

    @classmethod
    def get_content(
        cls, abspath: str, start: int | None = None, end: int | None = None
    ) -> Iterator[bytes]:
        yield from super().get_content(abspath, start, end)
        yield b"appended after the stat"


async def test_file_growing_mid_send_is_cut_at_content_length(
    io_loop: IOLoop, root: Path, serve: Callable[[Application], int], cleanup: Any
) -> None:
    port = serve(Application([(r"/g/(.*)", _GrowingStatic, {"path": str(root)})]))
    client = cleanup(AsyncHTTPClient(force_instance=True))
    for _ in range(2):  # the connection stays in step for the next request
        response = await fetch(client, f"http://127.0.0.1:{port}/g/a.txt")
        assert response.code == 200 and response.body == TEXT
        ranged = await fetch(client, f"http://127.0.0.1:{port}/g/a.txt", Range="bytes=95-")
        assert ranged.code == 206 and ranged.body == TEXT[95:]
