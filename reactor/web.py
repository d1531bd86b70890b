"""The web framework: :class:`Application` routes requests to :class:`RequestHandler` subclasses.

Tornado's ``tornado.web`` API, on reactor's HTTP server::

    from reactor import ioloop, web

    class MainHandler(web.RequestHandler):
        def get(self):
            self.write("Hello, world")

    app = web.Application([(r"/", MainHandler)])
    app.listen(8888)
    ioloop.IOLoop.current().start()

How a request travels (the hot path, kept short on purpose):

1. :class:`Application` is a :class:`~reactor.routing.ReversibleRouter`, so an
   ``HTTPServer`` gives it each request's start line and headers; its rules
   (``(pattern, handler, kwargs, name)`` tuples or :class:`~reactor.routing.URLSpec`)
   choose a handler class, a literal path by string comparison and a
   pattern by one precompiled regex match.
2. A :class:`_HandlerDelegate` collects the body (or, for a handler marked
   :func:`stream_request_body`, passes it to ``data_received`` as it comes),
   then builds the handler and runs :meth:`RequestHandler._execute`.
3. ``_execute`` runs ``prepare`` and the HTTP method. A method that returns
   None (a plain ``def``) is finished without any coroutine, future or task;
   only an awaitable result (``async def``, ``gen.coroutine``) continues in a
   coroutine.
4. ``finish`` writes the status line, headers and body in one
   ``write_headers`` call; the response headers are built once per request
   from a prebuilt set (the ``Date`` string is made once per second).

Where things live: routing in :mod:`reactor.routing`, cookies, signed values
and XSRF in ``reactor._cookies`` (:class:`RequestHandler` inherits its
``CookieMixin``), the static file handler in ``reactor._static``, templates
in :mod:`reactor.template`, locales in :mod:`reactor.locale`.
"""

from __future__ import annotations

import datetime
import functools
import gzip
import hashlib
import io
import os.path
import re
import socket
import sys
import threading
import time
import traceback
import types
import urllib.parse
from collections.abc import Awaitable, Callable, Generator, Iterable
from http.client import responses as _http_responses
from logging import ERROR, INFO, WARNING
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

import reactor
from reactor import escape, gen
from reactor._cookies import (
    DEFAULT_SIGNED_VALUE_MIN_VERSION,
    DEFAULT_SIGNED_VALUE_VERSION,
    MAX_SUPPORTED_SIGNED_VALUE_VERSION,
    MIN_SUPPORTED_SIGNED_VALUE_VERSION,
    CookieMixin,
    create_signed_value,
    decode_signed_value,
    get_signature_key_version,
)
from reactor.concurrent import Future, future_set_result_unless_cancelled
from reactor.escape import _unicode, utf8
from reactor.httpserver import HTTPServer
from reactor.httputil import (
    HTTPConnection,
    HTTPHeaders,
    HTTPInputError,
    HTTPMessageDelegate,
    HTTPServerRequest,
    RequestStartLine,
    ResponseStartLine,
    format_timestamp,
    qs_to_qsl,
    url_concat,
)
from reactor.ioloop import _done_future
from reactor.iostream import IOStream, StreamClosedError
from reactor.log import access_log, app_log, gen_log
from reactor.netutil import _DEFAULT_BACKLOG
from reactor.routing import (
    AnyMatches,
    DefaultHostMatches,
    HostMatches,
    Matcher,
    PathMatches,
    ReversibleRouter,
    ReversibleRuleRouter,
    Rule,
    URLSpec,
    _RuleList,
)
from reactor.util import ObjectDict

if TYPE_CHECKING:
    from reactor.locale import Locale  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "DEFAULT_SIGNED_VALUE_MIN_VERSION",
    "DEFAULT_SIGNED_VALUE_VERSION",
    "MAX_SUPPORTED_SIGNED_VALUE_VERSION",
    "MIN_SUPPORTED_SIGNED_VALUE_VERSION",
    "Application",
    "ErrorHandler",
    "FallbackHandler",
    "Finish",
    "GZipContentEncoding",
    "HTTPError",
    "MissingArgumentError",
    "OutputTransform",
    "RedirectHandler",
    "RequestHandler",
    "StaticFileHandler",
    "TemplateModule",
    "UIModule",
    "URLSpec",
    "addslash",
    "authenticated",
    "create_signed_value",
    "decode_signed_value",
    "get_signature_key_version",
    "removeslash",
    "stream_request_body",
    "url",
]

url = URLSpec

_HeaderTypes = str | bytes | int | datetime.datetime

_SERVER = f"ReactorServer/{reactor.version}"

# reason-phrase = *( HTAB / SP / VCHAR / obs-text )  (RFC 9112 section 4)
_REASON_PHRASE = re.compile(r"[\t \x21-\x7e\x80-\xff]*")

# Control characters, which no header value may hold.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# In a log message made from client input, a CR or LF would let the client
# write a log line of its own (CWE-117), and an ESC (or a C1 control such as
# U+009B, CSI) drive the terminal that shows the log; U+0085, U+2028 and
# U+2029 end a line for str.splitlines and some log viewers.
_LOG_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _log_safe(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n``)."""
    return _LOG_UNSAFE.sub(lambda m: ascii(m.group())[1:-1], text)


_HTML_UTF8 = "text/html; charset=UTF-8"
_JSON_UTF8 = "application/json; charset=UTF-8"


class _DateCache:
    """The Date header's value, made once per second."""

    second = 0
    value = ""


def _http_date() -> str:
    second = int(time.time())
    if second != _DateCache.second:
        _DateCache.value = format_timestamp(second)
        _DateCache.second = second
    return _DateCache.value


def _default_headers() -> HTTPHeaders:
    """A response's starting headers, built without re-validating constants."""
    headers = HTTPHeaders.__new__(HTTPHeaders)
    date = _http_date()
    headers._combined = {"Server": _SERVER, "Content-Type": _HTML_UTF8, "Date": date}
    headers._as_list = {"Server": [_SERVER], "Content-Type": [_HTML_UTF8], "Date": [date]}
    return headers


class _ArgDefaultMarker:
    pass


_ARG_DEFAULT: Any = _ArgDefaultMarker()


def _unimplemented_method(self: RequestHandler, *args: str, **kwargs: str) -> None:
    raise HTTPError(405)


class RequestHandler(CookieMixin):
    """Base class for HTTP request handlers: subclass it and define
    ``get``, ``post``, ... (plain methods, ``async def`` or ``gen.coroutine``).

    A handler is made for each request (``initialize(**kwargs)`` gets the
    rule's keyword arguments), runs ``prepare``, then the method named by the
    request, then finishes the response unless the method did (or called
    :meth:`detach`). Outside the main flow: ``on_finish`` after the
    response, ``on_connection_close`` if the client goes away first.
    """

    SUPPORTED_METHODS: tuple[str, ...] = (
        "GET",
        "HEAD",
        "POST",
        "DELETE",
        "PATCH",
        "PUT",
        "OPTIONS",
    )

    _template_loaders: dict[str, Any] = {}  # template_path -> loader
    _template_loader_lock = threading.Lock()
    _remove_control_chars_regex = re.compile(r"[\x00-\x08\x0e-\x1f]")

    _stream_request_body = False

    # Will be set in _execute.
    _transforms: list[OutputTransform]
    path_args: list[str] = []
    path_kwargs: dict[str, str] = {}

    def __init__(self, application: Application, request: HTTPServerRequest, **kwargs: Any) -> None:
        super().__init__()
        self.application = application
        self.request = request
        self._headers_written = False
        self._finished = False
        self._auto_finish = True
        self._prepared_future: Future[None] | None = None
        self._new_cookie: Any = None  # CookieMixin's outgoing cookies (see _cookies)
        # The handler's own (the class's empty ones would be shared);
        # _execute fills them from the path.
        self.path_args = []
        self.path_kwargs = {}
        self.clear()
        assert request.connection is not None
        request.connection.set_close_callback(  # type: ignore[attr-defined]
            self.on_connection_close
        )
        if kwargs or type(self).initialize is not _BASE_INITIALIZE:
            self.initialize(**kwargs)

    def _initialize(self) -> None:
        pass

    initialize: Callable[..., None] = _initialize
    """Hook for subclass initialization; called for each request with the
    rule's keyword arguments (``(r"/user/(.*)", UserHandler, dict(db=db))``
    calls ``initialize(db=db)``)."""

    @property
    def settings(self) -> dict[str, Any]:
        """``self.application.settings``."""
        return self.application.settings

    head: Callable[..., Awaitable[None] | None] = _unimplemented_method
    get: Callable[..., Awaitable[None] | None] = _unimplemented_method
    post: Callable[..., Awaitable[None] | None] = _unimplemented_method
    delete: Callable[..., Awaitable[None] | None] = _unimplemented_method
    patch: Callable[..., Awaitable[None] | None] = _unimplemented_method
    put: Callable[..., Awaitable[None] | None] = _unimplemented_method
    options: Callable[..., Awaitable[None] | None] = _unimplemented_method

    def prepare(self) -> Awaitable[None] | None:
        """Called before the HTTP method, for every request; may be
        ``async``. Calling :meth:`finish` (or :meth:`redirect`, :meth:`send_error`)
        here ends the request without the method running."""
        return None

    def on_finish(self) -> None:
        """Called after the response has been sent (for cleanup, logging)."""

    def on_connection_close(self) -> None:
        """Called when the client closes the connection before the response
        is finished (a long poll's client went away). Not called for a
        connection closed after the response; it may also not be called if
        the close goes unnoticed until the next write.
        """
        if _has_stream_request_body(type(self)):
            body_future: Future[None] = self.request._body_future  # type: ignore[attr-defined]
            if not body_future.done():
                body_future.set_exception(StreamClosedError())
                body_future.exception()

    # -- the response's status and headers ------------------------------------------

    def clear(self) -> None:
        """Reset the headers (to the defaults, ``set_default_headers`` included),
        the output buffer and the status (200)."""
        self._headers = _default_headers()
        if type(self).set_default_headers is not _BASE_SET_DEFAULT_HEADERS:
            self.set_default_headers()
        self._write_buffer: list[bytes] = []
        self._status_code = 200
        self._reason = "OK"

    def set_default_headers(self) -> None:
        """Override to set headers on every response (including error pages),
        e.g. a ``Server`` of your own: called at the start and by :meth:`clear`."""

    def set_status(self, status_code: int, reason: str | None = None) -> None:
        """Set the response's status code, and its reason phrase (by default
        the standard one, ``Unknown`` for an unknown code). A reason phrase
        with a control character or ``<`` is replaced by ``Unknown``."""
        self._status_code = status_code
        if reason is not None:
            if "<" in reason or not _REASON_PHRASE.fullmatch(reason):
                # Replaced, not refused: error paths set reasons too. The
                # "<" check is defence in depth for the error page.
                reason = "Unknown"
            self._reason = reason
        else:
            self._reason = _http_responses.get(status_code, "Unknown")

    def get_status(self) -> int:
        """The response's status code."""
        return self._status_code

    def set_header(self, name: str, value: _HeaderTypes) -> None:
        """Set a response header (replacing any value it had). ``value``: a
        str, bytes (latin-1), int, or datetime (an HTTP date). A value with a
        control character (CR, LF, ...) or a character that Latin-1 cannot
        carry raises ValueError."""
        if type(value) is str and value.isascii() and value.isprintable():
            self._headers[name] = value  # the common case, checked already
        else:
            self._headers[name] = self._convert_header_value(value)

    def add_header(self, name: str, value: _HeaderTypes) -> None:
        """Add a response header value (``Set-Cookie``-like headers may repeat)."""
        self._headers.add(name, self._convert_header_value(value))

    def clear_header(self, name: str) -> None:
        """Remove a response header (``set_header`` made or a default)."""
        if name in self._headers:
            del self._headers[name]

    # Controls (response splitting, CWE-113) and anything Latin-1 cannot
    # carry, which could not be sent at all (RFC 9110 section 5.5).
    _INVALID_HEADER_CHAR_RE = re.compile(r"[\x00-\x1f\x7f\u0100-\U0010ffff]")

    def _convert_header_value(self, value: _HeaderTypes) -> str:
        # bool is an int: checked first, as Tornado does not stringify it specially.
        if isinstance(value, str):
            retval = value
        elif isinstance(value, bytes):
            # Latin-1 is the charset of HTTP headers (RFC 9110 section 5.5).
            retval = value.decode("latin1")
        elif isinstance(value, int):
            return str(value)
        elif isinstance(value, datetime.datetime):
            return format_timestamp(value)
        else:
            raise TypeError(f"Unsupported header value {value!r}")
        # Response splitting: a CR or LF would start a header of the
        # client's choosing (CWE-113); a character above U+00FF would fail
        # only when the headers are sent, after the handler is done.
        if RequestHandler._INVALID_HEADER_CHAR_RE.search(retval):
            raise ValueError(f"Unsafe header value {retval!r}")
        return retval

    # -- arguments -----------------------------------------------------------------

    @overload
    def get_argument(self, name: str, default: str, strip: bool = True) -> str: ...

    @overload
    def get_argument(
        self, name: str, default: _ArgDefaultMarker = _ARG_DEFAULT, strip: bool = True
    ) -> str: ...

    @overload
    def get_argument(self, name: str, default: None, strip: bool = True) -> str | None: ...

    def get_argument(
        self, name: str, default: str | _ArgDefaultMarker | None = _ARG_DEFAULT, strip: bool = True
    ) -> str | None:
        """The last value of the query or body argument ``name``, decoded
        (:meth:`decode_argument`), control characters replaced by spaces,
        stripped unless ``strip=False``. Without it: ``default`` if given,
        else :class:`MissingArgumentError` (a 400 naming the argument)."""
        return self._get_argument(name, default, self.request.arguments, strip)

    def get_arguments(self, name: str, strip: bool = True) -> list[str]:
        """Every value of argument ``name`` (query and body), [] if none."""
        # A str in strip's place is get_argument's default by mistake.
        assert isinstance(strip, bool)
        return self._get_arguments(name, self.request.arguments, strip)

    @overload
    def get_body_argument(self, name: str, default: str, strip: bool = True) -> str: ...

    @overload
    def get_body_argument(
        self, name: str, default: _ArgDefaultMarker = _ARG_DEFAULT, strip: bool = True
    ) -> str: ...

    @overload
    def get_body_argument(self, name: str, default: None, strip: bool = True) -> str | None: ...

    def get_body_argument(
        self, name: str, default: str | _ArgDefaultMarker | None = _ARG_DEFAULT, strip: bool = True
    ) -> str | None:
        """As :meth:`get_argument`, from the request body only."""
        return self._get_argument(name, default, self.request.body_arguments, strip)

    def get_body_arguments(self, name: str, strip: bool = True) -> list[str]:
        """As :meth:`get_arguments`, from the request body only."""
        return self._get_arguments(name, self.request.body_arguments, strip)

    @overload
    def get_query_argument(self, name: str, default: str, strip: bool = True) -> str: ...

    @overload
    def get_query_argument(
        self, name: str, default: _ArgDefaultMarker = _ARG_DEFAULT, strip: bool = True
    ) -> str: ...

    @overload
    def get_query_argument(self, name: str, default: None, strip: bool = True) -> str | None: ...

    def get_query_argument(
        self, name: str, default: str | _ArgDefaultMarker | None = _ARG_DEFAULT, strip: bool = True
    ) -> str | None:
        """As :meth:`get_argument`, from the query string only."""
        return self._get_argument(name, default, self.request.query_arguments, strip)

    def get_query_arguments(self, name: str, strip: bool = True) -> list[str]:
        """As :meth:`get_arguments`, from the query string only."""
        return self._get_arguments(name, self.request.query_arguments, strip)

    def _get_argument(
        self,
        name: str,
        default: str | _ArgDefaultMarker | None,
        source: dict[str, list[bytes]],
        strip: bool = True,
    ) -> str | None:
        args = self._get_arguments(name, source, strip=strip)
        if not args:
            if isinstance(default, _ArgDefaultMarker):
                raise MissingArgumentError(name)
            return default
        return args[-1]

    def _get_arguments(
        self, name: str, source: dict[str, list[bytes]], strip: bool = True
    ) -> list[str]:
        values = []
        for v in source.get(name, ()):
            s: Any = self.decode_argument(v, name=name)
            if isinstance(s, str):
                # Control characters become spaces (a subclass's
                # decode_argument may keep bytes: those are left alone).
                s = RequestHandler._remove_control_chars_regex.sub(" ", s)
            if strip:
                s = s.strip()
            values.append(s)
        return values

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        """Decode an argument (percent-decoded bytes) to str: UTF-8, and a
        400 for bytes that are not. Used for query and body arguments and for
        the groups of the URL pattern (``name`` None for positional ones);
        override for another charset, or to keep bytes."""
        try:
            return _unicode(value)
        except UnicodeDecodeError:
            raise HTTPError(
                400, "Invalid unicode in {}: {!r}".format(name or "url", value[:40])
            ) from None

    # -- writing the response --------------------------------------------------------

    def redirect(self, url: str, permanent: bool = False, status: int | None = None) -> None:
        """Redirect to ``url`` (absolute or relative) and finish: 302, or 301
        with ``permanent``, or ``status`` (3xx)."""
        if self._headers_written:
            raise Exception("Cannot redirect after headers have been written")
        if status is None:
            status = 301 if permanent else 302
        elif not (isinstance(status, int) and 300 <= status <= 399):
            raise ValueError(f"a redirect's status is 3xx, not {status!r}")
        self.set_status(status)
        self.set_header("Location", utf8(url))
        self.finish()

    def write(self, chunk: str | bytes | dict[str, Any]) -> None:
        """Add ``chunk`` to the output buffer: bytes, str (UTF-8), or a dict,
        sent as JSON with ``Content-Type: application/json`` (call
        ``set_header`` after to change it). A list is refused (TypeError):
        a JSON array at the top level could be read by another site's
        script (JSON hijacking); wrap it in a dict."""
        if self._finished:
            raise RuntimeError("Cannot write() after finish()")
        if type(chunk) is bytes:
            self._write_buffer.append(chunk)
            return
        if isinstance(chunk, str):
            self._write_buffer.append(chunk.encode("utf-8"))
            return
        if isinstance(chunk, dict):
            self.set_header("Content-Type", _JSON_UTF8)
            self._write_buffer.append(escape.json_encode(chunk).encode("utf-8"))
            return
        if isinstance(chunk, bytes):
            self._write_buffer.append(bytes(chunk))
            return
        message = "write() only accepts bytes, unicode, and dict objects"
        if isinstance(chunk, list):
            message += (
                ". Lists not accepted for security reasons (a top-level JSON array can be "
                "read across sites); wrap the list in a dict"
            )
        raise TypeError(message)

    def render(self, template_name: str, **kwargs: Any) -> Future[None]:
        """Render the template ``template_name`` with ``kwargs`` (and
        :meth:`get_template_namespace`) and finish with it. The CSS and
        JavaScript of the UI modules it used go before ``</head>`` and
        ``</body>``."""
        if self._finished:
            raise RuntimeError("Cannot render() after finish()")
        html = self.render_string(template_name, **kwargs)

        js_embed: list[bytes] = []
        js_files: list[str] = []
        css_embed: list[bytes] = []
        css_files: list[str] = []
        html_heads: list[bytes] = []
        html_bodies: list[bytes] = []
        for module in getattr(self, "_active_modules", {}).values():
            embed_part = module.embedded_javascript()
            if embed_part:
                js_embed.append(utf8(embed_part))
            file_part = module.javascript_files()
            if file_part:
                if isinstance(file_part, (str, bytes)):
                    js_files.append(_unicode(file_part))
                else:
                    js_files.extend(file_part)
            embed_part = module.embedded_css()
            if embed_part:
                css_embed.append(utf8(embed_part))
            file_part = module.css_files()
            if file_part:
                if isinstance(file_part, (str, bytes)):
                    css_files.append(_unicode(file_part))
                else:
                    css_files.extend(file_part)
            head_part = module.html_head()
            if head_part:
                html_heads.append(utf8(head_part))
            body_part = module.html_body()
            if body_part:
                html_bodies.append(utf8(body_part))

        if js_files:
            html = _insert_before(html, b"</body>", utf8(self.render_linked_js(js_files)) + b"\n")
        if js_embed:
            html = _insert_before(html, b"</body>", self.render_embed_js(js_embed) + b"\n")
        if css_files:
            html = _insert_before(
                html, b"</head>", utf8(self.render_linked_css(css_files)) + b"\n", first=True
            )
        if css_embed:
            html = _insert_before(html, b"</head>", self.render_embed_css(css_embed) + b"\n", True)
        if html_heads:
            html = _insert_before(html, b"</head>", b"".join(html_heads) + b"\n", first=True)
        if html_bodies:
            html = _insert_before(html, b"</body>", b"".join(html_bodies) + b"\n")
        return self.finish(html)

    def render_linked_js(self, js_files: Iterable[str]) -> str:
        """``<script src=...>`` tags for ``js_files`` (relative ones through
        :meth:`static_url`), each once; override to change the markup."""
        return "".join(
            '<script src="' + escape.xhtml_escape(p) + '" type="text/javascript"></script>'
            for p in self._unique_urls(js_files)
        )

    def render_embed_js(self, js_embed: Iterable[bytes]) -> bytes:
        """A ``<script>`` block holding the UI modules' embedded JavaScript."""
        return (
            b'<script type="text/javascript">\n//<![CDATA[\n'
            + b"\n".join(js_embed)
            + b"\n//]]>\n</script>"
        )

    def render_linked_css(self, css_files: Iterable[str]) -> str:
        """``<link rel="stylesheet">`` tags for ``css_files``, each once."""
        return "".join(
            '<link href="' + escape.xhtml_escape(p) + '" type="text/css" rel="stylesheet"/>'
            for p in self._unique_urls(css_files)
        )

    def render_embed_css(self, css_embed: Iterable[bytes]) -> bytes:
        """A ``<style>`` block holding the UI modules' embedded CSS."""
        return b'<style type="text/css">\n' + b"\n".join(css_embed) + b"\n</style>"

    def _unique_urls(self, paths: Iterable[str]) -> list[str]:
        urls: list[str] = []
        seen: set[str] = set()
        for path in paths:
            if not is_absolute(path):
                path = self.static_url(path)
            if path not in seen:
                urls.append(path)
                seen.add(path)
        return urls

    def render_string(self, template_name: str, **kwargs: Any) -> bytes:
        """The template ``template_name`` rendered with the namespace and
        ``kwargs``. Templates are looked up in the ``template_path`` setting
        (:meth:`get_template_path`), else beside the file of the calling code;
        one loader per directory, shared by all handlers."""
        template_path = self.get_template_path()
        if not template_path:
            frame = sys._getframe(0)
            web_file = frame.f_code.co_filename
            while frame.f_code.co_filename == web_file and frame.f_back is not None:
                frame = frame.f_back
            template_path = os.path.dirname(frame.f_code.co_filename)
        with RequestHandler._template_loader_lock:
            loader = RequestHandler._template_loaders.get(template_path)
            if loader is None:
                loader = self.create_template_loader(template_path)
                RequestHandler._template_loaders[template_path] = loader
        template = loader.load(template_name)
        namespace = self.get_template_namespace()
        namespace.update(kwargs)
        return cast(bytes, template.generate(**namespace))

    def get_template_namespace(self) -> dict[str, Any]:
        """The names every template sees: ``handler``, ``request``,
        ``current_user``, ``locale``, ``_`` (translate), ``pgettext``,
        ``static_url``, ``xsrf_form_html``, ``reverse_url``, and the UI methods
        and modules (``modules``). Override to add your own."""
        locale = self.locale
        namespace = {
            "handler": self,
            "request": self.request,
            "current_user": self.current_user,
            "locale": locale,
            "_": locale.translate,
            "pgettext": locale.pgettext,
            "static_url": self.static_url,
            "xsrf_form_html": self.xsrf_form_html,
            "reverse_url": self.reverse_url,
        }
        namespace.update(self.ui)
        return namespace

    def create_template_loader(self, template_path: str) -> Any:
        """The loader for ``template_path``: the ``template_loader`` setting
        if given, else a :class:`reactor.template.Loader` with the
        ``autoescape`` and ``template_whitespace`` settings."""
        settings = self.application.settings
        if "template_loader" in settings:
            return settings["template_loader"]
        # The template engine is loaded on first use.
        from reactor import template  # type: ignore[attr-defined, unused-ignore]

        kwargs = {}
        if "autoescape" in settings:
            # None means "no autoescaping", so it is passed on as given.
            kwargs["autoescape"] = settings["autoescape"]
        if "template_whitespace" in settings:
            kwargs["whitespace"] = settings["template_whitespace"]
        return template.Loader(template_path, **kwargs)

    def flush(self, include_footers: bool = False) -> Future[None]:
        """Send what is buffered (the headers first, the first time).

        The future resolves when the kernel has the data: await it to
        write at the pace the client reads."""
        assert self.request.connection is not None
        chunk = b"".join(self._write_buffer)
        self._write_buffer = []
        if not self._headers_written:
            self._headers_written = True
            for transform in self._transforms:
                self._status_code, self._headers, chunk = transform.transform_first_chunk(
                    self._status_code, self._headers, chunk, include_footers
                )
            if self.request.method == "HEAD":
                chunk = b""  # the headers describe the body; it is not sent
            new_cookie = self._new_cookie
            if new_cookie is not None:
                # Kept aside until now so that a cookie may be set twice and
                # go out once (see reactor._cookies).
                for cookie in new_cookie.values():
                    self.add_header("Set-Cookie", cookie.OutputString(None))
            start_line = ResponseStartLine("", self._status_code, self._reason)
            return self.request.connection.write_headers(start_line, self._headers, chunk)
        if not chunk and self._finished:
            return _done_future()  # nothing left to send, as in Tornado (on_finish may flush)
        for transform in self._transforms:
            chunk = transform.transform_chunk(chunk, include_footers)
        if self.request.method != "HEAD":
            return self.request.connection.write(chunk)
        return _done_future()

    def finish(self, chunk: str | bytes | dict[str, Any] | None = None) -> Future[None]:
        """Finish the response (writing ``chunk`` first, if given).

        For a 200 answer to GET or HEAD without an ``Etag``, sets one
        (:meth:`compute_etag`) and answers 304 without a body when the
        request's ``If-None-Match`` matches. Sets ``Content-Length``
        unless the body was flushed in pieces. Returns a future that
        resolves when the kernel has the last byte."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        if chunk is not None:
            self.write(chunk)
        status = self._status_code
        if not self._headers_written:
            # Membership by the normalized names, read straight from the
            # headers' table: this runs for every response.
            fields = self._headers._as_list
            if status == 200 and "Etag" not in fields and self.request.method in ("GET", "HEAD"):
                cls = type(self)
                if (
                    cls.compute_etag is _BASE_COMPUTE_ETAG
                    and cls.set_etag_header is _BASE_SET_ETAG_HEADER
                    and cls.check_etag_header is _BASE_CHECK_ETAG_HEADER
                ):
                    # What the three default methods do, without their calls.
                    buffer = self._write_buffer
                    if len(buffer) == 1:
                        digest = hashlib.sha1(buffer[0]).hexdigest()
                    else:
                        hasher = hashlib.sha1()
                        for part in buffer:
                            hasher.update(part)
                        digest = hasher.hexdigest()
                    etag = f'"{digest}"'
                    self._headers._combined["Etag"] = etag  # hex digits: nothing to check
                    fields["Etag"] = [etag]
                    request_headers: Any = self.request.headers
                    if type(request_headers) is HTTPHeaders:
                        request_headers = request_headers._as_list  # no name normalizing
                    not_modified = "If-None-Match" in request_headers and self.check_etag_header()
                else:
                    self.set_etag_header()
                    not_modified = self.check_etag_header()
                if not_modified:
                    self._write_buffer = []
                    self.set_status(304)
                    status = 304
            if status in (204, 304) or 100 <= status < 200:
                if self._write_buffer and any(self._write_buffer):
                    raise RuntimeError(f"Cannot send body with {status}")
                self._clear_representation_headers()
            elif "Content-Length" not in fields:
                buffer = self._write_buffer
                length = str(len(buffer[0]) if len(buffer) == 1 else sum(map(len, buffer)))
                self._headers._combined["Content-Length"] = length  # digits: nothing to check
                fields["Content-Length"] = [length]
        connection = self.request.connection
        assert connection is not None
        connection.set_close_callback(None)  # type: ignore[attr-defined]
        future = self.flush(include_footers=True)
        connection.finish()
        self.application.log_request(self)  # (_log, inline)
        self._finished = True
        if type(self).on_finish is not _BASE_ON_FINISH:
            self.on_finish()
        self.__dict__.pop("ui", None)  # (_break_cycles, inline)
        return future

    def detach(self) -> IOStream:
        """Take the connection's stream over (WebSocket-like protocols);
        the handler is finished and sends nothing more."""
        self._finished = True
        return self.request.connection.detach()  # type: ignore[union-attr, no-any-return]

    def _break_cycles(self) -> None:
        # The ui namespace refers to the handler; let reference counting free it.
        self.__dict__.pop("ui", None)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Answer with the error page for ``status_code`` (:meth:`write_error`),
        discarding unflushed output. After a flush, only ends the response.
        ``kwargs`` go to ``write_error`` (``exc_info`` for an exception;
        ``reason`` for the status line)."""
        if self._headers_written:
            gen_log.error("Cannot send error response after headers written")
            if not self._finished:
                self._abort_response()
            return
        self.clear()
        reason = kwargs.get("reason")
        if "exc_info" in kwargs:
            exception = kwargs["exc_info"][1]
            if isinstance(exception, HTTPError) and exception.reason:
                reason = exception.reason
        self.set_status(status_code, reason=reason)
        if status_code == 405:
            # RFC 9110 section 15.5.6: a 405 names the methods that are allowed.
            self.set_header("Allow", ", ".join(_allowed_methods(type(self))))
        try:
            if status_code != 304:
                self.write_error(status_code, **kwargs)
        except Exception:
            app_log.error("Uncaught exception in write_error", exc_info=True)
        if not self._finished:
            self.finish()

    def _abort_response(self) -> None:
        """End a response whose headers are out by closing the connection.

        A body cut short must not look complete to the client (RFC 9112
        section 8): ending it (a last empty chunk, or a Content-Length
        padded out) would pass a truncated page off as the whole one.
        """
        connection = self.request.connection
        stream = getattr(connection, "stream", None)
        if stream is None:
            try:
                self.finish()
            except Exception:
                gen_log.error("Failed to flush partial response", exc_info=True)
            return
        connection.set_close_callback(None)  # type: ignore[union-attr]
        stream.close()
        self._finished = True
        self._log()
        self.on_finish()
        self._break_cycles()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Write the error page; override for your own (it may ``write``,
        ``render``, ``set_header``...). For an exception (``HTTPError``
        included), ``kwargs["exc_info"]`` is its ``(type, value, traceback)``.
        The default page is a line of HTML; with the ``serve_traceback``
        setting, the traceback as text instead."""
        if self._status_code in (204, 304) or 100 <= self._status_code < 200:
            self.finish()
        elif self.settings.get("serve_traceback") and "exc_info" in kwargs:
            self.set_header("Content-Type", "text/plain")
            for line in traceback.format_exception(*kwargs["exc_info"]):
                self.write(line)
            self.finish()
        else:
            message = self._reason
            exc = kwargs.get("exc_info", (None, None))[1]
            if isinstance(exc, MissingArgumentError):
                # Safe to show: the client chose the name.
                message = f"{message} (missing argument {exc.arg_name})"
            message = escape.xhtml_escape(message)
            self.finish(
                f"<html><title>{status_code}: {message}</title>"
                f"<body>{status_code}: {message}</body></html>"
            )

    # -- users and locales -----------------------------------------------------------

    @property
    def locale(self) -> Locale:
        """The request's locale: :meth:`get_user_locale`, else
        :meth:`get_browser_locale`. Settable."""
        if not hasattr(self, "_locale"):
            loc = self.get_user_locale()
            if loc is not None:
                self._locale = loc
            else:
                self._locale = self.get_browser_locale()
                assert self._locale
        return self._locale

    @locale.setter
    def locale(self, value: Locale) -> None:
        self._locale = value

    def get_user_locale(self) -> Locale | None:
        """Override to choose the locale (a user's preference); None means
        "ask the browser" (:meth:`get_browser_locale`)."""
        return None

    def get_browser_locale(self, default: str = "en_US") -> Locale:
        """The locale the ``Accept-Language`` header prefers (by its
        ``q=`` weights), else ``default``."""
        from reactor import locale  # loaded with the first handler that asks

        header = self.request.headers.get("Accept-Language")
        if header:
            weighted: list[tuple[str, float]] = []
            for language in header.split(","):
                parts = language.strip().split(";")
                score = 1.0
                if len(parts) > 1 and parts[1].strip().startswith("q="):
                    try:
                        score = float(parts[1].strip()[2:])
                    except ValueError:
                        score = 0.0
                    if score < 0:
                        score = 0.0
                if score > 0:  # (false for nan too)
                    weighted.append((parts[0], score))
            if weighted:
                weighted.sort(key=lambda pair: pair[1], reverse=True)
                return locale.get(*[code for code, _ in weighted])
        return locale.get(default)

    @property
    def current_user(self) -> Any:
        """The logged-in user (:meth:`get_current_user`, asked once per
        request); settable, e.g. from an ``async`` :meth:`prepare`."""
        if not hasattr(self, "_current_user"):
            self._current_user = self.get_current_user()
        return self._current_user

    @current_user.setter
    def current_user(self, value: Any) -> None:
        self._current_user = value

    def get_current_user(self) -> Any:
        """Override to say who is logged in (e.g. from a signed cookie);
        None (the default) means nobody."""
        return None

    def get_login_url(self) -> str:
        """Where :func:`authenticated` sends anonymous users: the
        ``login_url`` setting."""
        self.require_setting("login_url", "@reactor.web.authenticated")
        return cast(str, self.application.settings["login_url"])

    def get_template_path(self) -> str | None:
        """Where templates are looked up: the ``template_path`` setting."""
        return self.application.settings.get("template_path")

    # -- URLs ------------------------------------------------------------------------

    def static_url(self, path: str, include_host: bool | None = None, **kwargs: Any) -> str:
        """The URL of static file ``path`` (relative to ``static_path``),
        with ``?v=`` its content hash so that it may be cached for long.
        ``include_host``: absolute (``protocol://host/...``); the handler's
        ``include_host`` attribute is the default."""
        self.require_setting("static_path", "static_url")
        make_static_url = self.settings.get(
            "static_handler_class", _static_handler()
        ).make_static_url
        if include_host is None:
            include_host = getattr(self, "include_host", False)
        base = self.request.protocol + "://" + self.request.host if include_host else ""
        return base + cast(str, make_static_url(self.settings, path, **kwargs))

    def require_setting(self, name: str, feature: str = "this feature") -> None:
        """Raise unless the application has setting ``name``."""
        if not self.application.settings.get(name):
            raise Exception(
                f"You must define the '{name}' setting in your application to use {feature}"
            )

    def reverse_url(self, name: str, *args: Any) -> str:
        """``self.application.reverse_url``."""
        return self.application.reverse_url(name, *args)

    # -- ETags -----------------------------------------------------------------------

    def compute_etag(self) -> str | None:
        """The response's ETag: a hash of the body (override to use a
        version, or return None for none)."""
        buffer = self._write_buffer
        if len(buffer) == 1:
            digest = hashlib.sha1(buffer[0]).hexdigest()  # one call: the common case
        else:
            hasher = hashlib.sha1()
            for part in buffer:
                hasher.update(part)
            digest = hasher.hexdigest()
        return f'"{digest}"'

    def set_etag_header(self) -> None:
        """Set the ``Etag`` header from :meth:`compute_etag`."""
        etag = self.compute_etag()
        if etag is not None:
            self.set_header("Etag", etag)

    _ETAGS = re.compile(rb'\*|(?:W/)?"[^"]*"')

    def check_etag_header(self) -> bool:
        """Whether the ``Etag`` set matches the request's ``If-None-Match``
        (weak comparison, RFC 9110 section 13.1.2; ``*`` matches any)."""
        if_none_match = self.request.headers.get("If-None-Match")
        if not if_none_match:
            return False
        computed_etag = utf8(self._headers.get("Etag", ""))
        etags = self._ETAGS.findall(utf8(if_none_match))
        if not computed_etag or not etags:
            return False
        if etags[0] == b"*":
            return True
        wanted = computed_etag[2:] if computed_etag.startswith(b"W/") else computed_etag
        return any((etag[2:] if etag.startswith(b"W/") else etag) == wanted for etag in etags)

    # -- running the request ---------------------------------------------------------

    def _execute(
        self, transforms: list[OutputTransform], *args: bytes | None, **kwargs: bytes | None
    ) -> Future[None] | None:
        """Run the request: prepare, then the method, then finish.

        Returns None when it ran to its end without waiting (a plain
        ``def`` method), else a future of the coroutine that continues it.
        Every exception is answered (:meth:`send_error`) and logged here.
        """
        self._transforms = transforms
        try:
            method = self.request.method
            if method not in self.SUPPORTED_METHODS:
                raise HTTPError(405)
            if args:
                self.path_args = [self.decode_argument(arg) for arg in args]  # type: ignore[arg-type]
            if kwargs:
                self.path_kwargs = {
                    k: self.decode_argument(v, name=k)  # type: ignore[arg-type]
                    for k, v in kwargs.items()
                }
            if method not in ("GET", "HEAD", "OPTIONS"):
                self._cross_origin_protection()  # XSRF checks, see reactor._cookies
            result = self.prepare()
            if result is not None:
                return self._continue_async(result, True)
            if self._prepared_future is not None:
                # Body chunks may come now (stream_request_body).
                future_set_result_unless_cancelled(self._prepared_future, None)
            if self._finished:
                return None
            if self._stream_request_body:
                return self._continue_async(None, False)
            result = getattr(self, method.lower())(*self.path_args, **self.path_kwargs)
            if result is not None:
                return self._continue_async(result, False, after_method=True)
            if self._auto_finish and not self._finished:
                self.finish()
        except Exception as e:
            self._execute_failed(e)
        return None

    def _continue_async(
        self, awaitable: Any, in_prepare: bool, after_method: bool = False
    ) -> Future[None]:
        return gen.convert_yielded(self._execute_rest(awaitable, in_prepare, after_method))

    async def _execute_rest(self, awaitable: Any, in_prepare: bool, after_method: bool) -> None:
        """The rest of :meth:`_execute`, from the first thing it awaits."""
        try:
            if awaitable is not None:
                await awaitable
                awaitable = None
            if not after_method:
                if in_prepare:
                    if self._prepared_future is not None:
                        future_set_result_unless_cancelled(self._prepared_future, None)
                    if self._finished:
                        return
                if self._stream_request_body:
                    try:
                        await self.request._body_future  # type: ignore[attr-defined]
                    except StreamClosedError:
                        return
                assert self.request.method is not None
                result = getattr(self, self.request.method.lower())(
                    *self.path_args, **self.path_kwargs
                )
                if result is not None:
                    await result
            if self._auto_finish and not self._finished:
                self.finish()
        except Exception as e:
            self._execute_failed(e)
        finally:
            if self._prepared_future is not None and not self._prepared_future.done():
                self._prepared_future.set_result(None)

    def _execute_failed(self, e: Exception) -> None:
        try:
            self._handle_request_exception(e)
        except Exception:
            app_log.error("Exception in exception handler", exc_info=True)
        if self._prepared_future is not None and not self._prepared_future.done():
            # Unblock the connection (it waits for prepare before the body).
            self._prepared_future.set_result(None)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """With :func:`stream_request_body`: a piece of the body (may be
        ``async``: the next piece waits for it)."""
        raise NotImplementedError()

    def _log(self) -> None:
        self.application.log_request(self)

    def _request_summary(self) -> str:
        return f"{self.request.method} {self.request.uri} ({self.request.remote_ip})"

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, Finish):
            if not self._finished:
                self.finish(*e.args)
            return
        if isinstance(e, HTTPInputError):
            # The client's request, found bad only when the handler read it
            # (the query string is parsed on first use: too many fields):
            # a 400, as Tornado answers it on the headers, not a 500.
            try:
                raise HTTPError(400, "%s", e) from e
            except HTTPError as error:
                self._handle_request_exception(error)
            return
        try:
            self.log_exception(*sys.exc_info())
        except Exception:
            # Still answer, or the connection would hang.
            app_log.error("Error in exception logger", exc_info=True)
        if self._finished:
            return  # already answered: logging is all that is left
        if isinstance(e, HTTPError):
            self.send_error(e.status_code, exc_info=sys.exc_info())
        else:
            self.send_error(500, exc_info=sys.exc_info())

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Log an exception the handler raised: an :class:`HTTPError` as a
        warning without traceback (if it has a log message), anything else
        as an error with its traceback. Override to change that.

        The message's control characters are logged as escapes: its
        arguments are often the client's (a path, an argument), and a CR
        or LF in them would forge a log line."""
        if isinstance(value, HTTPError):
            log_message = value.get_message()
            if log_message:
                gen_log.warning(
                    "%d %s: %s", value.status_code, self._request_summary(), _log_safe(log_message)
                )
        else:
            app_log.error(
                "Uncaught exception %s\n%r",
                self._request_summary(),
                self.request,
                exc_info=(typ, value, tb),  # type: ignore[arg-type]
            )

    # -- UI modules and methods ------------------------------------------------------

    @functools.cached_property
    def ui(self) -> ObjectDict:
        """The UI methods (bound to this handler) and ``modules``
        (``_tt_modules``) that templates see."""
        ui = ObjectDict(
            (name, self._ui_method(method)) for name, method in self.application.ui_methods.items()
        )
        ui["_tt_modules"] = ui["modules"] = _UIModuleNamespace(self, self.application.ui_modules)
        return ui

    def _ui_module(self, name: str, module: type[UIModule]) -> Callable[..., str]:
        def render(*args: Any, **kwargs: Any) -> str:
            active = self.__dict__.setdefault("_active_modules", {})
            if name not in active:
                active[name] = module(self)
            return cast(str, _unicode(active[name].render(*args, **kwargs)))

        return render

    def _ui_method(self, method: Callable[..., str]) -> Callable[..., str]:
        return lambda *args, **kwargs: method(self, *args, **kwargs)

    def _clear_representation_headers(self) -> None:
        # A 304 carries no representation metadata (RFC 9110 section 15.4.5),
        # beyond what it may repeat (ETag, Cache-Control, Date, ...).
        for name in ("Content-Encoding", "Content-Language", "Content-Type"):
            self.clear_header(name)


# The base class's no-op hooks. The hot path skips a hook (or does its work
# inline) when the handler's class has not overridden it: a Python call
# costs more than the check. (A hook set on an instance is not seen; Tornado
# applications override hooks in classes.)
_BASE_INITIALIZE = RequestHandler.initialize
_BASE_ON_FINISH = RequestHandler.on_finish
_BASE_SET_DEFAULT_HEADERS = RequestHandler.set_default_headers
_BASE_COMPUTE_ETAG = RequestHandler.compute_etag
_BASE_SET_ETAG_HEADER = RequestHandler.set_etag_header
_BASE_CHECK_ETAG_HEADER = RequestHandler.check_etag_header


def _insert_before(html: bytes, marker: bytes, part: bytes, first: bool = False) -> bytes:
    where = html.find(marker) if first else html.rfind(marker)
    if where < 0:
        return html + part  # no such tag: append, rather than lose the part
    return html[:where] + part + html[where:]


def _allowed_methods(cls: type[RequestHandler]) -> tuple[str, ...]:
    """The methods of SUPPORTED_METHODS that ``cls`` implements."""
    return tuple(
        method
        for method in cls.SUPPORTED_METHODS
        if getattr(cls, method.lower(), _unimplemented_method) is not _unimplemented_method
    )


_RequestHandlerType = TypeVar("_RequestHandlerType", bound=RequestHandler)


def stream_request_body(cls: type[_RequestHandlerType]) -> type[_RequestHandlerType]:
    """Class decorator: the handler gets the body piece by piece.

    ``prepare`` runs once the headers have arrived (it may refuse the
    request, or raise the size limit with
    ``self.request.connection.set_max_body_size(n)``); then
    ``data_received(chunk)`` for each piece (its awaitable, if any, holds
    the next); then the HTTP method, with ``self.request.body`` empty.
    """
    if not (isinstance(cls, type) and issubclass(cls, RequestHandler)):
        raise TypeError(f"expected subclass of RequestHandler, got {cls!r}")
    cls._stream_request_body = True
    return cls


def _has_stream_request_body(cls: type[RequestHandler]) -> bool:
    if not (isinstance(cls, type) and issubclass(cls, RequestHandler)):
        raise TypeError(f"expected subclass of RequestHandler, got {cls!r}")
    return cls._stream_request_body


_Method = Callable[..., Awaitable[None] | None]


def _is_protocol_relative(path: str) -> bool:
    # "//host/..." (or "/\host", which browsers treat alike) as a Location
    # would send the client to another host: CVE-2023-28370's class.
    return path.startswith(("//", "/\\"))


def removeslash(method: _Method) -> _Method:
    """Decorator: redirect ``/foo/`` to ``/foo`` (GET and HEAD; 404
    otherwise). Route with a pattern like ``r"/foo/*"``."""

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Awaitable[None] | None:
        if self.request.path.endswith("/"):
            if self.request.method not in ("GET", "HEAD"):
                raise HTTPError(404)
            uri = self.request.path.rstrip("/")
            if _is_protocol_relative(uri):
                raise HTTPError(403, "cannot redirect path with two initial slashes")
            if uri:  # "/" stays "/"
                if self.request.query:
                    uri += "?" + self.request.query
                self.redirect(uri, permanent=True)
                return None
        return method(self, *args, **kwargs)

    return wrapper


def addslash(method: _Method) -> _Method:
    """Decorator: redirect ``/foo`` to ``/foo/`` (GET and HEAD; 404
    otherwise). Route with a pattern like ``r"/foo/?"``."""

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Awaitable[None] | None:
        if not self.request.path.endswith("/"):
            if self.request.method not in ("GET", "HEAD"):
                raise HTTPError(404)
            uri = self.request.path + "/"
            if _is_protocol_relative(uri):
                raise HTTPError(403, "cannot redirect path with two initial slashes")
            if self.request.query:
                uri += "?" + self.request.query
            self.redirect(uri, permanent=True)
            return None
        return method(self, *args, **kwargs)

    return wrapper


def authenticated(method: _Method) -> _Method:
    """Decorator: the method needs a logged-in user (``current_user``).

    Anonymous GET and HEAD requests are redirected to ``get_login_url()``
    with ``?next=`` the page they asked for; other methods get 403.
    """

    @functools.wraps(method)
    def wrapper(self: RequestHandler, *args: Any, **kwargs: Any) -> Awaitable[None] | None:
        if not self.current_user:
            if self.request.method not in ("GET", "HEAD"):
                raise HTTPError(403)
            login_url = self.get_login_url()
            if "?" not in login_url:
                if urllib.parse.urlsplit(login_url).scheme:
                    # A login page on another host needs the full URL back.
                    next_url = self.request.full_url()
                else:
                    assert self.request.uri is not None
                    next_url = self.request.uri
                login_url += "?" + urllib.parse.urlencode({"next": next_url})
            self.redirect(login_url)
            return None
        return method(self, *args, **kwargs)

    return wrapper


# -- the application -----------------------------------------------------------------


class _ApplicationRouter(ReversibleRuleRouter):
    """An Application's rule router: a rule's target may be a
    ``RequestHandler`` class, or a list of rules (a nested router)."""

    def __init__(self, application: Application, rules: _RuleList | None = None) -> None:
        self.application = application
        # path -> (rule, its matcher, its target), for the plain-text patterns
        # that a dict lookup may decide (see _exact_rules); rebuilt when the
        # rule list changes length, and an entry whose rule has since been
        # given another matcher or target is not used.
        self._exact: dict[str, tuple[Rule, Matcher, type[RequestHandler]]] = {}
        self._exact_for = -1
        super().__init__(rules)

    def process_rule(self, rule: Rule) -> Rule:
        rule = super().process_rule(rule)
        if isinstance(rule.target, (list, tuple)):
            rule.target = _ApplicationRouter(self.application, rule.target)
        return rule

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> HTTPMessageDelegate | None:
        rules = self.rules
        if self._exact_for != len(rules):
            self._exact = self._exact_rules()
            self._exact_for = len(rules)
        entry = self._exact.get(request.path)
        if entry is not None:
            rule, matcher, target = entry
            if rule.target is target and rule.matcher is matcher:  # (not changed since)
                return self.application.get_handler_delegate(request, target, rule.target_kwargs)
        return super().find_handler(request, **kwargs)

    def _exact_rules(self) -> dict[str, tuple[Rule, Matcher, type[RequestHandler]]]:
        """The rules a path lookup may take without changing the outcome.

        Rule ``i`` with a plain-text pattern ``P`` and a handler class is the
        first match for path ``P`` exactly when no earlier rule matches
        ``P``; path rules depend on nothing but the path, so that can be
        decided here, once. The table stops at the first rule that is not
        a path rule (a host, a custom matcher): what it matches is not
        known in advance.
        """
        exact: dict[str, tuple[Rule, Matcher, type[RequestHandler]]] = {}
        earlier: list[PathMatches] = []
        for rule in self.rules:
            matcher = rule.matcher
            if not isinstance(matcher, PathMatches):
                break
            literal = matcher._literal
            target = rule.target
            if (
                literal is not None
                and literal not in exact
                and isinstance(target, type)
                and issubclass(target, RequestHandler)
                and not any(m.regex.match(literal) for m in earlier)
            ):
                exact[literal] = (rule, matcher, target)
            earlier.append(matcher)
        return exact

    def get_target_delegate(
        self, target: Any, request: HTTPServerRequest, **target_params: Any
    ) -> HTTPMessageDelegate | None:
        if isinstance(target, type) and issubclass(target, RequestHandler):
            return self.application.get_handler_delegate(request, target, **target_params)
        return super().get_target_delegate(target, request, **target_params)


class Application(ReversibleRouter):
    """A web application: rules routing requests to handlers, and settings.

    ``handlers``: rules, each a :class:`~reactor.routing.URLSpec` (``url(...)``)
    or a tuple ``(pattern, handler[, kwargs[, name]])``; a target may also be
    any :class:`~reactor.routing.Rule` target (another Application, a
    router, a callable). ``default_host``: the host whose
    :meth:`add_handlers` rules apply when no host pattern matches.
    ``transforms``: :class:`OutputTransform` classes applied to every
    response (default: gzip when the ``compress_response`` setting is on).

    Settings (``**settings``, also ``self.settings``): ``debug`` (sets
    ``autoreload``, ``compiled_template_cache=False``,
    ``static_hash_cache=False``, ``serve_traceback=True`` unless given),
    ``default_handler_class`` / ``default_handler_args`` (for unmatched
    requests, else 404), ``log_function``, ``ui_modules`` / ``ui_methods``,
    ``cookie_secret``, ``key_version``, ``xsrf_cookies``,
    ``xsrf_cookie_kwargs``, ``login_url``, ``template_path``,
    ``template_loader``, ``autoescape``, ``template_whitespace``,
    ``static_path`` (serves ``static_url_prefix``, default ``/static/``, and
    ``/favicon.ico``, ``/robots.txt`` from it through
    ``static_handler_class`` with ``static_handler_args``),
    ``compress_response``, ``websocket_ping_interval`` and other
    ``websocket_*`` (read by WebSocket handlers).

    An Application is an ``HTTPServerConnectionDelegate``:
    ``HTTPServer(app)``, or :meth:`listen`.
    """

    def __init__(
        self,
        handlers: _RuleList | None = None,
        default_host: str | None = None,
        transforms: list[type[OutputTransform]] | None = None,
        **settings: Any,
    ) -> None:
        if transforms is None:
            self.transforms: list[type[OutputTransform]] = []
            if settings.get("compress_response") or settings.get("gzip"):
                self.transforms.append(GZipContentEncoding)
        else:
            self.transforms = transforms
        self.default_host = default_host
        self.settings = settings
        self.ui_modules: dict[str, type[UIModule]] = {
            "linkify": _linkify,
            "xsrf_form_html": _xsrf_form_html,
            "Template": TemplateModule,
        }
        self.ui_methods: dict[str, Callable[..., str]] = {}
        self._load_ui_modules(settings.get("ui_modules", {}))
        self._load_ui_methods(settings.get("ui_methods", {}))
        if self.settings.get("static_path"):
            path = self.settings["static_path"]
            handlers = list(handlers or [])
            static_url_prefix = settings.get("static_url_prefix", "/static/")
            static_handler_class = settings.get("static_handler_class") or _static_handler()
            static_handler_args = settings.get("static_handler_args", {})
            static_handler_args["path"] = path
            for pattern in [
                re.escape(static_url_prefix) + r"(.*)",
                r"/(favicon\.ico)",
                r"/(robots\.txt)",
            ]:
                handlers.insert(0, (pattern, static_handler_class, static_handler_args))

        if self.settings.get("debug"):
            self.settings.setdefault("autoreload", True)
            self.settings.setdefault("compiled_template_cache", False)
            self.settings.setdefault("static_hash_cache", False)
            self.settings.setdefault("serve_traceback", True)

        self.wildcard_router = _ApplicationRouter(self, handlers)
        self.default_router = _ApplicationRouter(self, [Rule(AnyMatches(), self.wildcard_router)])

        if self.settings.get("autoreload"):
            _start_autoreload()

    def listen(
        self,
        port: int,
        address: str | None = None,
        *,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        backlog: int = _DEFAULT_BACKLOG,
        flags: int | None = None,
        reuse_port: bool = False,
        **kwargs: Any,
    ) -> HTTPServer:
        """Serve this application on ``port`` (all interfaces, or
        ``address``) on the current loop; returns the
        :class:`~reactor.httpserver.HTTPServer` (``kwargs`` go to it:
        ``xheaders``, ``max_body_size``, ``ssl_options``, ...). For several
        processes, make the ``HTTPServer`` yourself (``bind``/``start``)."""
        server = HTTPServer(self, **kwargs)
        server.listen(
            port,
            address=address,
            family=family,
            backlog=backlog,
            flags=flags,
            reuse_port=reuse_port,
        )
        return server

    def add_handlers(self, host_pattern: str, host_handlers: _RuleList) -> None:
        """Add rules for the hosts matching ``host_pattern`` (a regex of the
        ``Host`` name); hosts are tried in the order added, before the rules
        given to the constructor."""
        host_matcher = HostMatches(host_pattern)
        rule = Rule(host_matcher, _ApplicationRouter(self, host_handlers))
        self.default_router.rules.insert(-1, rule)
        if self.default_host is not None:
            self.wildcard_router.add_rules(
                [(DefaultHostMatches(self, host_matcher.host_pattern), host_handlers)]
            )

    def add_transform(self, transform_class: type[OutputTransform]) -> None:
        """Apply ``transform_class`` to every response from now on."""
        self.transforms.append(transform_class)

    def _load_ui_methods(self, methods: Any) -> None:
        if isinstance(methods, types.ModuleType):
            self._load_ui_methods({n: getattr(methods, n) for n in dir(methods)})
        elif isinstance(methods, list):
            for m in methods:
                self._load_ui_methods(m)
        else:
            for name, fn in methods.items():
                if not name.startswith("_") and callable(fn) and name[0].lower() == name[0]:
                    self.ui_methods[name] = fn

    def _load_ui_modules(self, modules: Any) -> None:
        if isinstance(modules, types.ModuleType):
            self._load_ui_modules({n: getattr(modules, n) for n in dir(modules)})
        elif isinstance(modules, list):
            for m in modules:
                self._load_ui_modules(m)
        else:
            if not isinstance(modules, dict):
                raise TypeError(f"ui_modules: a dict, module or list, not {modules!r}")
            for name, cls in modules.items():
                if isinstance(cls, type) and issubclass(cls, UIModule):
                    self.ui_modules[name] = cls

    def __call__(self, request: HTTPServerRequest) -> Awaitable[None] | None:
        """Serve a complete request (the old callback interface)."""
        dispatcher = self.find_handler(request)
        return dispatcher.execute()

    def start_request(
        self, server_conn: object, request_conn: HTTPConnection
    ) -> HTTPMessageDelegate:
        cls = type(self)
        if (
            cls.find_handler is Application.find_handler
            and cls.get_handler_delegate is Application.get_handler_delegate
        ):
            # Routing as find_handler would, in the object that then runs the
            # handler: no second delegate to pass the request's events on to.
            return _DirectDelegate(self, server_conn, request_conn)
        return super().start_request(server_conn, request_conn)

    def _exact_route(self, path: str) -> Rule | None:
        """The rule for a plain-text ``path`` straight from the wildcard
        router's table (see _ApplicationRouter), when that table may answer:
        no add_handlers hosts, and the rule unchanged since it was filed."""
        if len(self.default_router.rules) != 1:
            return None
        router = self.wildcard_router
        if router._exact_for != len(router.rules):
            return None
        entry = router._exact.get(path)
        if entry is None:
            return None
        rule, matcher, target = entry
        if rule.target is target and rule.matcher is matcher:
            return rule
        return None

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> _HandlerDelegate:
        if len(self.default_router.rules) == 1:
            rule = self._exact_route(request.path)
            if rule is not None:
                return self.get_handler_delegate(request, rule.target, rule.target_kwargs)
            route = self.wildcard_router.find_handler(request)
        else:
            route = self.default_router.find_handler(request)
        if route is not None:
            return route  # type: ignore[return-value]  # (no cast(): a call per request)
        if self.settings.get("default_handler_class"):
            return self.get_handler_delegate(
                request,
                self.settings["default_handler_class"],
                self.settings.get("default_handler_args", {}),
            )
        return self.get_handler_delegate(request, ErrorHandler, {"status_code": 404})

    def get_handler_delegate(
        self,
        request: HTTPServerRequest,
        target_class: type[RequestHandler],
        target_kwargs: dict[str, Any] | None = None,
        path_args: list[bytes] | None = None,
        path_kwargs: dict[str, bytes] | None = None,
    ) -> _HandlerDelegate:
        """The delegate that runs ``target_class`` for ``request`` (with
        ``target_kwargs`` for its ``initialize``, and the path's groups)."""
        return _HandlerDelegate(self, request, target_class, target_kwargs, path_args, path_kwargs)

    def reverse_url(self, name: str, *args: Any) -> str:
        """The URL of the rule named ``name``, its groups filled with
        ``args`` (percent-encoded). KeyError for an unknown name."""
        reversed_url = self.default_router.reverse_url(name, *args)
        if reversed_url is not None:
            return reversed_url
        raise KeyError(f"{name} not found in named urls")

    def log_request(self, handler: RequestHandler) -> None:
        """Log a finished request on ``reactor.access``: INFO below 400,
        WARNING below 500, ERROR above; status, method, URI, remote IP and
        milliseconds. The ``log_function`` setting replaces this."""
        log_function = self.settings.get("log_function")
        if log_function is not None:
            log_function(handler)
            return
        status = handler.get_status()
        level = INFO if status < 400 else WARNING if status < 500 else ERROR
        if access_log.isEnabledFor(level):
            request_time = 1000.0 * handler.request.request_time()
            access_log.log(level, "%d %s %.2fms", status, handler._request_summary(), request_time)


def _start_autoreload() -> None:
    """Restart the process when a source file changes (``autoreload``)."""
    try:
        # Loaded only when asked for: it watches the files from a timer.
        from reactor import autoreload  # type: ignore[attr-defined, unused-ignore]
    except ImportError as e:
        gen_log.warning("autoreload is not available (%s): not watching the sources", e)
        return
    autoreload.start()


class _HandlerDelegate(HTTPMessageDelegate):
    """Receives one request for a handler class, then runs the handler."""

    __slots__ = (
        "application",
        "chunks",
        "connection",
        "handler",
        "handler_class",
        "handler_kwargs",
        "path_args",
        "path_kwargs",
        "request",
        "stream_request_body",
    )

    def __init__(
        self,
        application: Application,
        request: HTTPServerRequest,
        handler_class: type[RequestHandler],
        handler_kwargs: dict[str, Any] | None,
        path_args: list[bytes] | None,
        path_kwargs: dict[str, bytes] | None,
    ) -> None:
        self.application = application
        self.connection = request.connection
        self.request = request
        self.handler_class = handler_class
        self.handler_kwargs = handler_kwargs or {}
        self.path_args = path_args or []
        self.path_kwargs = path_kwargs or {}
        self.chunks: list[bytes] | None = []
        self.stream_request_body = handler_class._stream_request_body
        self.handler: RequestHandler | None = None

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        if self.stream_request_body:
            self.request._body_future = Future()  # type: ignore[attr-defined]
            return self.execute()
        return None

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.stream_request_body:
            assert self.handler is not None
            return self.handler.data_received(chunk)
        assert self.chunks is not None
        self.chunks.append(chunk)
        return None

    def finish(self) -> None:
        if self.stream_request_body:
            future_set_result_unless_cancelled(
                self.request._body_future,  # type: ignore[attr-defined]
                None,
            )
        else:
            if self.chunks:
                self.request.body = b"".join(self.chunks)
                self.request._parse_body()
            self.chunks = None
            self.execute()

    def on_connection_close(self) -> None:
        # The handler (if made) hears of it through the connection's close
        # callback, which it set: once.
        self.chunks = None

    def execute(self) -> Future[None] | None:
        """Make the handler and run it. For a streaming handler, returns the
        future of its ``prepare`` (the body waits for it)."""
        settings = self.application.settings
        if not settings.get("compiled_template_cache", True):
            with RequestHandler._template_loader_lock:
                for loader in RequestHandler._template_loaders.values():
                    loader.reset()
        if not settings.get("static_hash_cache", True):
            (settings.get("static_handler_class") or _static_handler()).reset()
        handler = self.handler = self.handler_class(
            self.application, self.request, **self.handler_kwargs
        )
        transform_classes = self.application.transforms
        transforms = [t(self.request) for t in transform_classes] if transform_classes else []
        if self.stream_request_body:
            handler._prepared_future = Future()
        handler._execute(transforms, *self.path_args, **self.path_kwargs)
        # A streaming handler's future says when prepare is done and the body may come.
        return handler._prepared_future


class _DirectDelegate(_HandlerDelegate):
    """An Application's delegate for one request when neither ``find_handler``
    nor ``get_handler_delegate`` is overridden: a request for a plain-text
    route is run by this object itself (as the ``_HandlerDelegate`` that
    ``find_handler`` would have made); any other request goes through
    ``find_handler``, and this object passes the events on to its result."""

    __slots__ = ("forward", "server_conn")

    def __init__(  # the other fields are set when the request is routed
        self, application: Application, server_conn: object, request_conn: HTTPConnection
    ) -> None:
        self.application = application
        self.server_conn = server_conn
        self.connection = request_conn
        self.forward: HTTPMessageDelegate | None = None
        self.chunks = []
        self.handler = None

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, RequestStartLine)
        request = self.request = HTTPServerRequest(
            connection=self.connection,
            server_connection=self.server_conn,
            start_line=start_line,
            headers=headers,
        )
        application = self.application
        rule = application._exact_route(request.path)
        if rule is not None:
            target = rule.target
            self.handler_class = target
            self.handler_kwargs = rule.target_kwargs
            self.path_args = []
            self.path_kwargs = {}
            if target._stream_request_body:
                self.stream_request_body = True
                request._body_future = Future()  # type: ignore[attr-defined]
                return self.execute()
            self.stream_request_body = False
            return None
        forward = self.forward = application.find_handler(request)
        return forward.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.forward is not None:
            return self.forward.data_received(chunk)
        return super().data_received(chunk)

    def finish(self) -> None:
        if self.forward is not None:
            self.forward.finish()
        elif self.stream_request_body:
            super().finish()
        else:
            chunks = self.chunks
            if chunks:
                self.request.body = b"".join(chunks)
                self.request._parse_body()
            self.chunks = None
            self.execute()

    def on_connection_close(self) -> None:
        if self.forward is not None:
            self.forward.on_connection_close()
        else:
            self.chunks = None


# -- errors --------------------------------------------------------------------------


class HTTPError(Exception):
    """Raise to answer with an HTTP error.

    ``status_code``: the status (500 by default). ``log_message``: for the
    log (with ``args`` %-formatted into it), never sent to the client.
    ``reason`` (keyword): the status line's phrase, also shown in the default
    error page. Raising ``HTTPError`` is usually better than calling
    :meth:`RequestHandler.send_error`: it also ends the handler's code.
    """

    def __init__(
        self,
        status_code: int = 500,
        log_message: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        self.status_code = status_code
        self._log_message = log_message
        self.args = args
        self.reason = kwargs.get("reason")

    @property
    def log_message(self) -> str | None:
        """The log message as a %-format (older code formats it with
        ``args``): without ``args``, its ``%`` signs are doubled. The
        message itself: :meth:`get_message`."""
        if self._log_message and not self.args:
            return self._log_message.replace("%", "%%")
        return self._log_message

    def get_message(self) -> str | None:
        """The log message with its arguments formatted in."""
        if self._log_message and self.args:
            return self._log_message % self.args
        return self._log_message

    def __str__(self) -> str:
        message = f"HTTP {self.status_code}: " + (
            self.reason or _http_responses.get(self.status_code, "Unknown")
        )
        if self._log_message:
            return f"{message} ({self.get_message()})"
        return message


class Finish(Exception):
    """Raise to end the request without an error (``finish`` is called with
    this exception's argument, if any): ``raise Finish()`` after setting a
    status, for instance."""


class MissingArgumentError(HTTPError):
    """A required argument is missing: a 400 (``get_argument`` without a default)."""

    def __init__(self, arg_name: str) -> None:
        super().__init__(400, f"Missing argument {arg_name}")
        self.arg_name = arg_name


# -- handlers for common cases --------------------------------------------------------


class ErrorHandler(RequestHandler):
    """Answers every request with ``status_code`` (``initialize(status_code)``)."""

    def initialize(self, status_code: int) -> None:
        self.set_status(status_code)

    def prepare(self) -> None:
        raise HTTPError(self._status_code)

    def check_xsrf_cookie(self) -> None:
        # A POST to a page that is not there is a 404, not an XSRF failure.
        pass


class RedirectHandler(RequestHandler):
    """Redirects to ``url`` (``initialize(url, permanent=True)``).

    ``url`` is a :meth:`str.format` template of the pattern's groups
    (``{0}``, or ``{name}`` for named groups); the request's query
    arguments are added to it::

        (r"/pictures/(.*)", RedirectHandler, {"url": "/photos/{0}"})
    """

    def initialize(self, url: str, permanent: bool = True) -> None:
        self._url = url
        self._permanent = permanent

    def get(self, *args: Any, **kwargs: Any) -> None:
        to_url = self._url.format(*args, **kwargs)
        if _is_protocol_relative(to_url) and not _is_protocol_relative(self._url):
            # A path group made "/{0}" into "//evil.example": a redirect to
            # another host that the rule never named (CVE-2023-28370's class).
            raise HTTPError(403, "redirect target %r names another host", to_url)
        if _CONTROL_CHARS.search(to_url):
            # A percent-decoded group with a CR, LF, tab or NUL: no Location
            # header may hold it (the client's error, not a 500).
            raise HTTPError(400, "redirect target %r has a control character", to_url)
        if self.request.query_arguments:
            to_url = url_concat(to_url, list(qs_to_qsl(self.request.query_arguments)))
        self.redirect(to_url, permanent=self._permanent)


class FallbackHandler(RequestHandler):
    """Hands the request to ``fallback``, a callable of one request (such as
    :class:`reactor.wsgi.WSGIContainer`), which answers it through
    ``request.connection``."""

    def initialize(self, fallback: Callable[[HTTPServerRequest], None]) -> None:
        self.fallback = fallback

    def prepare(self) -> None:
        self.fallback(self.request)
        self._finished = True
        self.on_finish()


# -- output transforms ----------------------------------------------------------------


class OutputTransform:
    """Changes a response on its way out (``transforms`` of an Application).

    Made for each request; :meth:`transform_first_chunk` sees the status,
    headers and first piece of body, :meth:`transform_chunk` each later piece
    (``finishing`` is true for the last).
    """

    def __init__(self, request: HTTPServerRequest) -> None:
        pass

    def transform_first_chunk(
        self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, HTTPHeaders, bytes]:
        return status_code, headers, chunk

    def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
        return chunk


class GZipContentEncoding(OutputTransform):
    """Gzips responses for clients that accept it (``compress_response``).

    Only text and the types in :attr:`CONTENT_TYPES`, only a response not
    already encoded, and a finished one only from :attr:`MIN_LENGTH` bytes;
    every response gets ``Vary: Accept-Encoding`` (caches must keep the two
    forms apart).
    """

    CONTENT_TYPES = {
        "application/javascript",
        "application/x-javascript",
        "application/xml",
        "application/atom+xml",
        "application/json",
        "application/xhtml+xml",
        "image/svg+xml",
    }
    GZIP_LEVEL = 6
    MIN_LENGTH = 1024

    def __init__(self, request: HTTPServerRequest) -> None:
        self._gzipping = "gzip" in request.headers.get("Accept-Encoding", "")

    def _compressible_type(self, ctype: str) -> bool:
        return ctype.startswith("text/") or ctype in self.CONTENT_TYPES

    def transform_first_chunk(
        self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, HTTPHeaders, bytes]:
        if "Vary" in headers:
            headers["Vary"] += ", Accept-Encoding"
        else:
            headers["Vary"] = "Accept-Encoding"
        if self._gzipping:
            ctype = _unicode(headers.get("Content-Type", "")).split(";")[0]
            self._gzipping = (
                self._compressible_type(ctype)
                and (not finishing or len(chunk) >= self.MIN_LENGTH)
                and ("Content-Encoding" not in headers)
                and status_code not in (204, 206, 304)
                # A range's Content-Range counts bytes of the unencoded file.
                and ("Content-Range" not in headers)
            )
        if self._gzipping:
            headers["Content-Encoding"] = "gzip"
            self._gzip_value = io.BytesIO()
            self._gzip_file = gzip.GzipFile(
                mode="w", fileobj=self._gzip_value, compresslevel=self.GZIP_LEVEL
            )
            chunk = self.transform_chunk(chunk, finishing)
            if "Content-Length" in headers:
                # The length was the uncompressed one: the right one if the
                # whole body is here, else none (chunked).
                if finishing:
                    headers["Content-Length"] = str(len(chunk))
                else:
                    del headers["Content-Length"]
        return status_code, headers, chunk

    def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
        if self._gzipping:
            self._gzip_file.write(chunk)
            if finishing:
                self._gzip_file.close()
            else:
                self._gzip_file.flush()
            chunk = self._gzip_value.getvalue()
            self._gzip_value.truncate(0)
            self._gzip_value.seek(0)
        return chunk


# -- UI modules -----------------------------------------------------------------------


def is_absolute(path: str) -> bool:
    """Whether a resource path is a URL already (not relative to ``static_path``)."""
    return path.startswith(("/", "http:", "https:"))


class UIModule:
    """A reusable piece of page: ``{% module Name(...) %}`` in a template.

    Subclass it, implement :meth:`render`, and list it in the
    ``ui_modules`` setting. The CSS and JavaScript it declares
    (:meth:`embedded_css`, :meth:`css_files`, ...) are put in the page once,
    however often the module is used.
    """

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler
        self.request = handler.request
        self.ui = handler.ui
        self.locale = handler.locale

    @property
    def current_user(self) -> Any:
        return self.handler.current_user

    def render(self, *args: Any, **kwargs: Any) -> str | bytes:
        """The module's HTML (override)."""
        raise NotImplementedError()

    def embedded_javascript(self) -> str | None:
        """JavaScript to put in the page (inline, once)."""
        return None

    def javascript_files(self) -> Iterable[str] | None:
        """JavaScript files for the page (relative: through ``static_url``)."""
        return None

    def embedded_css(self) -> str | None:
        """CSS to put in the page's head (inline, once)."""
        return None

    def css_files(self) -> Iterable[str] | None:
        """CSS files for the page's head (relative: through ``static_url``)."""
        return None

    def html_head(self) -> str | None:
        """HTML to put before ``</head>``."""
        return None

    def html_body(self) -> str | None:
        """HTML to put before ``</body>``."""
        return None

    def render_string(self, path: str, **kwargs: Any) -> bytes:
        """A template rendered (:meth:`RequestHandler.render_string`)."""
        return self.handler.render_string(path, **kwargs)


class _linkify(UIModule):
    def render(self, text: str, **kwargs: Any) -> str:
        return escape.linkify(text, **kwargs)


class _xsrf_form_html(UIModule):
    def render(self) -> str:
        return self.handler.xsrf_form_html()


class TemplateModule(UIModule):
    """``{% module Template("path.html", **kwargs) %}``: another template,
    rendered with its own namespace; it may call
    ``set_resources(embedded_javascript=..., css_files=..., ...)`` to declare
    the page's resources as a UI module does."""

    def __init__(self, handler: RequestHandler) -> None:
        super().__init__(handler)
        self._resource_list: list[dict[str, Any]] = []
        self._resource_dict: dict[str, dict[str, Any]] = {}

    def render(self, path: str, **kwargs: Any) -> bytes:
        def set_resources(**resources: Any) -> str:
            if path not in self._resource_dict:
                self._resource_list.append(resources)
                self._resource_dict[path] = resources
            elif self._resource_dict[path] != resources:
                raise ValueError(
                    "set_resources called with different resources for the same template"
                )
            return ""

        return self.render_string(path, set_resources=set_resources, **kwargs)

    def _get_resources(self, key: str) -> Generator[Any, None, None]:
        return (r[key] for r in self._resource_list if key in r)

    def embedded_javascript(self) -> str:
        return "\n".join(self._get_resources("embedded_javascript"))

    def javascript_files(self) -> Iterable[str]:
        return self._files("javascript_files")

    def embedded_css(self) -> str:
        return "\n".join(self._get_resources("embedded_css"))

    def css_files(self) -> Iterable[str]:
        return self._files("css_files")

    def html_head(self) -> str:
        return "".join(self._get_resources("html_head"))

    def html_body(self) -> str:
        return "".join(self._get_resources("html_body"))

    def _files(self, key: str) -> list[str]:
        result: list[str] = []
        for f in self._get_resources(key):
            if isinstance(f, (str, bytes)):
                result.append(_unicode(f))
            else:
                result.extend(f)
        return result


class _UIModuleNamespace:
    """``modules.Name(...)`` in a template: a handler's UI modules."""

    def __init__(self, handler: RequestHandler, ui_modules: dict[str, type[UIModule]]) -> None:
        self.handler = handler
        self.ui_modules = ui_modules

    def __getitem__(self, key: str) -> Callable[..., str]:
        return self.handler._ui_module(key, self.ui_modules[key])

    def __getattr__(self, key: str) -> Callable[..., str]:
        try:
            return self[key]
        except KeyError as e:
            raise AttributeError(str(e)) from None


# StaticFileHandler lives in reactor._static, which imports this module:
# it is loaded on first use (PEP 562), so that either module may be
# imported first.
if TYPE_CHECKING:
    from reactor._static import StaticFileHandler


def _static_handler() -> type[StaticFileHandler]:
    from reactor._static import StaticFileHandler

    return StaticFileHandler


def __getattr__(name: str) -> Any:
    if name == "StaticFileHandler":
        return _static_handler()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
