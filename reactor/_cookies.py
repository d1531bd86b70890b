"""Cookies, signed values and XSRF tokens for :class:`reactor.web.RequestHandler`.

``reactor.web`` re-exports the public names defined here
(``create_signed_value``, ``decode_signed_value``,
``get_signature_key_version``); ``RequestHandler`` inherits
:class:`CookieMixin`.

The contract between the mixin and the handler:

- The mixin reads ``self.request`` (its ``cookies``, ``headers``,
  ``arguments``), ``self.application.settings`` (``cookie_secret``,
  ``key_version``, ``xsrf_cookie_version``, ``xsrf_cookie_kwargs``,
  ``xsrf_cookie_name``), ``self.current_user``, and calls
  ``self.require_setting(name, feature)`` and ``self.get_argument``.
- Cookies set during a request are kept in ``self._new_cookie``: ``None``
  until the first ``set_cookie``, then an ``http.cookies.SimpleCookie``.
  ``RequestHandler.flush`` writes one ``Set-Cookie`` header per morsel
  (``morsel.OutputString(None)``) before the response's headers go out, and
  ``RequestHandler.clear`` does not drop them.
- For methods other than GET, HEAD and OPTIONS the handler calls
  ``_cross_origin_protection`` before ``prepare``: ``check_xsrf_cookie``
  with the ``xsrf_cookies`` setting, the Sec-Fetch-Site/Origin check with
  ``cross_origin_protection``; each raises ``HTTPError(403, ...)``.

Some facts about the wire formats (Tornado 6.6's, byte for byte, so that a
cookie a Tornado application signed stays valid after porting; each fact has
a test in ``tests/test_signing.py``):

- A signed value is ``version 1`` or ``version 2``. Version 1 is
  ``base64(value)|timestamp|hex(HMAC-SHA1(secret, name + base64 + timestamp))``:
  no delimiter is hashed between the parts, so digits can move from the
  payload into the timestamp without changing the signature. That is why a
  version 1 timestamp with a leading zero, or more than 31 days in the
  future, is refused.
- Version 2 is ``2|len:key_version|len:timestamp|len:name|len:base64(value)|``
  followed by ``hex(HMAC-SHA256(secret, everything before it))``; the lengths
  are decimal byte counts. Everything but the signature is covered by it, so
  a key version cannot be swapped and the name is bound to the value.
- Version 1 values have no version field and start with base64 data, so a
  value is version 2 (or a later, unknown one) only when it starts with 1 to
  3 decimal digits without a leading zero and a ``|``; base64 padding rules
  keep a real version 1 payload from looking like that.
- Decoding is a single left-to-right pass with a bounded number of
  ``find`` calls, so its cost is linear in the value's length whatever the
  value holds; malformed values read as ``None`` and never raise.
- The XSRF token is either version 1, ``hex(token)``, or version 2,
  ``2|hex(mask)|hex(token XOR mask)|timestamp``, with a fresh 4-byte mask per
  response so that the token's bytes differ on every page (BREACH: a
  compressed page must not repeat a secret an attacker can guess at).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import http.cookies
import os
import re
import time
import urllib.parse
import warnings
from collections.abc import Callable, Container, Mapping
from typing import TYPE_CHECKING, Any, overload

from reactor import escape, httputil
from reactor.log import gen_log

if TYPE_CHECKING:
    from reactor.httputil import HTTPServerRequest
    from reactor.web import Application

__all__ = [
    "DEFAULT_SIGNED_VALUE_MIN_VERSION",
    "DEFAULT_SIGNED_VALUE_VERSION",
    "MAX_SUPPORTED_SIGNED_VALUE_VERSION",
    "MIN_SUPPORTED_SIGNED_VALUE_VERSION",
    "CookieMixin",
    "create_signed_value",
    "decode_signed_value",
    "get_signature_key_version",
]

#: The oldest and newest signed value versions this module reads and writes.
MIN_SUPPORTED_SIGNED_VALUE_VERSION = 1
MAX_SUPPORTED_SIGNED_VALUE_VERSION = 2
#: The version :func:`create_signed_value` writes unless told otherwise.
DEFAULT_SIGNED_VALUE_VERSION = 2
#: The oldest version :func:`decode_signed_value` accepts unless told otherwise.
DEFAULT_SIGNED_VALUE_MIN_VERSION = 1

_CookieSecretTypes = str | bytes | Mapping[int, str] | Mapping[int, bytes]

# A version 1 timestamp may lie at most this far ahead (its digits can be
# borrowed from the payload, see the module docstring); version 2 gets the
# same tolerance for clock skew between servers sharing a secret.
_MAX_FUTURE_SECONDS = 31 * 86400
# No real length prefix, key version or timestamp needs more digits; a
# longer one is refused before int() sees it.
_MAX_DIGITS = 20
# How much of a refused value a log line quotes.
_LOG_PREFIX = 100


def _log_refused(reason: str, value: bytes) -> None:
    gen_log.warning("%s: %r", reason, value[:_LOG_PREFIX])


def _is_digits(field: bytes) -> bool:
    # bytes.isdigit() is ASCII-only, unlike int(), which also accepts
    # whitespace, a sign and underscores.
    return 0 < len(field) <= _MAX_DIGITS and field.isdigit()


def _signature_v1(secret: str | bytes, *parts: bytes) -> bytes:
    mac = hmac.new(escape.utf8(secret), digestmod=hashlib.sha1)
    for part in parts:
        mac.update(part)
    return mac.hexdigest().encode("ascii")


def _signature_v2(secret: str | bytes, signed: bytes) -> bytes:
    return hmac.new(escape.utf8(secret), signed, hashlib.sha256).hexdigest().encode("ascii")


def _field(data: bytes) -> bytes:
    return b"%d:%s" % (len(data), data)


def create_signed_value(
    secret: _CookieSecretTypes,
    name: str,
    value: str | bytes,
    version: int | None = None,
    clock: Callable[[], float] | None = None,
    key_version: int | None = None,
) -> bytes:
    """Sign and timestamp ``value`` under ``name`` so that it cannot be forged.

    ``secret`` is the HMAC key, or a ``{key_version: key}`` mapping used with
    ``key_version`` (version 2 only) so that keys can be rotated. ``version``
    is the format, 2 by default; ``clock`` returns the current POSIX time.
    Raises ValueError for an unknown version, or a mapping without
    ``key_version`` (or with version 1).
    """
    if version is None:
        version = DEFAULT_SIGNED_VALUE_VERSION
    timestamp = str(int((clock or time.time)())).encode("ascii")
    payload = base64.b64encode(escape.utf8(value))
    if version == 1:
        if isinstance(secret, Mapping):
            raise ValueError("signed value version 1 cannot use a key-version dict secret")
        return b"|".join(
            [payload, timestamp, _signature_v1(secret, escape.utf8(name), payload, timestamp)]
        )
    if version != 2:
        raise ValueError(f"Unsupported signed value version {version!r}")
    if isinstance(secret, Mapping):
        if key_version is None:
            raise ValueError("key_version must be set when the secret is a key-version dict")
        secret = secret[key_version]
    signed = b"|".join(
        [
            b"2",
            _field(str(key_version or 0).encode("ascii")),
            _field(timestamp),
            _field(escape.utf8(name)),
            _field(payload),
            b"",
        ]
    )
    return signed + _signature_v2(secret, signed)


def _version_of(value: bytes) -> int:
    """The format version of a signed value (1 when it has no version field)."""
    bar = value.find(b"|", 0, 4)
    if bar > 0 and value[:1] != b"0" and value[:bar].isdigit():
        return int(value[:bar])
    return 1


def _split_v2(value: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes, int] | None:
    """(key version, timestamp, name, payload, signature, signed length) of a
    version 2 value, or None when its framing is malformed."""
    fields = []
    pos = 2  # after "2|"
    find = value.find
    for _ in range(4):
        # At most _MAX_DIGITS digits, so int() never sees a long number.
        colon = find(b":", pos, pos + _MAX_DIGITS + 1)
        if colon <= pos:  # none, or an empty length
            return None
        length = value[pos:colon]
        if not length.isdigit():  # ASCII digits only: no sign, space or "_"
            return None
        end = colon + 1 + int(length)
        if value[end : end + 1] != b"|":
            return None
        fields.append(value[colon + 1 : end])
        pos = end + 1
    key_version, timestamp, name, payload = fields
    return key_version, timestamp, name, payload, value[pos:], pos


def _b64decode(payload: bytes) -> bytes | None:
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_signed_value(
    secret: _CookieSecretTypes,
    name: str,
    value: str | bytes | None,
    max_age_days: float = 31,
    clock: Callable[[], float] | None = None,
    min_version: int | None = None,
) -> bytes | None:
    """The value :func:`create_signed_value` signed, or None if ``value`` is
    not a valid signed value for ``name`` under ``secret``.

    None also for a value older than ``max_age_days``, one more than 31 days
    in the future, one of a version below ``min_version`` (default 1) or
    unknown, and a key version the ``secret`` dict does not hold. Never
    raises for any ``value``; raises ValueError for a ``min_version`` above 2.
    A refused signature, name or timestamp is logged as a warning on
    ``reactor.general``.
    """
    if min_version is None:
        min_version = DEFAULT_SIGNED_VALUE_MIN_VERSION
    if min_version > MAX_SUPPORTED_SIGNED_VALUE_VERSION:
        raise ValueError(f"Unsupported min_version {min_version!r}")
    if not value:
        return None
    if isinstance(value, str):
        try:
            value = value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            return None
    version = _version_of(value)
    if version < min_version:
        return None
    now = (clock or time.time)()
    if version == 1:
        if isinstance(secret, Mapping):
            return None  # version 1 has no key version to pick a key with
        return _decode_v1(secret, name, value, max_age_days, now)
    if version == 2:
        return _decode_v2(secret, name, value, max_age_days, now)
    return None


def _timestamp_ok(timestamp: int, max_age_days: float, now: float, value: bytes) -> bool:
    if timestamp < now - max_age_days * 86400:
        _log_refused("Expired signed value", value)
        return False
    if timestamp > now + _MAX_FUTURE_SECONDS:
        _log_refused("Signed value timestamp in the future; possible tampering", value)
        return False
    return True


def _decode_v1(
    secret: str | bytes, name: str, value: bytes, max_age_days: float, now: float
) -> bytes | None:
    parts = value.split(b"|", 3)
    if len(parts) != 3:
        return None
    payload, timestamp, signature = parts
    try:
        expected = _signature_v1(secret, name.encode("utf-8"), payload, timestamp)
    except UnicodeEncodeError:
        return None
    if not hmac.compare_digest(signature, expected):
        _log_refused("Invalid signed value signature", value)
        return None
    if not _is_digits(timestamp):
        return None
    if timestamp.startswith(b"0"):
        _log_refused("Tampered signed value (timestamp with a leading zero)", value)
        return None
    if not _timestamp_ok(int(timestamp), max_age_days, now, value):
        return None
    return _b64decode(payload)


def _decode_v2(
    secret: _CookieSecretTypes, name: str, value: bytes, max_age_days: float, now: float
) -> bytes | None:
    fields = _split_v2(value)
    if fields is None:
        return None
    key_version, timestamp, name_field, payload, signature, signed_length = fields
    if not _is_digits(key_version):
        return None
    if isinstance(secret, Mapping):
        key = secret.get(int(key_version))
        if key is None:
            return None
    else:
        key = secret
    expected = _signature_v2(key, value[:signed_length])
    if not hmac.compare_digest(signature, expected):
        _log_refused("Invalid signed value signature", value)
        return None
    try:
        if name_field != name.encode("utf-8"):
            _log_refused(f"Signed value for another name than {name!r}", value)
            return None
    except UnicodeEncodeError:
        return None
    if not _is_digits(timestamp) or not _timestamp_ok(int(timestamp), max_age_days, now, value):
        return None
    return _b64decode(payload)


def get_signature_key_version(value: str | bytes) -> int | None:
    """The key version a version 2 signed value names (not checked against
    its signature), or None for version 1 and malformed values."""
    if isinstance(value, str):
        try:
            value = value.encode("utf-8")
        except UnicodeEncodeError:
            return None
    if _version_of(value) != 2:
        return None
    fields = _split_v2(value)
    if fields is None or not _is_digits(fields[0]):
        return None
    return int(fields[0])


# -- cookies -------------------------------------------------------------------------


class _HTMLStr(str):
    """A ``str`` that Jinja2's autoescaping writes as it is (``__html__``).

    Unlike :class:`markupsafe.Markup` it keeps str's own operators: joined
    to other text in Python it gives a plain ``str`` and escapes nothing.
    """

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


class _InvalidCookieError(http.cookies.CookieError, ValueError):
    """A cookie name, value or attribute that cannot be sent.

    Both a ValueError (what Tornado raises for a bad value) and a
    :class:`http.cookies.CookieError` (what it raises for a bad name or
    attribute), so that either ``except`` clause catches it.
    """


# RFC 6265 section 4.1.1: a cookie-value has no CTLs, whitespace, DQUOTE,
# comma, semicolon or backslash; http.cookies quotes the others (DEL and
# latin-1 letters as octal escapes), so control characters and space are
# refused in a value (as Tornado does). An attribute (and the name) may not
# hold a CTL or ";", which would end it and start a new attribute in the
# Set-Cookie header. Neither may hold a character above U+00FF: a header is
# latin-1 on the wire, so http.cookies has no escape for it, and the
# response would fail after its status was chosen (Tornado's does).
_BAD_VALUE = re.compile(r"[\x00-\x20]|[^\x00-\xff]")
_BAD_ATTRIBUTE = re.compile(r"[\x00-\x20;\x7f]|[^\x00-\xff]")


def _xor_mask(mask: bytes, data: bytes) -> bytes:
    """``data`` XOR a 4-byte ``mask`` repeated (the XSRF token's masking)."""
    repeated = (mask * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(data), "big"
    )


class CookieMixin:
    """Cookie, signed-cookie and XSRF methods of ``RequestHandler``."""

    if TYPE_CHECKING:
        request: HTTPServerRequest
        application: Application
        _new_cookie: http.cookies.SimpleCookie | None
        _xsrf_token: bytes
        _raw_xsrf_token: tuple[int | None, bytes, float]

        # RequestHandler's, with the types this mixin relies on.
        current_user: Any
        require_setting: Callable[..., None]
        get_argument: Callable[..., Any]

    @property
    def cookies(self) -> dict[str, http.cookies.Morsel[str]]:
        """An alias for ``self.request.cookies``."""
        return self.request.cookies

    @overload
    def get_cookie(self, name: str, default: str) -> str: ...
    @overload
    def get_cookie(self, name: str, default: None = None) -> str | None: ...
    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """The value of the request's cookie ``name``, or ``default``.

        Only the request's cookies are seen, not those this handler set.
        """
        morsel = self.request.cookies.get(name)
        return morsel.value if morsel is not None else default

    def set_cookie(
        self,
        name: str,
        value: str | bytes,
        domain: str | None = None,
        expires: float | tuple[int, ...] | datetime.datetime | None = None,
        path: str = "/",
        expires_days: float | None = None,
        *,
        max_age: int | None = None,
        httponly: bool = False,
        secure: bool = False,
        samesite: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Set an outgoing cookie (a ``Set-Cookie`` header of the response).

        ``expires`` is a POSIX timestamp, a UTC time tuple or a datetime;
        ``expires_days`` is a lifetime in days from now, used when
        ``expires`` is not given. ``max_age`` is in seconds; ``httponly`` and
        ``secure`` add those flags; ``samesite`` is ``"Strict"``, ``"Lax"``
        or ``"None"``. Other keyword arguments are written as attributes of
        that name (any case), with a DeprecationWarning, as in Tornado.

        Raises ValueError (also an :class:`http.cookies.CookieError`) for a
        value holding a control character or space, for a name or attribute
        holding one or ``;``, and for either holding a character above
        U+00FF (encode such text first, e.g. with ``url_escape``, or use
        `set_signed_cookie`, which takes any bytes). The cookie is seen by
        `get_cookie` from the next request on.
        """
        name = escape.native_str(name)
        value = escape.native_str(value)
        if _BAD_VALUE.search(value):
            raise _InvalidCookieError(f"Invalid cookie {name!r}: {value!r}")
        checked: list[tuple[str, Any]] = [
            ("name", name),
            ("domain", domain),
            ("path", path),
            ("samesite", samesite),
        ]
        checked.extend(kwargs.items())
        for attribute, attribute_value in checked:
            if attribute_value is not None and _BAD_ATTRIBUTE.search(str(attribute_value)):
                raise _InvalidCookieError(
                    f"Invalid cookie attribute {attribute}={attribute_value!r} for cookie {name!r}"
                )
        if max_age:
            # int() before anything is stored, so that a str max_age can
            # neither smuggle attributes in nor leave half a cookie behind.
            max_age = int(max_age)
        jar = getattr(self, "_new_cookie", None)
        if jar is None:
            jar = self._new_cookie = http.cookies.SimpleCookie()
        if name in jar:
            del jar[name]
        try:
            jar[name] = value
        except http.cookies.CookieError as e:  # a name the stdlib refuses
            raise _InvalidCookieError(f"Invalid cookie name {name!r}: {e}") from e
        morsel = jar[name]
        if domain:
            morsel["domain"] = domain
        if expires_days is not None and not expires:
            expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                days=expires_days
            )
        if expires:
            morsel["expires"] = httputil.format_timestamp(expires)
        if path:
            morsel["path"] = path
        if max_age:
            morsel["max-age"] = str(max_age)
        if httponly:
            morsel["httponly"] = True
        if secure:
            morsel["secure"] = True
        if samesite:
            morsel["samesite"] = samesite
        if kwargs:
            for attribute, attribute_value in kwargs.items():
                morsel[attribute] = attribute_value  # case-insensitive; CookieError if unknown
            warnings.warn(
                f"Deprecated arguments to set_cookie: {set(kwargs)} (should be lowercase)",
                DeprecationWarning,
                stacklevel=2,
            )

    def clear_cookie(self, name: str, **kwargs: Any) -> None:
        """Delete the cookie ``name``: set it empty, expired a year ago.

        Takes `set_cookie`'s keyword arguments except ``expires`` and
        ``max_age`` (TypeError); ``domain`` and ``path`` (and for
        ``samesite="None"`` cookies ``samesite`` and ``secure``) must be the
        ones the cookie was set with, or the browser keeps it.
        """
        for excluded in ("expires", "max_age"):
            if excluded in kwargs:
                raise TypeError(f"clear_cookie() got an unexpected keyword argument '{excluded}'")
        expires = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=365)
        self.set_cookie(name, value="", expires=expires, **kwargs)

    def clear_all_cookies(self, **kwargs: Any) -> None:
        """`clear_cookie` for every cookie of the request, with ``kwargs``.

        Deprecated in Tornado 6.3: the server knows a cookie's name only, not
        the domain and path it was set with; clear cookies one at a time.
        """
        for name in self.request.cookies:
            self.clear_cookie(name, **kwargs)

    # -- signed cookies --------------------------------------------------------------

    def set_signed_cookie(
        self,
        name: str,
        value: str | bytes,
        expires_days: float | None = 30,
        version: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Set a cookie signed and timestamped with the ``cookie_secret``
        setting, to be read back with `get_signed_cookie`.

        ``expires_days`` is the browser's lifetime of the cookie (None: the
        browser session), independent of ``get_signed_cookie``'s
        ``max_age_days``; the value may be any bytes. Other arguments are
        `set_cookie`'s.
        """
        self.set_cookie(
            name,
            self.create_signed_value(name, value, version=version),
            expires_days=expires_days,
            **kwargs,
        )

    set_secure_cookie = set_signed_cookie

    def create_signed_value(
        self, name: str, value: str | bytes, version: int | None = None
    ) -> bytes:
        """:func:`create_signed_value` with the application's
        ``cookie_secret`` (and ``key_version`` if the secret is a dict)."""
        self.require_setting("cookie_secret", "secure cookies")
        settings = self.application.settings
        secret = settings["cookie_secret"]
        key_version = None
        if isinstance(secret, Mapping):
            key_version = settings.get("key_version")
            if key_version is None:
                raise ValueError("key_version setting must be used for secret_key dicts")
        return create_signed_value(secret, name, value, version=version, key_version=key_version)

    def get_signed_cookie(
        self,
        name: str,
        value: str | None = None,
        max_age_days: float = 31,
        min_version: int | None = None,
    ) -> bytes | None:
        """The value of the request's signed cookie ``name`` (or of
        ``value``, if given) as bytes, or None if it is missing, forged,
        older than ``max_age_days`` or below ``min_version``."""
        self.require_setting("cookie_secret", "secure cookies")
        if value is None:
            value = self.get_cookie(name)
        return decode_signed_value(
            self.application.settings["cookie_secret"],
            name,
            value,
            max_age_days=max_age_days,
            min_version=min_version,
        )

    get_secure_cookie = get_signed_cookie

    def get_signed_cookie_key_version(self, name: str, value: str | None = None) -> int | None:
        """The key version of the request's signed cookie ``name`` (or of
        ``value``), or None (unsigned check: read it with `get_signed_cookie`)."""
        self.require_setting("cookie_secret", "secure cookies")
        if value is None:
            value = self.get_cookie(name)
        if value is None:
            return None
        return get_signature_key_version(value)

    get_secure_cookie_key_version = get_signed_cookie_key_version

    # -- XSRF ------------------------------------------------------------------------

    @property
    def xsrf_token(self) -> bytes:
        """This response's XSRF token (ASCII bytes), for forms and headers.

        Read from the ``_xsrf`` cookie (``xsrf_cookie_name`` setting), or
        made and set as that cookie (with the ``xsrf_cookie_kwargs``
        setting; ``expires_days=30`` by default for a logged-in user) when
        the request has none. With ``xsrf_cookie_version`` 2 (the default)
        the token is masked afresh on every access of a new handler:
        ``2|mask|masked token|timestamp``; version 1 is the token in hex.
        """
        if not hasattr(self, "_xsrf_token"):
            version, token, timestamp = self._get_raw_xsrf_token()
            settings = self.application.settings
            output_version = settings.get("xsrf_cookie_version", 2)
            if output_version == 1:
                self._xsrf_token = binascii.b2a_hex(token)
            elif output_version == 2:
                mask = os.urandom(4)
                self._xsrf_token = b"|".join(
                    [
                        b"2",
                        binascii.b2a_hex(mask),
                        binascii.b2a_hex(_xor_mask(mask, token)),
                        str(int(timestamp)).encode("ascii"),
                    ]
                )
            else:
                raise ValueError(f"unknown xsrf cookie version {output_version!r}")
            if version is None:
                # A copy: Tornado adds expires_days to the setting itself.
                cookie_kwargs = dict(settings.get("xsrf_cookie_kwargs", {}))
                if "expires_days" not in cookie_kwargs and self.current_user:
                    cookie_kwargs["expires_days"] = 30
                cookie_name = settings.get("xsrf_cookie_name", "_xsrf")
                self.set_cookie(cookie_name, self._xsrf_token, **cookie_kwargs)
        return self._xsrf_token

    def _get_raw_xsrf_token(self) -> tuple[int | None, bytes, float]:
        """(version, token, timestamp) of the request's XSRF cookie, or a
        new random token with version None when it has none (or a bad one).

        The token is 16 random bytes for tokens made here; a version 1
        cookie's timestamp is the current time (it has none).
        """
        if not hasattr(self, "_raw_xsrf_token"):
            cookie = self.get_cookie(self.application.settings.get("xsrf_cookie_name", "_xsrf"))
            version: int | None = None
            token: bytes | None = None
            timestamp: float | None = None
            if cookie:
                version, token, timestamp = self._decode_xsrf_token(cookie)
            if token is None or timestamp is None:
                version, token, timestamp = None, os.urandom(16), time.time()
            self._raw_xsrf_token = (version, token, timestamp)
        return self._raw_xsrf_token

    def _decode_xsrf_token(self, cookie: str) -> tuple[int | None, bytes | None, float | None]:
        """(version, token, timestamp) of an XSRF token or cookie, or
        ``(None, None, None)`` when it is malformed (never raises)."""
        try:
            data = cookie.encode("utf-8")
        except UnicodeEncodeError:
            return None, None, None
        bar = data.find(b"|", 0, 4)
        if bar > 0 and data[:1] != b"0" and data[:bar].isdigit():
            parts = data.split(b"|", 4)
            if data[:bar] != b"2" or len(parts) != 4:
                gen_log.debug("Unknown or malformed XSRF token %r", data[:_LOG_PREFIX])
                return None, None, None
            _, mask_hex, masked_hex, timestamp_field = parts
            try:
                mask = binascii.a2b_hex(mask_hex)
                masked = binascii.a2b_hex(masked_hex)
            except (binascii.Error, ValueError):
                return None, None, None
            if len(mask) != 4 or not _is_digits(timestamp_field):
                return None, None, None
            return 2, _xor_mask(mask, masked), int(timestamp_field)
        # Version 1: the token in hex, or (older still) the raw cookie.
        try:
            token = binascii.a2b_hex(data)
        except (binascii.Error, ValueError):
            token = data
        return 1, token, int(time.time())

    def _cross_origin_protection(self) -> None:
        """The checks before ``prepare`` of a request that may change state
        (any method but GET, HEAD and OPTIONS): `check_xsrf_cookie` with the
        ``xsrf_cookies`` setting, the ``Sec-Fetch-Site``/``Origin`` check
        with the ``cross_origin_protection`` setting. Raises HTTPError(403)."""
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return
        settings = self.application.settings
        if settings.get("xsrf_cookies"):
            self.check_xsrf_cookie()
        if settings.get("cross_origin_protection"):
            error = self._check_cross_origin(self.check_trusted_origin)
            if error is not None:
                from reactor.web import HTTPError  # see check_xsrf_cookie

                raise HTTPError(403, error)

    def _check_cross_origin(self, check: Callable[[str], bool]) -> str | None:
        """None if the request may go on, else why not.

        Fetch Metadata (W3C): a browser says in ``Sec-Fetch-Site`` where a
        request comes from. ``same-origin`` and ``none`` (the user typed the
        URL) pass. Without the header (an old browser, plain HTTP, or not a
        browser at all) the ``Origin`` header is the evidence: none (not a
        browser), one naming this ``Host``, or one ``check`` trusts passes.
        ``same-site`` and ``cross-site`` pass only with an ``Origin`` that
        ``check`` trusts. The WebSocket handler uses this with its
        ``check_origin``.
        """
        headers = self.request.headers
        fetch_site = headers.get("Sec-Fetch-Site")
        origin = headers.get("Origin")
        if fetch_site in ("same-origin", "none"):
            return None
        if fetch_site is None:
            if origin is None or self._origin_matches_host(origin) or check(origin):
                return None
            return f"Origin {origin[:_LOG_PREFIX]!r} not allowed"
        if origin and check(origin):
            return None
        shown = None if origin is None else origin[:_LOG_PREFIX]
        return f"Sec-Fetch-Site {fetch_site[:_LOG_PREFIX]} & origin {shown!r} not allowed"

    def _origin_matches_host(self, origin: str) -> bool:
        """Whether ``origin``'s host and port are the request's ``Host``
        (not its scheme: behind a TLS proxy the server may not know it)."""
        try:
            netloc = urllib.parse.urlsplit(origin).netloc
        except ValueError:  # "http://[::1": a malformed origin matches nothing
            return False
        host: str = self.request.headers.get("Host", "")
        return netloc.lower() == host.lower()

    def check_trusted_origin(self, origin: str) -> bool:
        """Whether a state-changing request from another ``origin`` (e.g.
        ``https://app.example``) is allowed, under the
        ``cross_origin_protection`` setting: by default, if it is in the
        ``trusted_origins`` setting. Override to decide otherwise (return
        True to exempt a handler); it runs before ``prepare``, so it can
        only look at the request."""
        trusted: Container[str] = self.application.settings.get("trusted_origins", ())
        return origin in trusted

    def check_xsrf_cookie(self) -> None:
        """Raise ``HTTPError(403)`` unless the request carries the token of
        its XSRF cookie: in the ``_xsrf`` argument, or an ``X-XSRFToken`` or
        ``X-CSRFToken`` header. Masked (version 2) and version 1 tokens are
        compared by their unmasked bytes, in constant time."""
        # Imported here: reactor.web imports this module (RequestHandler
        # inherits CookieMixin), and only this error path needs HTTPError.
        from reactor.web import HTTPError

        # No exemption for "X-Requested-With" (Django and Rails, Feb 2011:
        # browser plugins could forge such requests cross-site).
        input_token = (
            self.get_argument("_xsrf", None)
            or self.request.headers.get("X-Xsrftoken")
            or self.request.headers.get("X-Csrftoken")
        )
        if not input_token:
            raise HTTPError(403, "'_xsrf' argument missing from POST")
        _, token, _ = self._decode_xsrf_token(input_token)
        if not token:
            raise HTTPError(403, "'_xsrf' argument has invalid format")
        _, expected, _ = self._get_raw_xsrf_token()
        if not hmac.compare_digest(token, expected):
            raise HTTPError(403, "XSRF cookie does not match POST argument")

    def xsrf_form_html(self) -> str:
        """``<input type="hidden" name="_xsrf" value="..."/>`` for every POST
        form of an application with the ``xsrf_cookies`` setting.

        Returned as a plain ``str`` that also has ``__html__``, so that a
        Jinja2 template writes it as HTML instead of escaping it, while
        ``"<form>" + self.xsrf_form_html()`` in Python stays unescaped
        text, as in Tornado (a :class:`markupsafe.Markup` would escape the
        other operand).
        """
        return _HTMLStr(
            '<input type="hidden" name="_xsrf" value="'
            + escape.xhtml_escape(self.xsrf_token)
            + '"/>'
        )
