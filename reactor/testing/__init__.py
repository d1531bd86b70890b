"""Testing asynchronous code: unittest classes, decorators and log checks.

- :class:`AsyncTestCase`: a ``unittest.TestCase`` with a fresh loop per test
  (``self.io_loop``), and ``stop()``/``wait()`` for callback-style code.
- :func:`gen_test`: run a generator or ``async def`` test method on that
  loop, with a timeout.
- :class:`ExpectLog`: assert that a log message is written (and keep it out
  of the test output).
- :func:`bind_unused_port`: a listening socket on a free port on loopback.
- :class:`AsyncHTTPTestCase` / :class:`AsyncHTTPSTestCase`: an HTTP(S)
  server on a free port for each test, serving :meth:`~AsyncHTTPTestCase.get_app`,
  and :meth:`~AsyncHTTPTestCase.fetch` to call it.
- :func:`setup_with_context_manager`: enter a context manager in ``setUp``,
  leave it at cleanup.
- :func:`main`: ``unittest.main`` with reactor's options and logging, also
  as ``python -m reactor.testing some.test.module``.

For pytest, the plugin in :mod:`reactor.testing.plugin` (installed with
reactor) gives the ``io_loop`` fixture, parametrized over every backend, and
``http_server`` / ``http_client`` fixtures for an ``app`` you define.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import re
import signal
import socket
import sys
import types
import unittest
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from reactor import gen
from reactor.ioloop import IOLoop

if TYPE_CHECKING:
    import ssl

    from reactor.httpclient import AsyncHTTPClient, HTTPResponse
    from reactor.httpserver import HTTPServer
    from reactor.testing.tls import TLSCertificate

__all__ = [
    "AsyncHTTPSTestCase",
    "AsyncHTTPTestCase",
    "AsyncTestCase",
    "ExpectLog",
    "bind_unused_port",
    "gen_test",
    "get_async_test_timeout",
    "main",
    "setup_with_context_manager",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def get_async_test_timeout() -> float:
    """Seconds an async test may take: ``ASYNC_TEST_TIMEOUT``, default 5."""
    try:
        return float(os.environ.get("ASYNC_TEST_TIMEOUT", 5))
    except ValueError:
        return 5.0


def bind_unused_port(
    reuse_port: bool = False, address: str = "127.0.0.1"
) -> tuple[socket.socket, int]:
    """A non-blocking socket listening on a free port; returns ``(sock, port)``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((address, 0))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock, sock.getsockname()[1]


class AsyncTestCase(unittest.TestCase):
    """A TestCase whose every test gets a fresh, current :class:`IOLoop`.

    Callback-style tests call ``self.wait()`` to run the loop until a
    callback calls ``self.stop(value)``; ``wait`` returns the value. Tests
    written as coroutines use :func:`gen_test`. An exception raised by a
    callback while the loop runs fails the test instead of being only logged.
    Override :meth:`get_new_ioloop` to choose the backend (by default the
    configured one: ``IOLoop.configure`` or ``REACTOR_BACKEND``).
    """

    def __init__(self, methodName: str = "runTest") -> None:
        super().__init__(methodName)
        self.__stopped = False
        self.__running = False
        self.__failure: BaseException | None = None
        self.__stop_args: Any = None
        self.__timeout: object | None = None

    def setUp(self) -> None:
        super().setUp()
        self.io_loop = self.get_new_ioloop()
        self.io_loop.make_current()
        self.io_loop.handle_callback_exception = self._handle_callback_exception  # type: ignore[method-assign]

    def tearDown(self) -> None:
        # As Tornado's: cancel the tasks the test left pending on its loop and
        # let them finish, so that their cleanup (``finally``) runs now, inside
        # this test, rather than at garbage collection ("Task was destroyed
        # but it is pending!"). One that fails otherwise than by the
        # cancellation fails the test.
        tasks = [t for t in asyncio.all_tasks(self.io_loop.asyncio_loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            done, _ = self.io_loop.run_sync(lambda: asyncio.wait(tasks))
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()
        IOLoop.clear_current()
        self.io_loop.close(all_fds=True)
        super().tearDown()
        self.__rethrow()

    def _callTestMethod(self, method: Callable[[], Any]) -> None:
        # As Tornado's: an undecorated coroutine or generator test would
        # "pass" without running, and a returned value is a mistake.
        result = method()
        if inspect.isgenerator(result) or inspect.iscoroutine(result):
            result.close()  # it never ran; no "never awaited" warning
            raise TypeError(
                "Generator and coroutine test methods should be decorated with "
                "reactor.testing.gen_test"
            )
        if result is not None:
            raise ValueError(f"Return value from test method ignored: {result!r}")

    def get_new_ioloop(self) -> IOLoop:
        """The loop for one test; override to pick a backend."""
        return IOLoop(make_current=False)

    def _handle_callback_exception(self, callback: Any) -> None:
        if self.__failure is None:
            self.__failure = sys.exc_info()[1]
        else:
            logging.getLogger("reactor.application").error(
                "Exception in callback %r", callback, exc_info=True
            )
        self.stop()

    def __rethrow(self) -> None:
        if self.__failure is not None:
            failure, self.__failure = self.__failure, None
            raise failure

    def stop(self, _arg: Any = None, **kwargs: Any) -> None:
        """End :meth:`wait`, which returns ``_arg`` (or the keyword arguments)."""
        assert _arg is None or not kwargs
        self.__stop_args = kwargs or _arg
        if self.__running:
            self.io_loop.stop()
            self.__running = False
        self.__stopped = True

    def wait(
        self, condition: Callable[[], bool] | None = None, timeout: float | None = None
    ) -> Any:
        """Run the loop until :meth:`stop` is called (and ``condition()`` is
        true, if given); fail the test after ``timeout`` seconds."""
        if timeout is None:
            timeout = get_async_test_timeout()
        if not self.__stopped:

            def timeout_func() -> None:
                try:
                    raise self.failureException(
                        f"Async operation timed out after {timeout} seconds"
                    )
                except Exception:
                    self.__failure = sys.exc_info()[1]
                self.stop()

            self.__timeout = self.io_loop.call_later(timeout, timeout_func)
            while True:
                self.__running = True
                self.io_loop.start()
                if self.__failure is not None or condition is None or condition():
                    break
            if self.__timeout is not None:
                self.io_loop.remove_timeout(self.__timeout)
                self.__timeout = None
        assert self.__stopped
        self.__stopped = False
        self.__rethrow()
        result, self.__stop_args = self.__stop_args, None
        return result


class AsyncHTTPTestCase(AsyncTestCase):
    """An :class:`AsyncTestCase` with an HTTP server on a free loopback port.

    Override :meth:`get_app` to return what the server serves (a request
    callback or an ``HTTPServerConnectionDelegate``, such as a web
    Application). ``self.fetch(path)`` requests it with ``self.http_client``
    and returns the response, whatever its status (``raise_error=False``).
    """

    def setUp(self) -> None:
        super().setUp()
        sock, port = bind_unused_port()
        self.__port = port
        self.http_client = self.get_http_client()
        self._app = self.get_app()
        self.http_server = self.get_http_server()
        self.http_server.add_sockets([sock])

    def get_app(self) -> Any:
        """What the server serves; override."""
        raise NotImplementedError(f"{type(self).__name__}.get_app")

    def get_http_client(self) -> AsyncHTTPClient:
        from reactor.httpclient import AsyncHTTPClient

        return AsyncHTTPClient(force_instance=True)

    def get_http_server(self) -> HTTPServer:
        from reactor.httpserver import HTTPServer

        return HTTPServer(self._app, **self.get_httpserver_options())

    def get_httpserver_options(self) -> dict[str, Any]:
        """Keyword arguments for the HTTPServer; override to add some."""
        return {}

    def get_http_port(self) -> int:
        return self.__port

    def get_protocol(self) -> str:
        return "http"

    def get_url(self, path: str) -> str:
        """The absolute URL of ``path`` on this test's server."""
        return f"{self.get_protocol()}://127.0.0.1:{self.__port}{path}"

    def fetch(self, path: str, raise_error: bool = False, **kwargs: Any) -> HTTPResponse:
        """Fetch ``path`` (or an absolute URL) synchronously, running the loop.

        Unlike ``AsyncHTTPClient.fetch``, a non-2xx answer is returned, not
        raised, unless ``raise_error=True``.
        """
        url = path if path.lower().startswith(("http://", "https://")) else self.get_url(path)
        response: HTTPResponse = self.io_loop.run_sync(
            lambda: self.http_client.fetch(url, raise_error=raise_error, **kwargs),
            timeout=get_async_test_timeout(),
        )
        return response

    def tearDown(self) -> None:
        self.http_server.stop()
        self.io_loop.run_sync(
            self.http_server.close_all_connections, timeout=get_async_test_timeout()
        )
        self.http_client.close()
        del self.http_server
        del self._app
        super().tearDown()


class AsyncHTTPSTestCase(AsyncHTTPTestCase):
    """:class:`AsyncHTTPTestCase` over TLS, with a certificate made for the
    test run (:func:`reactor.testing.tls.make_certificate`) that the test's
    client trusts: certificates are verified, as in production."""

    _certificate: TLSCertificate | None = None

    @classmethod
    def get_certificate(cls) -> TLSCertificate:
        """The run's throwaway CA and server certificate (made once per process)."""
        if AsyncHTTPSTestCase._certificate is None:
            import atexit
            import shutil
            import tempfile
            from pathlib import Path

            from reactor.testing.tls import make_certificate

            directory = tempfile.mkdtemp(prefix="reactor-tls-")
            atexit.register(shutil.rmtree, directory, True)
            AsyncHTTPSTestCase._certificate = make_certificate(Path(directory))
        return AsyncHTTPSTestCase._certificate

    def get_ssl_options(self) -> ssl.SSLContext:
        """The server's TLS context; override to change it."""
        return self.get_certificate().server_context()

    @staticmethod
    def default_ssl_options() -> dict[str, Any]:
        """The test certificate as ``ssl_options``: ``{"certfile": ..., "keyfile": ...}``.

        For a ``get_ssl_options`` override that starts from Tornado's dict form.
        """
        certificate = AsyncHTTPSTestCase.get_certificate()
        return {"certfile": str(certificate.cert_file), "keyfile": str(certificate.key_file)}

    def get_httpserver_options(self) -> dict[str, Any]:
        return {"ssl_options": self.get_ssl_options()}

    def get_http_client(self) -> AsyncHTTPClient:
        from reactor.httpclient import AsyncHTTPClient

        ca_file = str(self.get_certificate().ca_file)
        return AsyncHTTPClient(force_instance=True, defaults={"ca_certs": ca_file})

    def get_protocol(self) -> str:
        return "https"


def gen_test(func: Callable[..., Any] | None = None, timeout: float | None = None) -> Any:
    """Run a coroutine test on its loop: an :class:`AsyncTestCase` method's
    ``self.io_loop``, or a pytest test's ``io_loop`` fixture argument.

    The test may be a generator (``yield``) or ``async def``. It fails with
    :class:`TimeoutError` after ``timeout`` seconds (default:
    ``ASYNC_TEST_TIMEOUT``, else 5). Use as ``@gen_test`` or
    ``@gen_test(timeout=30)``.
    """
    if timeout is None:
        timeout = get_async_test_timeout()
    seconds = timeout

    def decorate(f: _F) -> _F:
        coro_func = gen.coroutine(f) if inspect.isgeneratorfunction(f) else f

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            loop = kwargs.get("io_loop")
            if loop is None and args:
                loop = getattr(args[0], "io_loop", None)
            if not isinstance(loop, IOLoop):
                raise TypeError(
                    "gen_test needs an AsyncTestCase method or a test taking the io_loop fixture"
                )
            try:
                # The test's value is returned, as by Tornado's gen_test, so
                # that a value returned by mistake is reported.
                return loop.run_sync(functools.partial(coro_func, *args, **kwargs), timeout=seconds)
            except TimeoutError as e:
                if "timed out after" in str(e):
                    raise TimeoutError(
                        f"Async test {f.__qualname__} timed out after {seconds} seconds"
                    ) from e
                raise

        # pytest must not see a coroutine function (it would refuse it).
        wrapper.__signature__ = inspect.signature(f)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    if func is not None:
        return decorate(func)
    return decorate


class ExpectLog(logging.Filter):
    """``with ExpectLog(logger, regex):`` the block must log a matching message.

    Matching records are swallowed (kept out of the test output); with
    ``required=False`` the message may also not come. With ``level`` only
    records of exactly that level match (the logger is lowered to it for the
    block if need be); a matching message at another level is let through,
    and a warning on ``reactor.application`` says so, as in Tornado.
    Afterwards :attr:`matched` (also :attr:`logged`) is the number of
    matching records, and :attr:`logged_stack` is True if any record the
    logger saw in the block carried a traceback.
    """

    def __init__(
        self,
        logger: logging.Logger | str,
        regex: str,
        required: bool = True,
        level: int | None = None,
    ) -> None:
        super().__init__()
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.regex = re.compile(regex)
        self.required = required
        self.level = level
        self.matched = 0
        self.logged_stack = False
        self._old_level: int | None = None

    @property
    def logged(self) -> int:
        """The number of matching records (Tornado's name: :attr:`matched`)."""
        return self.matched

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            self.logged_stack = True
        message = record.getMessage()
        if not self.regex.match(message):
            return True
        if self.level is not None and record.levelno != self.level:
            logging.getLogger("reactor.application").warning(
                "Got expected log message %r at unexpected level (%s vs %s)",
                message,
                logging.getLevelName(self.level),
                record.levelname,
            )
            return True
        self.matched += 1
        return False

    def __enter__(self) -> ExpectLog:
        self._old_level = self.logger.level
        if self.level is not None and (
            self.logger.getEffectiveLevel() > self.level or self.logger.level == logging.NOTSET
        ):
            self.logger.setLevel(self.level)
        self.logger.addFilter(self)
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.logger.removeFilter(self)
        if self._old_level is not None:
            self.logger.setLevel(self._old_level)
        if typ is None and self.required and not self.matched:
            raise AssertionError(f"did not get expected log message {self.regex.pattern!r}")


def setup_with_context_manager(testcase: unittest.TestCase, cm: Any) -> Any:
    """Enter ``cm`` now and exit it when ``testcase`` cleans up; return what it entered.

    For ``setUp``: ``setup_with_context_manager(self, warnings.catch_warnings())``.
    """
    entered = cm.__enter__()
    testcase.addCleanup(cm.__exit__, None, None, None)
    return entered


def main(**kwargs: Any) -> None:
    """Run tests as ``unittest.main`` does, with :mod:`reactor.options` parsing the command line.

    The command line takes unittest's switches as options (``--verbose``,
    ``--quiet``, ``--failfast``, ``--catch``, ``--buffer``), the logging
    options (``--logging=debug``), ``--exception_on_interrupt=false`` (Ctrl-C
    then kills the process at once instead of raising KeyboardInterrupt,
    which a blocked test may never see), and then the tests to run, by
    dotted name. Without names it runs the suite returned by the ``all()``
    of the ``__main__`` module (and exits with status 1 if there is none).
    Other keyword arguments go to ``unittest.main`` (``main(verbosity=2)``);
    like it, this exits with the result's status.
    """
    from reactor.options import options, parse_command_line

    switches = {
        "exception_on_interrupt": (
            True,
            "ctrl-c raises KeyboardInterrupt (with a traceback, but a blocked "
            "test may not see it); false kills the process at once",
        ),
        "verbose": (None, "show each test (unittest's -v)"),
        "quiet": (None, "show only failures (unittest's -q)"),
        "failfast": (None, "stop at the first failure (unittest's -f)"),
        "catch": (None, "ctrl-c waits for the running test, then reports (unittest's -c)"),
        "buffer": (None, "hide the output of passing tests (unittest's -b)"),
    }
    for name, (default, text) in switches.items():
        if name not in options:  # main() may run twice in one process
            options.define(name, default=default, type=bool, help=text)

    argv = [sys.argv[0], *parse_command_line(sys.argv)]
    if not options.exception_on_interrupt:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Like unittest's own switches: given at all (even =false) means on.
    if options.verbose is not None:
        kwargs["verbosity"] = 2
    if options.quiet is not None:
        kwargs["verbosity"] = 0
    if options.failfast is not None:
        kwargs["failfast"] = True
    if options.catch is not None:
        kwargs["catchbreak"] = True
    if options.buffer is not None:
        kwargs["buffer"] = True

    if len(argv) == 1 and not callable(getattr(sys.modules.get("__main__"), "all", None)):
        print("No tests specified (name them, or define all() in the script)", file=sys.stderr)
        sys.exit(1)
    if len(argv) > 1:
        # Names are resolved from the top, so they need not be imported here.
        unittest.main(module=None, argv=argv, **kwargs)
    else:
        unittest.main(defaultTest="all", argv=argv, **kwargs)
