"""Helpers of the asyncio face tests (tests/conformance/test_asyncio_face_*.py)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from reactor.ioloop import IOLoop
from tests.util import WAIT


def run(io_loop: IOLoop, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``main()`` on the loop's asyncio face, bounded by WAIT seconds."""
    return io_loop.run_sync(main, timeout=WAIT)


def need(io_loop: IOLoop, method: str, argument: str | None = None) -> None:
    """Skip unless the loop's asyncio face implements ``method`` (with
    ``argument``). The native faces implement all of asyncio's loop; uvloop
    lacks a few (sendfile, sock_recvfrom/sock_sendto, happy eyeballs)."""
    face = type(io_loop.asyncio_loop)
    implementation = getattr(face, method)
    if implementation is getattr(asyncio.AbstractEventLoop, method, None):
        pytest.skip(f"{face.__module__}.{face.__name__} does not implement {method}()")
    if argument is not None and argument not in inspect.signature(implementation).parameters:
        pytest.skip(f"{face.__module__}.{face.__name__}.{method}() has no {argument}=")
