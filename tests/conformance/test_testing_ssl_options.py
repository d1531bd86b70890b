"""AsyncHTTPSTestCase.default_ssl_options on every backend: Tornado's dict form
of the test certificate serves real HTTPS that the test's client verifies."""

from __future__ import annotations

import unittest
from typing import Any

from reactor.httputil import HTTPHeaders, HTTPServerRequest, ResponseStartLine
from reactor.ioloop import IOLoop
from reactor.testing import AsyncHTTPSTestCase


def protocol_app(request: HTTPServerRequest) -> None:
    body = request.protocol.encode()
    assert request.connection is not None
    request.connection.write_headers(
        ResponseStartLine("HTTP/1.1", 200, "OK"),
        HTTPHeaders({"Content-Length": str(len(body))}),
        body,
    )
    request.connection.finish()


class _DictOptionsCase(AsyncHTTPSTestCase):
    __test__ = False  # run by the test below, once per backend

    def get_app(self) -> Any:
        return protocol_app

    def get_ssl_options(self) -> Any:
        return self.default_ssl_options()

    def test_fetch_with_dict_ssl_options(self) -> None:
        options = AsyncHTTPSTestCase.default_ssl_options()
        assert set(options) == {"certfile", "keyfile"}
        response = self.fetch("/")
        assert response.code == 200, response.error
        assert response.body == b"https"


def test_default_ssl_options(reactor_backend: Any) -> None:
    previous = IOLoop._configured
    IOLoop.configure(reactor_backend)
    try:
        result = unittest.TestResult()
        unittest.defaultTestLoader.loadTestsFromTestCase(_DictOptionsCase).run(result)
    finally:
        IOLoop.configure(previous)
    assert result.testsRun == 1
    assert not result.failures and not result.errors, result.failures + result.errors
