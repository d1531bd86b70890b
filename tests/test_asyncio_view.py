"""The short paths of a native loop's asyncio face, and what it borrows (implementation tests).

On the native backends, ``await`` of a pending future, a task step and a
``gen.coroutine`` wake-up are queued on the native loop without making an
:class:`asyncio.Handle` (see :mod:`reactor.asyncio_view`). Nothing observable
changes, so the conformance suite cannot tell; this test counts the handles,
so that a Python upgrade that renames asyncio's internals shows up here
instead of as a silent slowdown.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import textwrap
from collections.abc import Generator
from typing import Any

import pytest

from reactor import _asyncio_transports, asyncio_view, gen
from reactor.concurrent import Future
from reactor.ioloop import IOLoop, PollIOLoop


def test_tasks_and_coroutines_wait_without_handles(
    io_loop: IOLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not isinstance(io_loop, PollIOLoop):
        pytest.skip("the asyncio backends make their own handles")
    assert asyncio_view._TASK_STEP is not None, "a C task's step was not recognised"
    made: list[Any] = []
    new_handle = asyncio_view._new_handle

    def counting_new_handle(cls: type) -> Any:
        made.append(cls)
        return new_handle(cls)

    monkeypatch.setattr(asyncio_view, "_new_handle", counting_new_handle)

    async def native() -> int:
        total = 0
        for i in range(10):
            f: Future[int] = Future()
            io_loop.add_callback(f.set_result, i)
            total += await f
            await gen.moment
            await asyncio.sleep(0)
        return total

    @gen.coroutine
    def generator() -> Generator[Any, Any, int]:
        total = 0
        for i in range(10):
            f: Future[int] = Future()
            io_loop.add_callback(f.set_result, i)
            total += yield f
            yield gen.moment
        return total

    assert io_loop.run_sync(native) == 45
    assert io_loop.run_sync(generator) == 45
    assert made == []
    io_loop.asyncio_loop.call_soon(lambda: None)  # other callbacks still get handles
    assert made == [asyncio_view._Handle]


def _self_attributes(function: Any) -> set[str]:
    """The ``self.<name>`` a function's source reads (not those it assigns)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and isinstance(node.ctx, ast.Load)
    }


def test_the_borrowed_stdlib_methods_find_everything_they_use() -> None:
    """Each method the face borrows from asyncio.SelectorEventLoop (see
    reactor._asyncio_transports) reads only names the face has, on the
    running Python: a Python upgrade that gives one of them a new helper
    fails here, not in a user's program."""
    borrowed = _asyncio_transports.borrowed_methods()
    assert "create_connection" in borrowed and "create_server" in borrowed
    loop = PollIOLoop(backend="poll", make_current=False)
    try:
        face = loop.asyncio_loop
        missing: dict[str, set[str]] = {}
        for name, versions in borrowed.items():
            for method in versions:
                for attribute in _self_attributes(method):
                    found = getattr(face, attribute, None)
                    stub = getattr(asyncio.AbstractEventLoop, attribute, None)
                    if found is None or (
                        stub is not None and getattr(type(face), attribute) is stub
                    ):
                        missing.setdefault(name, set()).add(attribute)
                # A super() call must climb the face's own MRO.
                code = method.__code__
                if "__class__" in code.co_freevars:
                    cell = method.__closure__[code.co_freevars.index("__class__")]
                    assert cell.cell_contents in type(face).__mro__, name
        assert missing == {}
        # And each public method of asyncio's loop is implemented.
        not_implemented = [
            name
            for name, stub in vars(asyncio.AbstractEventLoop).items()
            if callable(stub) and not name.startswith("_") and getattr(type(face), name) is stub
        ]
        assert not_implemented == []
    finally:
        loop.close()


def test_debug_handles_only_in_debug_mode() -> None:
    loop = PollIOLoop(backend="poll", make_current=False)
    try:
        face = loop.asyncio_loop
        assert type(face.call_later(10, print)) is asyncio_view._TimerHandle
        face.set_debug(True)
        assert type(face.call_soon(print)) is asyncio_view._DebugHandle
        assert type(face.call_later(10, print)) is asyncio_view._DebugTimerHandle
        face.set_debug(False)
        assert type(face.call_soon(print)) is asyncio_view._Handle
    finally:
        loop.close()
