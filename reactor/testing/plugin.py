"""The pytest plugin: run your tests on every reactor backend.

Installed with reactor (entry point ``pytest11``), it gives:

- ``io_loop``: a fresh loop of the backend under test, current for the
  test; tests that use it run once per backend.
- ``reactor_backend``: the backend spec itself, for tests that make their
  own loops (``IOLoop(backend=reactor_backend)``).
- ``async def`` tests that take ``io_loop`` run on it, with a timeout
  (``ASYNC_TEST_TIMEOUT`` seconds, default 5).
- ``http_server``: an :class:`~reactor.httpserver.HTTPServer` on a free
  loopback port serving the ``app`` fixture, which you define (a request
  callback or an ``HTTPServerConnectionDelegate``); ``http_server_options``
  (default ``{}``) may be overridden to pass it keyword arguments.
  ``http_port`` is its port and ``base_url`` its ``http://127.0.0.1:PORT``.
- ``http_client``: an :class:`~reactor.httpclient.AsyncHTTPClient` of its own
  for the test (closed after it)::

      @pytest.fixture
      def app():
          return my_application

      async def test_hello(http_client, base_url):
          response = await http_client.fetch(base_url + "/")
          assert response.body == b"Hello world!"

Which backends: ``--reactor-backend NAME`` (repeatable), else
``REACTOR_BACKEND``, else every backend available here plus kqueue, which
where the system lacks it runs through :mod:`reactor.testing.kqueue_emulation`
(so that the kqueue backend's code is exercised everywhere). NAME is
anything ``IOLoop(backend=...)`` accepts, ``package.module:Class`` included:
that is how a third-party backend runs reactor's conformance suite.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from reactor import backends
from reactor.ioloop import IOLoop
from reactor.testing import bind_unused_port, get_async_test_timeout
from reactor.testing.kqueue_emulation import EmulatedKqueuePoller

if TYPE_CHECKING:
    from reactor.httpclient import AsyncHTTPClient
    from reactor.httpserver import HTTPServer

_BACKENDS = pytest.StashKey[list[tuple[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("reactor")
    group.addoption(
        "--reactor-backend",
        action="append",
        default=None,
        metavar="NAME",
        help="run io_loop tests on this reactor backend only (repeatable); "
        "default: REACTOR_BACKEND, else every backend available here",
    )


def backend_spec(name: str) -> Any:
    """What to pass to ``IOLoop(backend=...)`` to test backend ``name``."""
    if name == "kqueue" and backends.BACKENDS["kqueue"].unavailable_reason():
        return EmulatedKqueuePoller
    backends.get(name)  # fail the whole run early, with the registry's message
    return name


def chosen_backends(config: pytest.Config) -> list[tuple[str, Any]]:
    """``[(name, spec)]`` of the backends this run tests."""
    return config.stash[_BACKENDS]


def _chosen_names(config: pytest.Config) -> list[str]:
    chosen = config.getoption("--reactor-backend")
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
    chosen = [(name, backend_spec(name)) for name in _chosen_names(config)]
    config.stash[_BACKENDS] = chosen
    # With one backend chosen, loops made implicitly (IOLoop() or
    # IOLoop.current() with none current) use it too; this also keeps
    # REACTOR_BACKEND=kqueue on Linux from failing outside the fixtures.
    if len(chosen) == 1:
        IOLoop.configure(chosen[0][1])


def pytest_report_header(config: pytest.Config) -> str:
    chosen = chosen_backends(config)
    emulated = any(spec is EmulatedKqueuePoller for _, spec in chosen)
    note = " (kqueue through the kevent emulation)" if emulated else ""
    return f"reactor backends: {', '.join(name for name, _ in chosen)}{note}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # A direct parametrization, not a fixture, so that Hypothesis tests may
    # take it (function-scoped fixtures are not reset between examples).
    if "reactor_backend" in metafunc.fixturenames:
        chosen = chosen_backends(metafunc.config)
        metafunc.parametrize(
            "reactor_backend", [spec for _, spec in chosen], ids=[name for name, _ in chosen]
        )


@pytest.fixture
def io_loop(reactor_backend: Any) -> Iterator[IOLoop]:
    """A fresh loop of the backend under test, current for the test.

    Loops the test makes implicitly (``IOLoop()``, ``IOLoop.current()`` in a
    thread) get the same backend. The loop is closed with ``all_fds=True``.
    """
    previous = IOLoop._configured
    IOLoop.configure(reactor_backend)
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


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests that take ``io_loop`` on that loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    loop = pyfuncitem.funcargs.get("io_loop")
    if not isinstance(loop, IOLoop):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    timeout = get_async_test_timeout()
    try:
        loop.run_sync(lambda: pyfuncitem.obj(**kwargs), timeout=timeout)
    except TimeoutError as e:
        raise TimeoutError(f"async test timed out after {timeout} seconds") from e
    return True


@pytest.fixture
def app() -> Any:
    """What ``http_server`` serves: define this fixture in your tests."""
    raise pytest.UsageError(
        "the http_server fixture serves the 'app' fixture: define one that returns "
        "a request callback or an HTTPServerConnectionDelegate (e.g. a web Application)"
    )


@pytest.fixture
def http_server_options() -> dict[str, Any]:
    """Keyword arguments for ``http_server``'s HTTPServer; override to add some."""
    return {}


@pytest.fixture
def _http_socket(io_loop: IOLoop) -> Iterator[tuple[socket.socket, int]]:
    sock, port = bind_unused_port()
    try:
        yield sock, port
    finally:
        sock.close()


@pytest.fixture
def http_port(_http_socket: tuple[socket.socket, int]) -> int:
    """The port ``http_server`` listens on (127.0.0.1)."""
    return _http_socket[1]


@pytest.fixture
def base_url(http_port: int) -> str:
    """``http://127.0.0.1:PORT``: prefix a path to fetch from ``http_server``."""
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture
def http_server(
    io_loop: IOLoop,
    app: Any,
    http_server_options: dict[str, Any],
    _http_socket: tuple[socket.socket, int],
) -> Iterator[HTTPServer]:
    """An HTTPServer serving ``app`` on ``http_port``, on the test's loop."""
    from reactor.httpserver import HTTPServer

    server = HTTPServer(app, **http_server_options)
    server.add_sockets([_http_socket[0]])
    try:
        yield server
    finally:
        server.stop()
        io_loop.run_sync(server.close_all_connections, timeout=get_async_test_timeout())


@pytest.fixture
def http_client(io_loop: IOLoop, http_server: HTTPServer) -> Iterator[AsyncHTTPClient]:
    """An AsyncHTTPClient of the test's own, with ``http_server`` running."""
    from reactor.httpclient import AsyncHTTPClient

    client = AsyncHTTPClient(force_instance=True)
    try:
        yield client
    finally:
        client.close()
