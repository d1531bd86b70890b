"""HTTP pieces shared by the server, the client and the web layer.

Headers (:class:`HTTPHeaders`), start lines, the server-side request object
(:class:`HTTPServerRequest`), body and multipart parsing, and the interfaces
between a connection and the code that handles its messages:

- An :class:`HTTPServerConnectionDelegate` (an ``HTTPServer``'s application)
  is asked for one :class:`HTTPMessageDelegate` per request.
- The connection calls the message delegate's ``headers_received``, then
  ``data_received`` for each piece of body, then ``finish``; or
  ``on_connection_close`` if the connection ends first.
- The delegate answers through the request's :class:`HTTPConnection`:
  ``write_headers``, ``write``, ``finish``.

This module does no I/O and imports nothing above :mod:`reactor.concurrent`.
"""

from __future__ import annotations

import calendar
import collections.abc
import dataclasses
import datetime
import email.utils
import http.cookies
import ipaddress
import re
import ssl
import time
import unicodedata
import urllib.parse
from collections.abc import Awaitable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from reactor.escape import parse_qs_bytes, utf8
from reactor.log import gen_log

if TYPE_CHECKING:
    from reactor.concurrent import Future

__all__ = [
    "HTTPConnection",
    "HTTPFile",
    "HTTPHeaders",
    "HTTPInputError",
    "HTTPMessageDelegate",
    "HTTPOutputError",
    "HTTPServerConnectionDelegate",
    "HTTPServerRequest",
    "ParseBodyConfig",
    "ParseMultipartConfig",
    "ParseUrlEncodedConfig",
    "RequestStartLine",
    "ResponseStartLine",
    "encode_username_password",
    "format_timestamp",
    "parse_body_arguments",
    "parse_cookie",
    "parse_multipart_form_data",
    "parse_request_start_line",
    "parse_response_start_line",
    "qs_to_qsl",
    "responses",
    "set_parse_body_config",
    "split_host_and_port",
    "url_concat",
]

responses: dict[int, str] = {int(status): status.phrase for status in http.HTTPStatus}
"""Status code -> reason phrase (from :class:`http.HTTPStatus`)."""


class HTTPInputError(Exception):
    """Malformed HTTP from the peer: a bad start line, header or body.

    The server answers such a request with 400 and closes the connection.
    """


class HTTPOutputError(Exception):
    """The application tried to send something that is not valid HTTP
    (a header with CR or LF, more body than Content-Length, ...)."""


# -- header names and values ------------------------------------------------------

# RFC 9110 section 5.6.2: a token is one or more tchar.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_TOKEN_STR = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# A field value: visible characters, obs-text and inner spaces/tabs; no CTLs
# (so no CR, LF or NUL). Leading and trailing whitespace is stripped before.
_BAD_VALUE_STR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

_normalized: dict[str, str] = {}
# Names set by code that were found to be tokens -> their normalized form.
# Keyed by the name as given, not as normalized: str.capitalize() maps some
# non-ASCII letters to ASCII ("\u017f" -> "S"), so a non-token can normalize
# to a token.
_valid_names: dict[str, str] = {}


def _normalize_name(name: str) -> str:
    """``content-type`` -> ``Content-Type``; memoized (names repeat)."""
    try:
        return _normalized[name]
    except KeyError:
        pass
    norm = "-".join(part.capitalize() for part in name.split("-"))
    if len(_normalized) < 4096:  # bounded: names come from the network
        _normalized[name] = norm
    return norm


class _InvalidHeaderError(HTTPOutputError, ValueError):
    """A header name or value set by code that could not be sent as is.

    A ValueError (what Tornado raises for it, at send time) and an
    HTTPOutputError (what reactor raised for it, at send time, before the
    check moved to where the header is set).
    """


def _checked_name(name: str) -> str:
    """The normalized form of a name set by code; ValueError unless a token."""
    if type(name) is not str or not _TOKEN_STR.match(name):
        raise _InvalidHeaderError(
            f"invalid header name {name!r}: a name is one or more of "
            f"A-Z a-z 0-9 !#$%&'*+-.^_`|~ (RFC 9110 section 5.1)"
        )
    norm = _normalize_name(name)
    if len(_valid_names) < 4096:
        _valid_names[name] = norm
    return norm


def _check_value(name: str, value: Any) -> None:
    """ValueError if ``value`` (written as ``str(value)``) has a control character.

    Callers skip it for a printable str: isprintable() is False for every
    control character (and for tabs and some non-ASCII), so only then does
    the regex decide.
    """
    text = value if type(value) is str else str(value)
    if _BAD_VALUE_STR.search(text):
        raise _InvalidHeaderError(
            f"invalid header value for {name!r}: {text[:100]!r} "
            f"(CR, LF, NUL and other control characters cannot be sent)"
        )


class HTTPHeaders(collections.abc.MutableMapping[str, str]):
    """A case-insensitive, multi-valued, ordered mapping of header names to values.

    ``headers["Set-Cookie"]`` is every value joined by ``,``;
    :meth:`get_list` gives them one by one and :meth:`get_all` yields every
    ``(name, value)`` pair in the order added. Names are normalized to
    ``Http-Header-Case``. Built like a dict (``HTTPHeaders({"A": "1"})``,
    ``HTTPHeaders(A="1")``) or parsed (:meth:`parse`).

    A name that is not a token (RFC 9110 section 5.1: no space, colon, CR,
    LF, ...) or a value with CR, LF, NUL or another control character raises
    ValueError where it is set (constructor, ``[]=``, :meth:`add`,
    ``update``...), so a header can never be used to inject another. A
    value that is not a str (an int Content-Length) is sent as ``str(value)``.

    :meth:`add` and :meth:`get_list` take time linear in what they add or
    return, however often a name repeats: the joined value is built on first
    read and kept until the name changes.
    """

    # _as_list holds every name (in order) and its values: the truth.
    # _combined caches the joined value of a name; a name with one value is
    # always there, one with several only once read since its last add.
    # Read _as_list for membership, never _combined.
    __slots__ = ("_as_list", "_combined")

    def __init__(self, *args: Any, **kwargs: str) -> None:
        self._combined: dict[str, str] = {}
        self._as_list: dict[str, list[str]] = {}
        if len(args) == 1 and not kwargs and type(args[0]) is HTTPHeaders:
            other = args[0]
            self._combined = dict(other._combined)
            self._as_list = {name: list(values) for name, values in other._as_list.items()}
        elif len(args) == 1 and not kwargs and type(args[0]) is dict:
            # The common case, HTTPHeaders({...}): no MutableMapping.update.
            combined = self._combined
            lists = self._as_list
            valid_names = _valid_names
            for name, value in args[0].items():
                norm = valid_names.get(name) or _checked_name(name)
                if type(value) is not str or not value.isprintable():
                    _check_value(norm, value)
                combined[norm] = value
                lists[norm] = [value]
        elif args or kwargs:
            self.update(*args, **kwargs)

    # -- multi-valued access ---------------------------------------------------------

    def add(self, name: str, value: str) -> None:
        """Add a value for ``name``, keeping any it already has.

        Raises ValueError for a name that is not a token or a value with a
        control character (CR, LF, NUL, ...).
        """
        norm = _valid_names.get(name) or _checked_name(name)
        if type(value) is not str or not value.isprintable():
            _check_value(norm, value)
        self._add(norm, value)

    def _add(self, norm: str, value: str) -> None:
        """Add a value for the normalized, already checked name ``norm``."""
        values = self._as_list.get(norm)
        if values is None:
            self._combined[norm] = value
            self._as_list[norm] = [value]
        else:
            self._combined.pop(norm, None)
            values.append(value)

    def get_list(self, name: str) -> list[str]:
        """Every value of ``name``, in order (a new list); [] if there is none."""
        return list(self._as_list.get(_normalize_name(name), ()))

    def get_all(self) -> Iterator[tuple[str, str]]:
        """Every ``(name, value)`` pair; a name with several values comes once per value."""
        for name, values in self._as_list.items():
            for value in values:
                yield name, value

    def parse_line(self, line: str) -> None:
        """Add one ``Name: value`` line (strictly: see :meth:`parse`)."""
        name, sep, value = line.partition(":")
        if not sep:
            raise HTTPInputError(f"header line without a colon: {line[:100]!r}")
        if not _TOKEN_STR.match(name):
            # Covers an empty name and whitespace before the colon, which
            # RFC 9112 section 5.1 says a server must reject.
            raise HTTPInputError(f"invalid header name: {name[:100]!r}")
        value = value.strip(" \t")
        if _BAD_VALUE_STR.search(value):
            raise HTTPInputError(f"invalid character in the value of header {name!r}")
        self._add(_normalize_name(name), value)

    @classmethod
    def parse(cls, headers: str | bytes) -> HTTPHeaders:
        """Parse a header block (lines ending CRLF, or LF).

        Strict where leniency lets messages be misread (RFC 9112): an
        obs-fold continuation line, a bare CR, whitespace before a colon, an
        invalid name or a control character in a value raises
        :class:`HTTPInputError`.
        """
        if isinstance(headers, bytes):
            headers = headers.decode("latin-1")
        result = cls()
        for line in headers.split("\n"):
            if line.endswith("\r"):
                line = line[:-1]
            if not line:
                continue
            if line[0] in " \t":
                raise HTTPInputError("obsolete line folding (obs-fold) in the headers")
            if "\r" in line:
                raise HTTPInputError("bare CR in the headers")
            result.parse_line(line)
        return result

    # -- the mapping -----------------------------------------------------------------

    def __setitem__(self, name: str, value: str) -> None:
        norm = _valid_names.get(name) or _checked_name(name)
        if type(value) is not str or not value.isprintable():
            _check_value(norm, value)
        self._combined[norm] = value
        self._as_list[norm] = [value]

    def __getitem__(self, name: str) -> str:
        norm = _normalize_name(name)
        try:
            return self._combined[norm]
        except KeyError:
            joined = self._combined[norm] = ",".join(self._as_list[norm])
            return joined

    def __delitem__(self, name: str) -> None:
        norm = _normalize_name(name)
        del self._as_list[norm]
        self._combined.pop(norm, None)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _normalize_name(name) in self._as_list

    def get(self, key: str, default: Any = None) -> Any:
        # One lookup for a miss (the common case: get("Expect")) and for a
        # name with one value; a repeated name is joined once, then cached.
        # (``key``, as Mapping.get and Tornado name it.)
        norm = _normalize_name(key)
        values = self._as_list.get(norm)
        if values is None:
            return default
        if len(values) == 1:
            return values[0]
        value = self._combined.get(norm)
        if value is None:
            value = self._combined[norm] = ",".join(values)
        return value

    def __len__(self) -> int:
        return len(self._as_list)

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_list)

    def copy(self) -> HTTPHeaders:
        return HTTPHeaders(self)

    __copy__ = copy

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HTTPHeaders):
            return self._as_list == other._as_list
        if isinstance(other, Mapping):
            return dict(self.items()) == {_normalize_name(k): v for k, v in other.items()}
        return NotImplemented

    def __str__(self) -> str:
        # One "Name: value" line per value, each ended by "\n" as Tornado's
        # str() does (what is sent on the wire is _encode(), with CRLF).
        return "".join(f"{name}: {value}\n" for name, value in self.get_all())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"

    def _encode(self) -> bytes:
        """The header lines as sent (``Name: value\\r\\n`` each), latin-1.

        Names and values were checked where they were set (see the class),
        so nothing here can break the framing.
        """
        return "".join(
            [f"{name}: {value}\r\n" for name, values in self._as_list.items() for value in values]
        ).encode("latin-1")


# -- start lines -------------------------------------------------------------------


class RequestStartLine(NamedTuple):
    method: str
    path: str
    version: str


class ResponseStartLine(NamedTuple):
    version: str
    code: int
    reason: str


_VERSION = re.compile(r"HTTP/1\.[0-9]\Z")


def parse_request_start_line(line: str) -> RequestStartLine:
    """Parse ``GET /path HTTP/1.1`` strictly (single spaces, a token method,
    an HTTP/1.x version); raise :class:`HTTPInputError` otherwise."""
    parts = line.split(" ")
    if len(parts) != 3:
        raise HTTPInputError(f"malformed request line: {line[:100]!r}")
    method, path, version = parts
    if not _TOKEN_STR.match(method):
        raise HTTPInputError(f"invalid method: {method[:100]!r}")
    if not _VERSION.match(version):
        raise HTTPInputError(f"unsupported HTTP version: {version[:100]!r}")
    if not path or any(c <= " " or c == "\x7f" for c in path):
        raise HTTPInputError(f"invalid request target: {path[:100]!r}")
    return RequestStartLine(method, path, version)


_RESPONSE_LINE = re.compile(r"(HTTP/1\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?\Z")


def parse_response_start_line(line: str) -> ResponseStartLine:
    """Parse ``HTTP/1.1 200 OK``; the reason may be empty. Raises
    :class:`HTTPInputError` for anything else."""
    match = _RESPONSE_LINE.match(line)
    if match is None:
        raise HTTPInputError(f"malformed response line: {line[:100]!r}")
    return ResponseStartLine(match.group(1), int(match.group(2)), match.group(3) or "")


# -- interfaces between a connection and its handlers ------------------------------


class HTTPServerConnectionDelegate:
    """What an HTTP server hands its connections to (an application)."""

    def start_request(
        self, server_conn: object, request_conn: HTTPConnection
    ) -> HTTPMessageDelegate:
        """A new request on ``server_conn``: return the delegate that will
        receive it. ``request_conn`` is how that delegate answers."""
        raise NotImplementedError(f"{type(self).__name__}.start_request")

    def on_close(self, server_conn: object) -> None:
        """The connection ``server_conn`` has closed."""


class HTTPMessageDelegate:
    """Receives one HTTP message (a request on a server, a response on a client).

    ``headers_received`` and ``data_received`` may return an awaitable: the
    connection then reads no more of the message until it is done (flow
    control). Exactly one of ``finish`` and ``on_connection_close`` ends the
    message.
    """

    def headers_received(
        self, start_line: RequestStartLine | ResponseStartLine, headers: HTTPHeaders
    ) -> Awaitable[None] | None:
        """The start line and headers have arrived."""

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        """A piece of the body has arrived (already de-chunked, and
        decompressed if the server was asked to)."""

    def finish(self) -> None:
        """The whole message has arrived."""

    def on_connection_close(self) -> None:
        """The connection closed before the message was complete."""


class HTTPConnection:
    """How a message delegate writes its answer."""

    def write_headers(
        self,
        start_line: RequestStartLine | ResponseStartLine,
        headers: HTTPHeaders,
        chunk: bytes | None = None,
    ) -> Future[None]:
        """Send the start line and headers, and ``chunk`` of body if given.

        The future resolves when the data has been handed to the kernel.
        """
        raise NotImplementedError(f"{type(self).__name__}.write_headers")

    def write(self, chunk: bytes) -> Future[None]:
        """Send a piece of the body."""
        raise NotImplementedError(f"{type(self).__name__}.write")

    def finish(self) -> None:
        """The body is complete."""
        raise NotImplementedError(f"{type(self).__name__}.finish")


# -- the request -------------------------------------------------------------------


class HTTPServerRequest:
    """One HTTP request as a server received it.

    ``method``, ``uri``, ``version``, ``headers`` and ``body`` are as sent;
    ``path`` and ``query`` split ``uri``; ``arguments`` merges
    ``query_arguments`` and ``body_arguments`` (name -> list of bytes values);
    ``files`` maps a form field to its :class:`HTTPFile` list. ``remote_ip``
    and ``protocol`` come from the connection (and from ``X-Real-Ip`` /
    ``X-Forwarded-For`` / ``X-Scheme`` / ``X-Forwarded-Proto`` when the server
    trusts them: ``xheaders``; a forwarded host is never trusted).

    ``host`` is the authority of an absolute-form target
    (``GET http://a.example/x``, RFC 9112 section 3.2.2: it wins over Host;
    ``uri`` and ``path`` are then the target's origin-form ``/x``), else the
    ``Host`` header, else ``127.0.0.1`` (an HTTP/1.0 request may have no
    Host); ``host_name`` is ``host`` lowercased without its port (an IPv6
    literal keeps its brackets, as in Tornado). The server refuses with 400
    a request whose Host or target authority is not ``host[:port]`` (see ``_request_host_error``); a
    request built by hand is not checked.

    ``connection`` is the :class:`HTTPConnection` to answer through.
    """

    path: str
    query: str

    def __init__(
        self,
        method: str | None = None,
        uri: str | None = None,
        version: str = "HTTP/1.0",
        headers: HTTPHeaders | None = None,
        body: bytes | None = None,
        host: str | None = None,
        files: dict[str, list[HTTPFile]] | None = None,
        connection: HTTPConnection | None = None,
        start_line: RequestStartLine | None = None,
        server_connection: object | None = None,
    ) -> None:
        if start_line is not None:
            method, uri, version = start_line
        self.method = method
        self.uri = uri
        self.version = version
        self.headers = headers if headers is not None else HTTPHeaders()
        self.body = body or b""
        context = getattr(connection, "context", None)
        self.remote_ip: str | None = getattr(context, "remote_ip", None)
        self.protocol: str = getattr(context, "protocol", "http")
        if uri is not None and uri[:1] != "/":
            absolute = _split_absolute_form(uri)
            if absolute is not None:
                # RFC 9112 section 3.2.2: the target's authority wins over Host.
                _, authority, uri = absolute
                self.uri = uri
                host = host or authority
        self.host = host or self.headers.get("Host") or "127.0.0.1"
        self.files: dict[str, list[HTTPFile]] = files or {}
        self.connection = connection
        self.server_connection = server_connection
        self._start_time = time.time()
        self._finish_time: float | None = None
        if uri is not None:
            path, _, query = uri.partition("?")
            self.path = path
            self.query = query
        self.body_arguments: dict[str, list[bytes]] = {}

    @cached_property
    def host_name(self) -> str:
        return split_host_and_port(self.host.lower())[0]

    @cached_property
    def query_arguments(self) -> dict[str, list[bytes]]:
        """The query string's fields; more than the configured
        ``urlencoded.max_arguments`` (:func:`set_parse_body_config`) is an
        :class:`HTTPInputError`, which the web layer answers with 400."""
        try:
            return parse_qs_bytes(
                self.query,
                keep_blank_values=True,
                max_num_fields=_parse_body_config.urlencoded.max_arguments,
            )
        except ValueError as e:
            raise HTTPInputError(f"invalid query string: {e}") from e

    @cached_property
    def arguments(self) -> dict[str, list[bytes]]:
        merged = {name: list(values) for name, values in self.query_arguments.items()}
        for name, values in self.body_arguments.items():
            merged.setdefault(name, []).extend(values)
        return merged

    @cached_property
    def cookies(self) -> dict[str, http.cookies.Morsel[str]]:
        """The ``Cookie`` header parsed: name -> :class:`http.cookies.Morsel`."""
        cookies: dict[str, http.cookies.Morsel[str]] = {}
        for header in self.headers.get_list("Cookie"):
            for name, value in parse_cookie(header).items():
                morsel: http.cookies.Morsel[str] = http.cookies.Morsel()
                try:
                    morsel.set(name, value, value)
                except http.cookies.CookieError:
                    continue  # a name the stdlib refuses (reserved): skip it
                cookies[name] = morsel
        return cookies

    def full_url(self) -> str:
        """The URL this request was for: ``protocol://host/uri``."""
        return f"{self.protocol}://{self.host}{self.uri}"

    def request_time(self) -> float:
        """Seconds this request has taken so far (or took, once finished)."""
        end = self._finish_time if self._finish_time is not None else time.time()
        return end - self._start_time

    def get_ssl_certificate(self, binary_form: bool = False) -> dict[str, Any] | bytes | None:
        """The client's TLS certificate: a dict (``ssl.SSLSocket.getpeercert``),
        its DER bytes with ``binary_form``, or None without TLS or a
        certificate. The server asks for one only if its ``SSLContext`` has
        ``verify_mode`` set (``CERT_OPTIONAL`` or ``CERT_REQUIRED``).
        """
        stream = getattr(self.connection, "stream", None)
        sock = getattr(stream, "socket", None)
        if not isinstance(sock, ssl.SSLSocket):
            return None
        try:
            return sock.getpeercert(binary_form=binary_form)
        except (ssl.SSLError, ValueError, OSError):
            return None

    def _parse_body(self) -> None:
        """Fill ``body_arguments`` and ``files`` from ``body`` (urlencoded or multipart)."""
        parse_body_arguments(
            self.headers.get("Content-Type", ""),
            self.body,
            self.body_arguments,
            self.files,
            self.headers,
        )
        self.__dict__.pop("arguments", None)  # merged again on next access

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(protocol={self.protocol!r}, host={self.host!r}, "
            f"method={self.method!r}, uri={self.uri!r}, version={self.version!r}, "
            f"remote_ip={self.remote_ip!r})"
        )


# -- formatting and small parsers --------------------------------------------------


def format_timestamp(
    ts: float | int | tuple[int, ...] | time.struct_time | datetime.datetime,
) -> str:
    """An HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT``) from a POSIX time, a
    UTC time tuple or a datetime (naive means UTC)."""
    if isinstance(ts, (int, float)):
        seconds = ts
    elif isinstance(ts, (tuple, time.struct_time)):
        seconds = calendar.timegm(ts)
    elif isinstance(ts, datetime.datetime):
        naive = ts.tzinfo is None
        seconds = calendar.timegm(ts.utctimetuple()) if naive else ts.timestamp()
    else:
        raise TypeError(f"unknown timestamp type: {ts!r}")
    return email.utils.formatdate(seconds, usegmt=True)


HTTP_WHITESPACE = " \t"
"""The whitespace HTTP allows around values (RFC 9110 section 5.6.3: OWS)."""


def encode_username_password(username: str | bytes, password: str | bytes) -> bytes:
    """``username:password`` as HTTP Basic auth sends it (before base64):
    UTF-8, str arguments NFC-normalized first (RFC 7617 section 2.1)."""
    if isinstance(username, str):
        username = unicodedata.normalize("NFC", username)
    if isinstance(password, str):
        password = unicodedata.normalize("NFC", password)
    return utf8(username) + b":" + utf8(password)


def split_host_and_port(netloc: str) -> tuple[str, int | None]:
    """``host:port`` -> (host, port); (netloc, None) without a port.

    An IPv6 literal keeps its brackets (``"[::1]:80"`` -> ``("[::1]", 80)``),
    as in Tornado: ``request.host_name`` is then still a valid host for a URL.
    """
    match = _NETLOC.match(netloc)
    if match:
        return match.group(1), int(match.group(2))
    return netloc, None


_NETLOC = re.compile(r"^(.+):(\d+)$")


# -- the request's host (RFC 9110 section 7.2, RFC 9112 section 3.2) ----------------
#
# Host = uri-host [ ":" port ] (RFC 9110 section 7.2, on RFC 3986 section
# 3.2.2), read more strictly than RFC 3986 where its grammar admits what no
# DNS name or address holds and what is dangerous in request.host, which
# applications put into URLs, redirects, HTML and logs:
#
# - reg-name: letters, digits and "-" "." "_" "~" only. RFC 3986 also admits
#   sub-delims (! $ & ' ( ) * + , ; =) and pct-encoded: a "," is how two Host
#   fields read once joined (RFC 9110 section 5.3), "'" or "%2F" inject into
#   what is built from the host. International names come as A-labels
#   (xn--...). A dotted IPv4 address is a reg-name by this grammar too.
# - IP-literal: "[" IPv6address "]", checked by ipaddress; no zone id
#   (RFC 6874) and no IPvFuture.
# - port: 1 to 5 digits, at most 65535 (RFC 3986 admits an empty port).
# - not empty: RFC 9112 section 3.2 has an empty Host stand for a target URI
#   without an authority, which an http or https URI never is (RFC 9110
#   section 4.2.1); RFC 9112 section 3.3 lets a server refuse it.
_HOST = re.compile(r"(?:[A-Za-z0-9._~-]+|\[([0-9A-Fa-f:.]+)\])(?::([0-9]{1,5}))?\Z")
# absolute-form (RFC 9112 section 3.2.2): scheme "://" authority, then the
# path and query.
_ABSOLUTE_FORM = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)")
_valid_hosts: set[str] = set()  # hosts found valid: they repeat


def _is_valid_host(host: str) -> bool:
    """Whether ``host`` is ``host[:port]`` by the strict grammar above."""
    if host in _valid_hosts:
        return True
    match = _HOST.match(host)
    if match is None:
        return False
    literal, port = match.groups()
    if port is not None and int(port) > 65535:
        return False
    if literal is not None:
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return False
    if len(_valid_hosts) < 1024:  # bounded: hosts come from clients
        _valid_hosts.add(host)
    return True


def _split_absolute_form(target: str) -> tuple[str, str, str] | None:
    """An absolute-form target's (lowercased scheme, authority, origin-form
    path and query): ``http://a.example?q`` -> ``("http", "a.example",
    "/?q")``. None for a target of another form (``/path``, ``*``, ...)."""
    if target[:1] == "/":
        return None
    match = _ABSOLUTE_FORM.match(target)
    if match is None:
        return None
    rest = target[match.end() :]
    if rest[:1] != "/":
        rest = "/" + rest  # RFC 9110 section 4.2.3: an empty path is "/"
    return match.group(1).lower(), match.group(2), rest


def _request_host_error(target: bytes, hosts: list[str] | None, version: str) -> str | None:
    """Why a request must be refused with 400 for its Host or its target's
    authority, or None (RFC 9112 sections 3.2 and 3.2.2).

    ``hosts`` are the request's Host field values (None without any). Any
    request with more than one Host, or an invalid one, is refused; an
    HTTP/1.1 request without Host too. An absolute-form target must be http
    or https with a valid authority (which then names the host, see
    :class:`HTTPServerRequest`).
    """
    if hosts is None:
        if version == "HTTP/1.1":
            return "an HTTP/1.1 request needs a Host header"
    elif len(hosts) != 1:
        return "a request may have only one Host header"
    elif not _is_valid_host(hosts[0]):
        return f"invalid Host header: {hosts[0][:100]!r}"
    if target[:1] == b"/":  # origin-form: the common case
        return None
    absolute = _split_absolute_form(target.decode("latin-1"))
    if absolute is not None:
        scheme, authority, _ = absolute
        if scheme not in ("http", "https"):
            return f"unsupported scheme in the request target: {scheme[:20]!r}"
        if not _is_valid_host(authority):
            return f"invalid host in the request target: {authority[:100]!r}"
    return None


# -- uploaded files and URLs -------------------------------------------------------


class HTTPFile(dict[str, Any]):
    """A file uploaded through a ``multipart/form-data`` form.

    Its ``filename`` (as the client sent it: never use it as a path
    unchecked), ``body`` and ``content_type`` are attributes, and also keys,
    as with Tornado's ``ObjectDict`` (``f.body == f["body"]``).
    """

    def __init__(self, filename: str, body: bytes, content_type: str) -> None:
        super().__init__(filename=filename, body=body, content_type=content_type)

    @property
    def filename(self) -> str:
        value: str = self["filename"]
        return value

    @filename.setter
    def filename(self, value: str) -> None:
        self["filename"] = value

    @property
    def body(self) -> bytes:
        value: bytes = self["body"]
        return value

    @body.setter
    def body(self, value: bytes) -> None:
        self["body"] = value

    @property
    def content_type(self) -> str:
        value: str = self["content_type"]
        return value

    @content_type.setter
    def content_type(self, value: str) -> None:
        self["content_type"] = value


def url_concat(
    url: str,
    args: Mapping[str, Any] | list[tuple[str, Any]] | tuple[tuple[str, Any], ...] | None,
) -> str:
    """``url`` with ``args`` added to its query; its fragment is kept.

    ``args`` is a dict, or a list or tuple of ``(name, value)`` pairs (to
    repeat a name); None returns ``url`` unchanged. The existing query is
    re-encoded with the new pairs after it. Raises TypeError for any other
    ``args``.
    """
    if args is None:
        return url
    if isinstance(args, Mapping):
        pairs = list(args.items())
    elif isinstance(args, (list, tuple)):
        pairs = list(args)
    else:
        raise TypeError(
            f"url_concat() args must be a dict, a list or tuple of pairs, or None; "
            f"not {type(args).__name__}"
        )
    parsed = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    query.extend(pairs)
    return urllib.parse.urlunparse(parsed._replace(query=urllib.parse.urlencode(query)))


_T = TypeVar("_T")


def qs_to_qsl(qs: Mapping[str, Iterable[_T]]) -> Iterator[tuple[str, _T]]:
    """``{name: [v1, v2]}`` (as from ``parse_qs``) back to ``(name, v1), (name, v2)``."""
    for name, values in qs.items():
        for value in values:
            yield name, value


# -- Content-Type style headers -----------------------------------------------------

# One ';'-separated segment: quoted strings (which may contain ';') and other
# characters. The alternatives start differently, so matching is linear; an
# unterminated quote runs to the end of the line.
_SEGMENT = re.compile(r'(?:"(?:[^"\\]|\\.)*"?|[^;"])*')
# Inside a quoted string only \" and \\ are unescaped: browsers send a
# filename's other backslashes (C:\dir\f.txt) as they are.
_QUOTED_PAIR = re.compile(r'\\([\\"])')
# RFC 2231 continuations: name*0, name*1*, ... (at most 3 digits, so a
# hostile index cannot be a huge number).
_CONTINUATION = re.compile(r"(.+?)\*([0-9]{1,3})(\*?)\Z")


def _split_segments(line: str) -> list[str]:
    segments = []
    pos = 0
    while True:
        match = _SEGMENT.match(line, pos)
        assert match is not None  # the pattern matches the empty string
        segments.append(match.group().strip())
        pos = match.end() + 1  # past the ';' (or the end)
        if pos > len(line):
            return segments


def _unquote_param(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", value[1:-1])
    return value


def _decode_rfc2231(charset: str, raw: bytes) -> str:
    try:
        return raw.decode(charset or "us-ascii", errors="replace")
    except LookupError:  # an unknown (or non-text) codec
        return raw.decode("utf-8", errors="replace")


def _decode_ext_value(value: str) -> str:
    """``UTF-8'en'T%C3%A4st`` (RFC 5987 ext-value) -> ``Täst``."""
    value = _unquote_param(value)  # some clients quote it, wrongly
    parts = value.split("'", 2)
    if len(parts) != 3:
        return value
    charset, _language, encoded = parts
    return _decode_rfc2231(charset, urllib.parse.unquote_to_bytes(encoded))


def _parse_header(line: str) -> tuple[str, dict[str, str]]:
    """Split a ``Content-Type`` / ``Content-Disposition`` style value.

    ``'form-data; name="a\\\\"b"; filename*=UTF-8\\'\\'%C3%A4.txt'`` ->
    ``("form-data", {"name": 'a"b', "filename": "ä.txt"})``. Parameter
    names are lowercased; quoted values are unquoted (``\\"`` and ``\\\\``
    unescaped); RFC 2231/5987 extended (``name*=``) and continued
    (``name*0=``, ``name*1*=``) parameters are decoded and take precedence
    over a plain one of the same name. A parameter without ``=`` is ignored.
    Never raises.
    """
    segments = _split_segments(line)
    names: dict[str, None] = {}  # in order of first appearance
    plain: dict[str, str] = {}
    extended: dict[str, str] = {}
    continued: dict[str, dict[int, tuple[bool, str]]] = {}
    for segment in segments[1:]:
        name, sep, value = segment.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            continue
        value = value.strip()
        match = _CONTINUATION.match(name)
        if match:
            name = match.group(1)
            continued.setdefault(name, {})[int(match.group(2))] = (bool(match.group(3)), value)
        elif name.endswith("*"):
            name = name[:-1]
            extended[name] = _decode_ext_value(value)
        else:
            plain[name] = _unquote_param(value)
        names[name] = None
    for name, pieces in continued.items():
        # Pieces 0, 1, ... up to the first gap; the charset is the first
        # piece's, if that one is encoded.
        charset = "us-ascii"
        raw = bytearray()
        index = 0
        while index in pieces:
            encoded, value = pieces[index]
            if encoded:
                if index == 0:
                    parts = _unquote_param(value).split("'", 2)
                    if len(parts) == 3:
                        charset, value = parts[0], parts[2]
                raw += urllib.parse.unquote_to_bytes(value)
            else:
                raw += _unquote_param(value).encode("utf-8")
            index += 1
        if index:
            plain[name] = _decode_rfc2231(charset, bytes(raw))
    plain.update(extended)
    return segments[0], {name: plain[name] for name in names if name in plain}


def _encode_header(key: str, pdict: Mapping[str, str | int | None]) -> str:
    """The inverse of :func:`_parse_header`: ``key; name=value; ...``.

    Values are written as they are when they are tokens, as quoted strings
    when they are other printable ASCII, and as RFC 5987 ``name*=UTF-8''...``
    otherwise (so a CR or LF is percent-encoded, never sent). A None value
    writes the bare name (``client_no_context_takeover``), which
    :func:`_parse_header` ignores. Parameters keep the mapping's order.
    """
    out = [key]
    for name, value in pdict.items():
        if value is None:
            out.append(name)
            continue
        text = str(value)
        if _TOKEN_STR.match(text):
            out.append(f"{name}={text}")
        elif text.isascii() and text.isprintable():
            escaped = text.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'{name}="{escaped}"')
        else:
            encoded = urllib.parse.quote(text, safe="!#$&+-.^_`|~", encoding="utf-8")
            out.append(f"{name}*=UTF-8''{encoded}")
    return "; ".join(out)


# -- cookies -----------------------------------------------------------------------

# http.cookies._unquote's rules (octal \ooo or \<char>) with one regex pass;
# the stdlib's loop is private, and quadratic before CPython 3.12.6
# (CVE-2024-7592).
_COOKIE_ESCAPE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))", re.DOTALL)


def _cookie_unescape(match: re.Match[str]) -> str:
    octal = match.group(1)
    return chr(int(octal, 8)) if octal else match.group(2)


def _unquote_cookie(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    return _COOKIE_ESCAPE.sub(_cookie_unescape, value[1:-1])


def parse_cookie(cookie: str) -> dict[str, str]:
    """Parse a ``Cookie`` request header into ``{name: value}``, as browsers
    (not the RFCs) do it.

    Pairs are split on ``;``; a pair without ``=`` is a value with an empty
    name (as Firefox treats it); names and values are stripped; a quoted
    value is unquoted as :mod:`http.cookies` does. A later duplicate name
    wins. Never raises.
    """
    cookies: dict[str, str] = {}
    for chunk in cookie.split(";"):
        name, sep, value = chunk.partition("=")
        if not sep:
            name, value = "", name
        name, value = name.strip(), value.strip()
        if name or value:
            cookies[name] = _unquote_cookie(value)
    return cookies


# -- request bodies -----------------------------------------------------------------

#: Default limits of :func:`parse_body_arguments` (Tornado 6.6's). A part's
#: body (an upload) is limited only by the server's ``max_body_size``.
DEFAULT_MAX_PARTS = 100
DEFAULT_MAX_PART_HEADER_SIZE = 10 * 1024
DEFAULT_MAX_ARGUMENTS = 1000


@dataclasses.dataclass
class ParseMultipartConfig:
    """Limits on parsing ``multipart/form-data`` bodies (Tornado 6.5.5's API).

    ``enabled``: False refuses every multipart body with 400 (an application
    that takes no uploads need not parse them at all). ``max_parts``: parts
    per body. ``max_part_header_size``: bytes of one part's header lines.
    """

    enabled: bool = True
    max_parts: int = DEFAULT_MAX_PARTS
    max_part_header_size: int = DEFAULT_MAX_PART_HEADER_SIZE


@dataclasses.dataclass
class ParseUrlEncodedConfig:
    """Limits on parsing ``application/x-www-form-urlencoded`` bodies and
    query strings: ``max_arguments`` fields."""

    max_arguments: int = DEFAULT_MAX_ARGUMENTS


@dataclasses.dataclass
class ParseBodyConfig:
    """How request bodies are parsed: its ``multipart`` and ``urlencoded`` parts."""

    multipart: ParseMultipartConfig = dataclasses.field(default_factory=ParseMultipartConfig)
    urlencoded: ParseUrlEncodedConfig = dataclasses.field(default_factory=ParseUrlEncodedConfig)


_parse_body_config = ParseBodyConfig()


def set_parse_body_config(config: ParseBodyConfig) -> None:
    """Set the process-wide default of :func:`parse_body_arguments`,
    :func:`parse_multipart_form_data` and the query-string field limit.

    As in Tornado, a global setting: for an application that must raise a
    limit, or refuse multipart bodies altogether.
    """
    global _parse_body_config
    _parse_body_config = config


def parse_body_arguments(
    content_type: str,
    body: bytes,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    headers: HTTPHeaders | None = None,
    *,
    config: ParseBodyConfig | None = None,
    max_parts: int | None = None,
    max_part_header_size: int | None = None,
    max_arguments: int | None = None,
) -> None:
    """Add a form body's fields to ``arguments`` and its uploads to ``files``.

    ``application/x-www-form-urlencoded`` and ``multipart/form-data`` (its
    ``boundary`` parameter quoted or not) are parsed; any other content type
    is left alone. A body with a ``Content-Encoding`` other than
    ``identity`` (one the server did not decompress) is skipped with a
    warning on ``reactor.general``.

    Raises :class:`HTTPInputError` (which a server answers with 400) for a
    malformed body, or one over a limit, named in the message:
    ``max_arguments`` urlencoded fields, ``max_parts`` multipart parts,
    ``max_part_header_size`` bytes of one part's headers. The limits come
    from ``config`` (a :class:`ParseBodyConfig`; default: the one
    :func:`set_parse_body_config` set), and a ``max_*`` keyword overrides its
    field. On error ``arguments`` and ``files`` are left unchanged.
    """
    if config is None:
        config = _parse_body_config
    if max_arguments is None:
        max_arguments = config.urlencoded.max_arguments
    media_type, params = _parse_header(content_type)
    media_type = media_type.lower()
    if media_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return
    encoding = headers.get("Content-Encoding") if headers is not None else None
    if encoding is not None and encoding.strip().lower() != "identity":
        gen_log.warning("Unsupported Content-Encoding %r: form body not parsed", encoding)
        return
    if media_type == "application/x-www-form-urlencoded":
        count = body.count(b"&") + 1
        if count > max_arguments:
            raise HTTPInputError(
                f"urlencoded body has {count} fields, more than max_arguments={max_arguments}"
            )
        try:
            parsed = parse_qs_bytes(body, keep_blank_values=True)
        except ValueError as e:  # not expected without strict_parsing, but never a 500
            raise HTTPInputError(f"invalid x-www-form-urlencoded body: {e}") from e
        for name, values in parsed.items():
            arguments.setdefault(name, []).extend(values)
        return
    boundary = params.get("boundary")
    if not boundary:
        raise HTTPInputError(f"multipart/form-data without a boundary: {content_type[:100]!r}")
    parse_multipart_form_data(
        boundary.encode("utf-8"),
        body,
        arguments,
        files,
        config=config.multipart,
        max_parts=max_parts,
        max_part_header_size=max_part_header_size,
    )


# Multipart framing (RFC 7578 on RFC 2046 section 5.1.1): the body is
#
#     [preamble CRLF] --boundary [padding] CRLF part
#     CRLF --boundary [padding] CRLF part
#     ...
#     CRLF --boundary-- [epilogue]
#
# where a part is its header lines, an empty line, then its content. The CRLF
# before each "--boundary" belongs to the delimiter, not to the content. A
# part may contain anything except that delimiter: so a content cannot start
# with "--boundary" either, as the empty line's CRLF precedes it. Padding is
# spaces or tabs; preamble and epilogue are ignored.


def parse_multipart_form_data(
    boundary: bytes,
    data: bytes,
    arguments: dict[str, list[bytes]],
    files: dict[str, list[HTTPFile]],
    *,
    config: ParseMultipartConfig | None = None,
    max_parts: int | None = None,
    max_part_header_size: int | None = None,
) -> None:
    """Add the fields of a ``multipart/form-data`` body to ``arguments``
    (name -> list of bytes values) and its files to ``files`` (name -> list
    of :class:`HTTPFile`).

    ``boundary`` may still carry the quotes of the Content-Type parameter.
    Each part needs ``Content-Disposition: form-data`` with a non-empty
    ``name``; a non-empty ``filename`` (or ``filename*=``) makes it a file,
    whose content type is the part's ``Content-Type`` (else
    ``application/unknown``). Raises :class:`HTTPInputError` for a malformed
    body, a missing final boundary, or more than ``max_parts`` parts or
    ``max_part_header_size`` bytes of one part's headers (from ``config``,
    default the global :class:`ParseMultipartConfig`; a keyword overrides
    it), or when ``config.enabled`` is False; on error ``arguments`` and
    ``files`` are left unchanged.
    """
    if config is None:
        config = _parse_body_config.multipart
    if not config.enabled:
        raise HTTPInputError("multipart/form-data parsing is disabled")
    if max_parts is None:
        max_parts = config.max_parts
    if max_part_header_size is None:
        max_part_header_size = config.max_part_header_size
    if len(boundary) >= 2 and boundary[:1] == boundary[-1:] == b'"':
        boundary = boundary[1:-1]
    if not boundary:
        raise HTTPInputError("multipart/form-data with an empty boundary")
    delimiter = b"--" + boundary
    if data.startswith(delimiter):
        pos = len(delimiter)
    else:
        start = data.find(b"\r\n" + delimiter)
        if start < 0:
            raise HTTPInputError("multipart/form-data body without its boundary")
        pos = start + 2 + len(delimiter)
    next_delimiter = b"\r\n" + delimiter
    new_arguments: list[tuple[str, bytes]] = []
    new_files: list[tuple[str, HTTPFile]] = []
    while not data.startswith(b"--", pos):  # "--boundary--" ends the body
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            raise HTTPInputError("multipart/form-data body ends without its final boundary")
        if data[pos:line_end].strip(b" \t"):
            raise HTTPInputError("multipart/form-data: unexpected data after a boundary")
        start = line_end + 2
        end = data.find(next_delimiter, start)
        if end < 0:
            raise HTTPInputError("multipart/form-data body ends without its final boundary")
        if len(new_arguments) + len(new_files) >= max_parts:
            raise HTTPInputError(f"multipart/form-data has more than max_parts={max_parts} parts")
        name, value = _parse_part(data, start, end, max_part_header_size)
        if isinstance(value, HTTPFile):
            new_files.append((name, value))
        else:
            new_arguments.append((name, value))
        pos = end + len(next_delimiter)
    for name, field in new_arguments:
        arguments.setdefault(name, []).append(field)
    for name, file in new_files:
        files.setdefault(name, []).append(file)


def _parse_part(
    data: bytes, start: int, end: int, max_header_size: int
) -> tuple[str, bytes | HTTPFile]:
    """The part ``data[start:end]``: (name, field value or file)."""
    if data.startswith(b"\r\n", start, end):  # no header lines at all
        header_end = start
        body_start = start + 2
    else:
        header_end = data.find(b"\r\n\r\n", start, min(end, start + max_header_size + 4))
        if header_end < 0:
            if end - start > max_header_size:
                raise HTTPInputError(
                    f"multipart/form-data part headers longer than "
                    f"max_part_header_size={max_header_size} bytes"
                )
            raise HTTPInputError("multipart/form-data part without an empty line after its headers")
        body_start = header_end + 4
    try:
        header_text = data[start:header_end].decode("utf-8")
    except UnicodeDecodeError as e:
        raise HTTPInputError("multipart/form-data part headers are not UTF-8") from e
    try:
        headers = HTTPHeaders.parse(header_text)
    except HTTPInputError as e:  # say where: the 400's log line is all the client gets
        raise HTTPInputError(f"multipart/form-data part headers: {e}") from e
    disposition_header = headers.get("Content-Disposition")
    if disposition_header is None:
        raise HTTPInputError("multipart/form-data part without Content-Disposition")
    disposition, params = _parse_header(disposition_header)
    if disposition.lower() != "form-data":
        raise HTTPInputError(
            f"multipart/form-data part with Content-Disposition {disposition[:100]!r}, "
            f"not 'form-data'"
        )
    name = params.get("name")
    if not name:
        raise HTTPInputError("multipart/form-data part without a name")
    value = data[body_start:end]
    filename = params.get("filename")
    if filename:
        content_type = headers.get("Content-Type", "application/unknown")
        return name, HTTPFile(filename=filename, body=value, content_type=content_type)
    return name, value
