"""Fixtures shared by the conformance tests: a TLS certificate made at run time,
and ``cleanup``, which closes what a test opened.

``tls_certificate`` is a throwaway CA and a server certificate it signed
(:func:`reactor.testing.tls.make_certificate`), made once per session; without
``cryptography`` or ``openssl``, the tests that need it are skipped and say why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from reactor.ioloop import IOLoop
from reactor.testing.tls import TLSCertificate, make_certificate

_T = TypeVar("_T")
Cleanup = Callable[[_T], _T]


@pytest.fixture
def cleanup(io_loop: IOLoop) -> Iterator[Cleanup[Any]]:
    """``cleanup(x)`` returns ``x`` and closes it when the test ends (last first)."""
    things: list[Any] = []

    def add(thing: _T) -> _T:
        things.append(thing)
        return thing

    yield add
    for thing in reversed(things):
        thing.close()


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> TLSCertificate:
    try:
        return make_certificate(tmp_path_factory.mktemp("tls"))
    except RuntimeError as e:
        pytest.skip(str(e))
