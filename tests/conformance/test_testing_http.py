"""reactor.testing's HTTP parts on every backend: AsyncHTTPTestCase,
AsyncHTTPSTestCase and the plugin's http_server / http_client fixtures."""

from __future__ import annotations

import unittest
from typing import Any

import pytest

from reactor.httpclient import AsyncHTTPClient, HTTPClientError
from reactor.httpserver import HTTPServer
from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from reactor.ioloop import IOLoop
from reactor.testing import AsyncHTTPSTestCase, AsyncHTTPTestCase, gen_test


def hello_app(request: HTTPServerRequest) -> None:
    """Hello on /, the request's protocol on /protocol, 404 elsewhere."""
    if request.path == "/":
        code, body = 200, b"Hello world!"
    elif request.path == "/protocol":
        code, body = 200, request.protocol.encode()
    else:
        code, body = 404, b"no such page"
    assert request.connection is not None
    request.connection.write_headers(
        ResponseStartLine("HTTP/1.1", code, "OK" if code == 200 else "Not Found"),
        HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    request.connection.finish()


class _HTTPCases(AsyncHTTPTestCase):
    __test__ = False  # run by test_async_http_test_case, once per backend

    def get_app(self) -> Any:
        return hello_app

    def test_fetch(self) -> None:
        response = self.fetch("/")
        assert response.code == 200
        assert response.body == b"Hello world!"

    def test_fetch_returns_errors(self) -> None:
        assert self.fetch("/missing").code == 404

    def test_fetch_can_raise(self) -> None:
        with pytest.raises(HTTPClientError):
            self.fetch("/missing", raise_error=True)

    def test_get_url(self) -> None:
        assert self.get_url("/x") == f"http://127.0.0.1:{self.get_http_port()}/x"
        assert self.fetch(self.get_url("/protocol")).body == b"http"

    @gen_test
    async def test_client_in_gen_test(self) -> None:
        response = await self.http_client.fetch(self.get_url("/"))
        assert response.body == b"Hello world!"

    def test_fails_on_wrong_body(self) -> None:
        assert self.fetch("/").body == b"something else"


class _HTTPSCases(AsyncHTTPSTestCase):
    __test__ = False

    def get_app(self) -> Any:
        return hello_app

    def test_fetch_over_tls(self) -> None:
        assert self.get_url("/").startswith("https://")
        response = self.fetch("/protocol")
        assert response.code == 200
        assert response.body == b"https"


def _run(case: type[unittest.TestCase], reactor_backend: Any) -> unittest.TestResult:
    previous = IOLoop._configured
    IOLoop.configure(reactor_backend)
    try:
        result = unittest.TestResult()
        unittest.defaultTestLoader.loadTestsFromTestCase(case).run(result)
    finally:
        IOLoop.configure(previous)
    return result


def test_async_http_test_case(reactor_backend: Any) -> None:
    result = _run(_HTTPCases, reactor_backend)
    failed = {test.id().rsplit(".", 1)[1]: text for test, text in result.failures + result.errors}
    assert result.testsRun == 6
    assert set(failed) == {"test_fails_on_wrong_body"}, failed
    assert "something else" in failed["test_fails_on_wrong_body"]


def test_async_https_test_case(reactor_backend: Any) -> None:
    result = _run(_HTTPSCases, reactor_backend)
    assert result.testsRun == 1
    assert not result.failures and not result.errors, result.failures + result.errors


@pytest.fixture
def app() -> Any:
    return hello_app


async def test_http_fixtures(
    http_server: HTTPServer, http_client: AsyncHTTPClient, base_url: str, http_port: int
) -> None:
    assert base_url == f"http://127.0.0.1:{http_port}"
    response = await http_client.fetch(base_url + "/")
    assert response.body == b"Hello world!"
    response = await http_client.fetch(base_url + "/missing", raise_error=False)
    assert response.code == 404


@pytest.fixture
def http_server_options() -> dict[str, Any]:
    return {"max_header_size": 512}


async def test_http_server_options_fixture(
    http_server: HTTPServer, http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await http_client.fetch(
        base_url + "/", headers={"X-Big": "a" * 1000}, raise_error=False
    )
    assert response.code == 431
