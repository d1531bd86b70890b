"""Tornado 6.6 names in the core modules that a ported program calls:
``gen.Multi``, ``gen.with_timeout(message=)``, ``gen.Runner.handle_exception``,
``concurrent.DummyExecutor``, ``HTTPServerRequest.get_ssl_certificate``,
``AsyncHTTPClient.fetch_impl``, ``httpclient.main``."""

from __future__ import annotations

import contextvars
import datetime
import functools
import io
import ssl
import subprocess
import sys
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from reactor import gen
from reactor.concurrent import DummyExecutor, Future, dummy_executor
from reactor.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from reactor.ioloop import IOLoop
from reactor.netutil import bind_sockets
from reactor.testing.tls import TLSCertificate


async def test_gen_multi_is_multi(io_loop: IOLoop) -> None:
    assert gen.Multi is gen.multi
    assert await gen.Multi([gen.sleep(0), gen.maybe_future(2)]) == [None, 2]


async def test_with_timeout_message(io_loop: IOLoop) -> None:
    never: Future[None] = Future()
    with pytest.raises(gen.TimeoutError, match=r"^no answer from the database$"):
        await gen.with_timeout(
            datetime.timedelta(seconds=0.01), never, message="no answer from the database"
        )
    calls = []

    def describe() -> str:
        calls.append(1)
        return "made late"

    with pytest.raises(gen.TimeoutError, match=r"^made late$"):
        await gen.with_timeout(datetime.timedelta(seconds=0.01), never, message=describe)
    assert calls == [1]
    # Not called when the future wins.
    assert (
        await gen.with_timeout(datetime.timedelta(seconds=5), gen.sleep(0), message=describe)
        is None
    )
    assert calls == [1]
    with pytest.raises(gen.TimeoutError, match=r"^Timeout$"):
        await gen.with_timeout(datetime.timedelta(seconds=0.01), never)


async def test_runner_handle_exception_throws_into_the_generator(io_loop: IOLoop) -> None:
    pending: Future[None] = Future()

    def body() -> Generator[Any, Any, str]:
        try:
            yield pending
        except ValueError as e:
            return f"caught {e}"
        return "not reached"

    generator = body()
    result: Future[str] = Future()
    runner = gen.Runner(contextvars.copy_context().run, generator, result, next(generator))
    assert not result.done()
    error = ValueError("boom")
    assert runner.handle_exception(ValueError, error, error.__traceback__)
    assert result.result() == "caught boom"
    # Finished: nothing more to throw into.
    assert not runner.handle_exception(ValueError, error, None)


def test_dummy_executor_runs_the_job_at_once_in_the_callers_thread() -> None:
    assert isinstance(dummy_executor, DummyExecutor)
    threads = []
    future = dummy_executor.submit(lambda x: threads.append(threading.get_ident()) or x * 2, 21)
    assert future.done() and future.result() == 42
    assert threads == [threading.get_ident()]

    def fail() -> None:
        raise KeyError("k")

    failed = dummy_executor.submit(fail)
    assert isinstance(failed.exception(), KeyError)


async def test_dummy_executor_serves_run_in_executor(io_loop: IOLoop) -> None:
    assert await io_loop.run_in_executor(DummyExecutor(), sum, [1, 2, 3]) == 6


def _client_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for TLS client authentication."""
    cryptography = pytest.importorskip("cryptography", reason="cryptography makes the certificate")
    del cryptography
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reactor test client")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "client.pem", directory / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_get_ssl_certificate(
    io_loop: IOLoop, tls_certificate: TLSCertificate, tmp_path: Path
) -> None:
    cert_file, key_file = _client_certificate(tmp_path)
    seen: list[Any] = []

    def handle(request: HTTPServerRequest) -> None:
        seen.append((request.get_ssl_certificate(), request.get_ssl_certificate(True)))
        assert request.connection is not None
        request.connection.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"), HTTPHeaders({"Content-Length": "0"})
        )
        request.connection.finish()

    server_context = tls_certificate.server_context()
    server_context.verify_mode = ssl.CERT_OPTIONAL
    server_context.load_verify_locations(cert_file)
    tls_server, plain_server = HTTPServer(handle, ssl_options=server_context), HTTPServer(handle)
    [tls_sock], [plain_sock] = bind_sockets(0, "127.0.0.1"), bind_sockets(0, "127.0.0.1")
    tls_server.add_sockets([tls_sock])
    plain_server.add_sockets([plain_sock])
    client = AsyncHTTPClient(force_instance=True)
    try:
        with_cert = tls_certificate.client_context()
        with_cert.load_cert_chain(cert_file, key_file)
        tls_url = f"https://localhost:{tls_sock.getsockname()[1]}/"
        await client.fetch(tls_url, ssl_options=with_cert)
        await client.fetch(tls_url, ssl_options=tls_certificate.client_context())
        await client.fetch(f"http://127.0.0.1:{plain_sock.getsockname()[1]}/")
    finally:
        client.close()
        for server in (tls_server, plain_server):
            server.stop()
            await server.close_all_connections()
    (as_dict, as_der), without, plain = seen
    assert dict(x[0] for x in as_dict["subject"])["commonName"] == "reactor test client"
    assert ssl.DER_cert_to_PEM_cert(as_der).strip() == cert_file.read_text().strip()
    assert without == (None, None)
    assert plain == (None, None)


class CannedClient(AsyncHTTPClient):
    """A Tornado-style test double: answers every request from a dict."""

    def fetch_impl(self, request: HTTPRequest, callback: Any) -> None:
        code, body = {"/ok": (200, b"canned"), "/missing": (404, b"")}[urlsplit(request.url).path]
        callback(HTTPResponse(request, code, buffer=io.BytesIO(body)))


async def test_a_subclass_that_overrides_fetch_impl_answers_every_fetch(io_loop: IOLoop) -> None:
    client = CannedClient(force_instance=True, defaults={"user_agent": "canned-test"})
    try:
        response = await client.fetch("http://unresolvable.invalid/ok")
        assert (response.code, response.body) == (200, b"canned")
        assert response.request.user_agent == "canned-test"  # the defaults were applied first
        with pytest.raises(HTTPClientError) as raised:
            await client.fetch("http://unresolvable.invalid/missing")
        assert raised.value.code == 404
        response = await client.fetch("http://unresolvable.invalid/missing", raise_error=False)
        assert response.code == 404
    finally:
        client.close()


async def test_fetch_impl_reports_every_outcome_as_a_response(io_loop: IOLoop) -> None:
    def handle(request: HTTPServerRequest) -> None:
        assert request.connection is not None
        code = 200 if request.path == "/ok" else 404
        request.connection.write_headers(
            ResponseStartLine("HTTP/1.1", code, "X"), HTTPHeaders({"Content-Length": "2"}), b"hi"
        )
        request.connection.finish()

    server = HTTPServer(handle)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    [closed] = bind_sockets(0, "127.0.0.1")
    closed_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    client = AsyncHTTPClient(force_instance=True)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        responses: list[HTTPResponse] = []
        for url in (f"{base}/ok", f"{base}/nope", f"http://127.0.0.1:{closed_port}/"):
            done: Future[HTTPResponse] = Future()
            client.fetch_impl(HTTPRequest(url), done.set_result)
            responses.append(await done)
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()
    ok, missing, refused = responses
    assert (ok.code, ok.body, ok.error) == (200, b"hi", None)
    assert missing.code == 404 and isinstance(missing.error, HTTPClientError)
    assert refused.code == 599 and isinstance(refused.error, OSError)
    assert HTTPResponse.error is None  # Tornado's class attribute


async def test_httpclient_main_prints_what_it_fetched(io_loop: IOLoop) -> None:
    def handle(request: HTTPServerRequest) -> None:
        assert request.connection is not None
        request.connection.write_headers(
            ResponseStartLine("HTTP/1.1", 200, "OK"),
            HTTPHeaders({"Content-Length": "6", "X-Seen": request.path}),
            b"hello\n",
        )
        request.connection.finish()

    server = HTTPServer(handle)
    [sock] = bind_sockets(0, "127.0.0.1")
    server.add_sockets([sock])
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/page"
    try:
        done = await io_loop.run_in_executor(
            None,
            functools.partial(
                subprocess.run,
                [sys.executable, "-m", "reactor.httpclient", "--print_headers", url],
                capture_output=True,
                timeout=30,
            ),
        )
    finally:
        server.stop()
        await server.close_all_connections()
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "X-Seen: /page" in out
    assert out.rstrip().endswith("hello")
