"""WSGI applications (Flask, Django, ...) on reactor's HTTP server.

:class:`WSGIContainer` makes a PEP 3333 application a request callback: serve
it with ``HTTPServer(WSGIContainer(app))``, or mount it beside reactor
handlers with :class:`reactor.web.FallbackHandler` or :mod:`reactor.routing`.

Some facts about WSGI on an event loop (each is a test in
tests/conformance/test_wsgi.py):

- WSGI is synchronous: the application, and the iteration of the body it
  returns, may block (a database call, a ``time.sleep``). Here both run on an
  executor thread (a pool of the container's own unless one is given), never
  on the loop's thread, so the loop goes on serving other requests meanwhile.
  Tornado 6.6 runs the application on the loop unless given an executor.
- PEP 3333 forbids a server to delay a body block: each block the
  application yields, or gives to ``write()``, is handed to the loop at
  once. The worker thread waits for the kernel to take them only once
  ``_WRITE_AHEAD`` bytes are on their way, so a slow client slows the
  application down instead of filling the server's memory (and a small
  body costs no wait), and a client that goes away stops the
  iteration (the body's ``close()`` is called, as always). A client that
  stays but reads nothing would hold the thread for ever: after
  :attr:`WSGIContainer.write_timeout` it is cut off.
- The status line and headers go out with the first non-empty block (or
  when the body ends), so ``start_response`` may be called again with
  ``exc_info`` until then; after that, ``exc_info`` is re-raised (PEP 3333).
- Without a ``Content-Length`` from the application (or a body of one
  block, whose length is then known) the response is chunked on HTTP/1.1
  and ended by closing the connection on HTTP/1.0 (RFC 9112 section 6.3).
- PEP 3333 makes hop-by-hop headers the server's business: an application
  that sets ``Transfer-Encoding``, ``Keep-Alive``, ``Upgrade``, ``TE`` or
  ``Trailer`` is answered 500. ``Connection: close`` is honoured.
- CGI turns ``-`` into ``_`` in header names, so ``X-Forwarded-For`` and
  ``X_Forwarded_For`` are both ``HTTP_X_FORWARDED_FOR``: a client could
  smuggle one past a proxy that checks the other. Request headers whose
  names hold ``_`` are therefore dropped (as nginx and gunicorn do), with a
  log line.
- ``PATH_INFO`` is the percent-decoded path, its bytes as latin-1
  characters (PEP 3333's "native strings").

An application that raises, returns something that is not iterable, yields
something that is not bytes, or calls ``start_response`` twice without
``exc_info`` gets a 500 (or, once the headers are out, a closed
connection) and an error in the ``reactor.application`` log; the server goes
on. Each request is logged to ``reactor.access`` as
:meth:`reactor.web.RequestHandler` requests are.
"""

from __future__ import annotations

import collections
import concurrent.futures
import re
import sys
import threading
from collections.abc import Callable
from io import BytesIO
from types import TracebackType
from typing import TYPE_CHECKING, Any

import reactor
from reactor import escape, httputil
from reactor.ioloop import IOLoop
from reactor.iostream import StreamClosedError
from reactor.log import access_log, app_log, gen_log

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication as WSGIAppType

__all__ = ["HTTPRequest", "WSGIContainer", "to_wsgi_str"]

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

# Hop-by-hop fields (RFC 9110 section 7.6.1) a WSGI application may not set
# (PEP 3333, "Other HTTP Features"). Connection is let through: the server
# honours "close".
_HOP_BY_HOP = frozenset(
    ["keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]
)

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ERROR_BODY = (
    b"<html><title>500: Internal Server Error</title><body>500: Internal Server Error</body></html>"
)
# How many bytes of body blocks a worker may have on their way to the client
# before it waits for the kernel to take them: the memory a slow client can
# make a response hold, and what makes a small body need no wait at all.
_WRITE_AHEAD = 64 * 1024
_SERVER = f"ReactorServer/{reactor.version}"


def to_wsgi_str(s: bytes) -> str:
    """Bytes as a PEP 3333 "native string": each byte one latin-1 character."""
    assert isinstance(s, bytes)
    return s.decode("latin1")


def _bodiless(code: int) -> bool:
    return code < 200 or code in (204, 304)


def _make_head(
    status: str, headers: list[tuple[str, str]]
) -> tuple[httputil.ResponseStartLine, httputil.HTTPHeaders]:
    """The status line and headers of a ``start_response`` call; raises
    TypeError or ValueError for what an application may not send."""
    if not isinstance(status, str) or not isinstance(headers, list):
        raise TypeError("start_response(status: str, headers: list of (str, str) tuples)")
    code_text, _, reason = status.partition(" ")
    if (
        len(code_text) != 3
        or not (code_text.isascii() and code_text.isdigit())
        # A 1xx is an interim answer (RFC 9110 section 15.2), never the
        # response; 100-continue is the server's business.
        or not 200 <= int(code_text) <= 599
        or _CONTROL.search(reason)
    ):
        raise ValueError(f"invalid WSGI status {status[:100]!r}")
    fields = httputil.HTTPHeaders()
    for field in headers:
        if (
            not isinstance(field, tuple)
            or len(field) != 2
            or not isinstance(field[0], str)
            or not isinstance(field[1], str)
        ):
            raise TypeError(f"WSGI header {field!r} is not a (str, str) tuple")
        name, value = field
        if name.lower() in _HOP_BY_HOP:
            raise ValueError(f"WSGI application set hop-by-hop header {name!r} (PEP 3333)")
        if name.lower() == "content-length" and (
            not (value.isascii() and value.isdigit()) or "Content-Length" in fields
        ):
            raise ValueError(f"invalid or repeated Content-Length {value[:100]!r}")
        fields.add(name, value)  # ValueError for CR, LF, a bad name
    if "Server" not in fields:
        fields["Server"] = _SERVER
    code = int(code_text)
    reason = reason or httputil.responses.get(code, "Unknown")
    return httputil.ResponseStartLine("HTTP/1.1", code, reason), fields


class _ClientGone(Exception):
    """Raised in the worker when the client closed the connection."""


class WSGIContainer:
    """Runs a WSGI application as an HTTPServer request callback.

    ``executor``: the :class:`concurrent.futures.Executor` the application
    runs on (a ``ThreadPoolExecutor``; processes cannot share the request).
    By default a thread pool of the container's own, made at the first
    request. An executor that runs jobs inline (on the calling thread, like
    Tornado's ``dummy_executor``) runs the application on the loop, as
    Tornado 6.6 does by default: the loop then waits for it.

    The container may be called (``container(request)``) with a complete
    :class:`~reactor.httputil.HTTPServerRequest`: that is how
    ``HTTPServer``, ``FallbackHandler`` and the routers use it.
    """

    write_timeout: float | None = 60.0
    """Seconds a worker thread waits for the client to take a block of the
    body (to let the kernel have it); then the connection is closed and the
    body's iteration stopped. None: wait as long as the connection lasts."""

    def __init__(
        self,
        wsgi_application: WSGIAppType,
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        self.wsgi_application = wsgi_application
        self._executor = executor
        self._executor_lock = threading.Lock()

    @property
    def executor(self) -> concurrent.futures.Executor:
        """The executor the application runs on."""
        if self._executor is None:
            with self._executor_lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        thread_name_prefix="reactor-wsgi"
                    )
        return self._executor

    def __call__(self, request: httputil.HTTPServerRequest) -> None:
        IOLoop.current().spawn_callback(self.handle_request, request)

    async def handle_request(self, request: httputil.HTTPServerRequest) -> None:
        """Answer ``request`` with the application (a coroutine on the loop)."""
        loop = IOLoop.current()
        exchange = _Exchange(self, request, loop)
        try:
            environ = self.environ(request)
        except Exception:
            app_log.error("cannot build the WSGI environ for %r", request, exc_info=True)
            exchange.fail_on_loop()
            return
        try:
            await loop.run_in_executor(self.executor, exchange.run, environ)
        except Exception:
            # The executor refused the job (shut down) or the job itself
            # escaped its own handling: either way the request gets a 500.
            app_log.error("WSGI application could not run", exc_info=True)
            exchange.error = True
        exchange.end_on_loop()

    def environ(self, request: httputil.HTTPServerRequest) -> dict[str, Any]:
        """The PEP 3333 environ of ``request``."""
        host, port = httputil.split_host_and_port(request.host)
        if port is None:
            port = 443 if request.protocol == "https" else 80
        if host.startswith("["):
            host = host[1:-1]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": to_wsgi_str(escape.url_unescape(request.path, encoding=None, plus=False)),
            "QUERY_STRING": request.query,
            "REMOTE_ADDR": request.remote_ip,
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": request.version,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.protocol,
            "wsgi.input": BytesIO(request.body or b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        dropped = []
        for name, value in request.headers.get_all():
            if "_" in name:
                dropped.append(name)
                continue
            lower = name.lower()
            if lower == "content-type":
                key = "CONTENT_TYPE"
            elif lower == "content-length":
                key = "CONTENT_LENGTH"
            else:
                key = "HTTP_" + name.replace("-", "_").upper()
            if key in environ:
                # A repeated field is one list (RFC 9110 section 5.3);
                # cookies are joined as one Cookie header reads.
                value = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
            environ[key] = value
        if dropped:
            gen_log.info(
                "WSGI request from %s: dropped header(s) with '_' in the name: %s",
                request.remote_ip,
                ", ".join(sorted(set(dropped)))[:200],
            )
        return environ

    def _log(self, status_code: int, request: httputil.HTTPServerRequest) -> None:
        if status_code < 400:
            log_method = access_log.info
        elif status_code < 500:
            log_method = access_log.warning
        else:
            log_method = access_log.error
        request_time = 1000.0 * request.request_time()
        summary = f"{request.method} {request.uri} ({request.remote_ip})"
        log_method("%d %s %.2fms", status_code, summary, request_time)


class _Exchange:
    """One request's run of the application: the worker side writes through
    the loop, the loop side sends what is left and finishes."""

    def __init__(
        self, container: WSGIContainer, request: httputil.HTTPServerRequest, loop: IOLoop
    ) -> None:
        self.container = container
        self.request = request
        self.loop = loop
        self.loop_thread = threading.get_ident()
        # The status line and headers start_response gave; body_started: a
        # block went to the loop (the worker's view); headers_sent: the
        # head was written (the loop's).
        self.head: tuple[httputil.ResponseStartLine, httputil.HTTPHeaders] | None = None
        self.body_started = False
        self.headers_sent = False
        self.code = 500
        self.error = False
        self.gone = False
        self.single_block = False
        # Blocks handed to the loop whose bytes the kernel has not taken yet.
        self.inflight: collections.deque[tuple[int, concurrent.futures.Future[None]]] = (
            collections.deque()
        )
        self.inflight_bytes = 0
        self.send_error: BaseException | None = None
        connection = request.connection
        assert connection is not None
        self.connection = connection
        # Not part of the HTTPConnection interface; the server's connection has it.
        self._set_close_callback = getattr(connection, "set_close_callback", None)
        if self._set_close_callback is not None:
            self._set_close_callback(self._on_close)

    def _on_close(self) -> None:
        self.gone = True

    # -- on the worker thread ------------------------------------------------------

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: _ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.body_started:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no cycle through the frame (PEP 3333)
        elif self.head is not None:
            raise RuntimeError("start_response called twice without exc_info")
        # Checked here, so that the application sees its own mistake raised
        # where it made it.
        self.head = _make_head(status, headers)
        return self.write

    def run(self, environ: dict[str, Any]) -> None:
        """Call the application and send its body; errors are recorded, not raised."""
        body: Any = None
        try:
            body = self.container.wsgi_application(environ, self.start_response)  # type: ignore[arg-type]
            if not self.body_started and isinstance(body, (list, tuple)) and len(body) == 1:
                # One block and nothing from write(): its length is the
                # body's (PEP 3333 suggests this).
                self.single_block = True
            for block in body:
                self.write(block)
        except _ClientGone:
            pass
        except Exception:
            app_log.error(
                "Uncaught exception in WSGI application %s %s",
                self.request.method,
                self.request.uri,
                exc_info=True,
            )
            self.error = True
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    # Logged only: what the application sent stands.
                    app_log.error("WSGI response body's close() raised", exc_info=True)

    def write(self, block: bytes) -> None:
        """PEP 3333's ``write()`` and each block of the body: hands the block
        to the loop, and returns once at most :data:`_WRITE_AHEAD` bytes of
        blocks are still on their way to the kernel (at once, for a body
        smaller than that: no wait for the loop per block)."""
        if type(block) is not bytes:
            if not isinstance(block, (bytes, bytearray, memoryview)):
                raise TypeError(f"WSGI body blocks must be bytes, not {type(block).__name__}")
            block = bytes(block)
        if not block:
            return
        if self.head is None:
            raise RuntimeError("WSGI application wrote its body before calling start_response")
        self.body_started = True  # the status and headers are final now
        if self.send_error is not None:
            raise self.send_error
        if self.gone:
            raise _ClientGone()
        if threading.get_ident() == self.loop_thread:
            # An inline executor: the loop is this thread, it cannot wait.
            try:
                self._send(block)
            except StreamClosedError:
                self.gone = True
                raise _ClientGone() from None
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        # Blocks are sent in order: the loop runs its callbacks in the order
        # they were added, and the end of the response (end_on_loop, after
        # run() returned) comes after all of them.
        self.loop.add_callback(self._send_for_worker, block, done)
        inflight = self.inflight
        inflight.append((len(block), done))
        self.inflight_bytes += len(block)
        while self.inflight_bytes > _WRITE_AHEAD:
            size, oldest = inflight.popleft()
            self.inflight_bytes -= size
            self._wait(oldest)

    def _wait(self, done: concurrent.futures.Future[None]) -> None:
        try:
            done.result(self.container.write_timeout)
        except concurrent.futures.TimeoutError:
            # A client that stops reading would hold this thread (one of a
            # few) for ever: give up on it.
            gen_log.info(
                "WSGI response %s %s: %s took nothing for %s s; closing the connection",
                self.request.method,
                self.request.uri,
                self.request.remote_ip,
                self.container.write_timeout,
            )
            self.gone = True
            self.loop.add_callback(self._abort)
            raise _ClientGone() from None

    # -- on the loop -------------------------------------------------------------------

    def _send_for_worker(self, block: bytes, done: concurrent.futures.Future[None]) -> None:
        try:
            written = self._send(block)
        except StreamClosedError:
            # The client left before the close callback said so: not an error.
            self.gone = True
            done.set_exception(_ClientGone())
            return
        except BaseException as e:
            if self.send_error is None:
                self.send_error = e  # the worker raises it at its next write
            done.set_exception(e)
            return

        def sent(f: Any) -> None:
            exc = f.exception()
            if exc is not None:
                if isinstance(exc, StreamClosedError):
                    self.gone = True
                done.set_exception(_ClientGone() if self.gone else exc)
            else:
                done.set_result(None)

        written.add_done_callback(sent)

    def _send(self, block: bytes) -> Any:
        if self.gone:
            raise _ClientGone()
        if not self.headers_sent:
            start_line, headers = self._final_head(len(block) if self.single_block else None)
            return self.connection.write_headers(start_line, headers, block)
        return self.connection.write(block)

    def _final_head(
        self, length: int | None
    ) -> tuple[httputil.ResponseStartLine, httputil.HTTPHeaders]:
        """The head to send now, with ``Content-Length: length`` if the
        application set none and the status allows one (RFC 9110 section 8.6)."""
        assert self.head is not None
        start_line, headers = self.head
        code = start_line.code
        if length is not None and "Content-Length" not in headers and not _bodiless(code):
            headers["Content-Length"] = str(length)
        self.code = code
        self.headers_sent = True
        return start_line, headers

    def fail_on_loop(self) -> None:
        self.error = True
        self.end_on_loop()

    def end_on_loop(self) -> None:
        connection = self.connection
        if self._set_close_callback is not None:
            self._set_close_callback(None)
        if self.gone:
            if self.headers_sent:
                self.container._log(self.code, self.request)
            else:
                # Nothing was sent: the client left first (a load tester
                # closing its connections, a user giving up). Not a 500.
                request = self.request
                access_log.info(
                    "client left before the answer: %s %s (%s) %.2fms",
                    request.method,
                    request.uri,
                    request.remote_ip,
                    1000.0 * request.request_time(),
                )
            return
        error = self.send_error
        if error is not None and not isinstance(error, _ClientGone):
            # A block the worker did not wait for could not be sent (a body
            # for a 304, more than the Content-Length...).
            app_log.error(
                "WSGI response %s %s could not be sent",
                self.request.method,
                self.request.uri,
                exc_info=(type(error), error, error.__traceback__),
            )
            self.error = True
        try:
            if not self.error and not self.headers_sent:
                if self.head is None:
                    app_log.error(
                        "WSGI application did not call start_response: %s %s",
                        self.request.method,
                        self.request.uri,
                    )
                    self.error = True
                else:
                    start_line, headers = self._final_head(0)
                    connection.write_headers(start_line, headers)
            if self.error:
                if self.headers_sent:
                    # The status is out: all that is left is to cut the
                    # response short, so the client sees it incomplete.
                    self._abort()
                    self.container._log(self.code, self.request)
                    return
                self.code = 500
                body = _ERROR_BODY
                headers = httputil.HTTPHeaders(
                    {
                        "Content-Type": "text/html; charset=UTF-8",
                        "Content-Length": str(len(body)),
                        "Server": _SERVER,
                    }
                )
                self.headers_sent = True
                connection.write_headers(
                    httputil.ResponseStartLine("HTTP/1.1", 500, "Internal Server Error"),
                    headers,
                    body,
                )
            connection.finish()
        except httputil.HTTPOutputError:
            # A Content-Length the body did not match; the connection closes.
            app_log.error(
                "WSGI response %s %s did not match its headers",
                self.request.method,
                self.request.uri,
                exc_info=True,
            )
            self._abort()
        self.container._log(self.code, self.request)

    def _abort(self) -> None:
        stream = getattr(self.connection, "stream", None)
        if stream is not None:
            stream.close()


HTTPRequest = httputil.HTTPServerRequest
