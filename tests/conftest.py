"""Backend selection for the test suite.

Every test that takes the ``backend`` fixture (or ``io_loop``, built on it)
runs once per backend. Which ones:

- ``--backend NAME`` (repeatable) or ``REACTOR_BACKEND=NAME``: just those.
  NAME may be anything ``IOLoop(backend=...)`` accepts, including
  ``package.module:Class`` -- a third-party backend runs this suite that way.
- otherwise: every backend the registry says is available here, plus kqueue.

kqueue does not exist on Linux; there it runs through the kevent emulation in
``tests/kqueue_emulation.py`` so that the kqueue backend's code is exercised
by the whole suite. On BSD/macOS the real kqueue runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import backends
from reactor.ioloop import IOLoop
from tests.kqueue_emulation import EmulatedKqueuePoller


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        default=None,
        help="run the conformance suite on this backend only (repeatable); "
        "default: REACTOR_BACKEND, else every backend available here",
    )


def _spec(name: str) -> Any:
    """What to pass to IOLoop(backend=...) for a backend name."""
    if name == "kqueue" and backends.BACKENDS["kqueue"].unavailable_reason():
        return EmulatedKqueuePoller
    backends.get(name)  # fail the whole run early, with the registry's message
    return name


def _chosen_names(config: pytest.Config) -> list[str]:
    chosen = config.getoption("--backend")
    if chosen:
        return list(chosen)
    env = backends.env_choice()
    if env:
        return [env]
    names = [name for name, reason in backends.available().items() if reason is None]
    if "kqueue" not in names:
        names.insert(names.index("poll") if "poll" in names else 0, "kqueue")
    return names


def pytest_configure(config: pytest.Config) -> None:
    names = _chosen_names(config)
    config._reactor_backends = [(name, _spec(name)) for name in names]  # type: ignore[attr-defined]
    # With one backend chosen, loops made implicitly (IOLoop.current() with
    # none current) use it too; this also keeps REACTOR_BACKEND=kqueue on
    # Linux from failing outside the fixtures.
    if len(names) == 1:
        IOLoop.configure(config._reactor_backends[0][1])  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> str:
    names = [name for name, _ in config._reactor_backends]  # type: ignore[attr-defined]
    emulated = (
        " (kqueue through the kevent emulation)"
        if any(
            spec is EmulatedKqueuePoller
            for _, spec in config._reactor_backends  # type: ignore[attr-defined]
        )
        else ""
    )
    return f"reactor backends: {', '.join(names)}{emulated}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config._reactor_backends  # type: ignore[attr-defined]
        metafunc.parametrize(
            "backend", [spec for _, spec in chosen], ids=[name for name, _ in chosen]
        )


@pytest.fixture
def io_loop(backend: Any) -> Iterator[IOLoop]:
    """A fresh loop of the backend under test, current for the test's duration.

    Loops the test makes implicitly (``IOLoop()``, ``IOLoop.current()`` in a
    thread) get the same backend.
    """
    previous = IOLoop._configured
    IOLoop.configure(backend)
    loop = IOLoop(make_current=True)
    try:
        yield loop
    finally:
        IOLoop.clear_current()
        loop.close(all_fds=True)
        IOLoop.configure(previous)
        instance = IOLoop._instance
        if instance is not None and instance is not loop:
            instance.close(all_fds=True)
        IOLoop.clear_instance()
