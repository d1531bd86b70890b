"""Fixtures shared by the conformance tests: a TLS certificate made at run time,
``cleanup``, which closes what a test opened, ``reactor_log`` and ``need_curl``.

``tls_certificate`` is a throwaway CA and a server certificate it signed
(:func:`reactor.testing.tls.make_certificate`), made once per session; without
``cryptography`` or ``openssl``, the tests that need it are skipped and say why.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from reactor.ioloop import IOLoop
from reactor.testing.tls import TLSCertificate, make_certificate
from tests.util import LogRecords

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


@pytest.fixture
def reactor_log() -> Iterator[LogRecords]:
    """Every record reactor's loggers write (INFO and up) during the test;
    at its end, none may be an ERROR or carry a traceback, unless the test
    expected it (``ExpectLog`` swallows what it matches). A module that
    wants this for every test says ``pytestmark =
    pytest.mark.usefixtures("reactor_log")``."""
    logger = logging.getLogger("reactor")
    handler = LogRecords()
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    bad = [r for r in handler.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, "\n".join(f"{r.name} {r.levelname}: {r.getMessage()}" for r in bad)


@pytest.fixture
def need_curl() -> str:
    """curl's path; skips the test where curl is not installed (``.ci/run``
    installs it with apt-get where it can)."""
    path = shutil.which("curl")
    if path is None:
        pytest.skip("curl is not installed (.ci/run installs it with apt-get where it can)")
    return path


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> TLSCertificate:
    try:
        return make_certificate(tmp_path_factory.mktemp("tls"))
    except RuntimeError as e:
        pytest.skip(str(e))
