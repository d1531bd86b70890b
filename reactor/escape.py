"""Escaping and unescaping for HTML, JSON and URLs, and text/bytes conversion.

The names and behaviour follow ``tornado.escape``: :func:`utf8` and
:func:`to_unicode` convert between ``str`` and UTF-8 ``bytes`` and let
``None`` through; the escaping functions accept either type and return
``str`` (except :func:`url_unescape` with ``encoding=None``, which returns
``bytes``).

:func:`utf8`, :func:`to_unicode` and :func:`xhtml_escape` sit on the request
and template hot paths, so they check the common exact type first and fall
back to ``isinstance`` for subclasses.
"""

from __future__ import annotations

import html.entities
import json
import re
import urllib.parse
from collections.abc import Callable, Collection
from typing import Any, overload

__all__ = [
    "json_decode",
    "json_encode",
    "linkify",
    "native_str",
    "parse_qs_bytes",
    "recursive_unicode",
    "squeeze",
    "to_basestring",
    "to_unicode",
    "url_escape",
    "url_unescape",
    "utf8",
    "xhtml_escape",
    "xhtml_unescape",
]


# -- bytes and text ----------------------------------------------------------


@overload
def utf8(value: bytes) -> bytes: ...
@overload
def utf8(value: str) -> bytes: ...
@overload
def utf8(value: None) -> None: ...
def utf8(value: str | bytes | None) -> bytes | None:
    """Return ``value`` as UTF-8 bytes; ``bytes`` and ``None`` pass through.

    Raises TypeError for any other type.
    """
    # The converting case first, by exact type: on str this takes about half
    # the time of testing isinstance(value, (bytes, NoneType)) first (timeit,
    # CPython 3.11), and costs the pass-through cases one cheap comparison.
    if type(value) is str:
        return value.encode()
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"utf8() expects str, bytes or None, not {type(value).__name__}")


@overload
def to_unicode(value: str) -> str: ...
@overload
def to_unicode(value: bytes) -> str: ...
@overload
def to_unicode(value: None) -> None: ...
def to_unicode(value: str | bytes | None) -> str | None:
    """Return ``value`` as ``str``, decoding bytes as UTF-8; ``str`` and ``None`` pass through.

    Raises UnicodeDecodeError for bytes that are not valid UTF-8, and
    TypeError for any other type.
    """
    if type(value) is bytes:  # the converting case first, as in utf8()
        return value.decode()
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    raise TypeError(f"to_unicode() expects str, bytes or None, not {type(value).__name__}")


# Tornado's other names for the same conversion. On Python 3 the "native"
# string type and the "basestring" are both str.
_unicode = to_unicode
native_str = to_unicode
to_basestring = to_unicode


def _text(value: str | bytes, func: str) -> str:
    """``value`` as str for a function that takes text or UTF-8 bytes (but not None)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    raise TypeError(f"{func}() expects str or bytes, not {type(value).__name__}")


def recursive_unicode(obj: Any) -> Any:
    """Decode every ``bytes`` inside ``obj`` (dict keys and values, lists, tuples) as UTF-8.

    Containers are copied, not changed in place; other values are returned as they are.
    """
    if isinstance(obj, dict):
        return {recursive_unicode(k): recursive_unicode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [recursive_unicode(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(recursive_unicode(item) for item in obj)
    if isinstance(obj, bytes):
        return obj.decode()
    return obj


# -- HTML --------------------------------------------------------------------

# Measured with timeit on CPython 3.11 (ns per call; plain = nothing to escape):
#
#                     chained replace   str.translate   regex + dict
#   11 chars, plain          122              359            196
#   20 chars, marked         231              932           1646
#   1 KB, plain             1697             1198           2596
#   1 KB, marked            4745            43184          61281
#   200 chars, non-ASCII     649             7904            607
#
# Five str.replace calls are 4-13x faster than either when there is markup,
# and within 10% of the best otherwise; translate leads only on long plain
# ASCII and is 12x slower on non-ASCII text. "&" must be replaced first so the
# entities the other calls write survive.


def xhtml_escape(value: str | bytes) -> str:
    """Escape ``& < > " '`` so ``value`` is safe as HTML/XML text or a quoted attribute.

    ``'`` becomes ``&#39;`` (Tornado before 6.4; 6.4+ writes the equivalent
    ``&#x27;``). Bytes are decoded as UTF-8 first; the result is always str.
    """
    if type(value) is not str:
        value = _text(value, "xhtml_escape")
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


_ENTITY_RE = re.compile(r"&(?:#([0-9]+)|#[xX]([0-9a-fA-F]+)|([A-Za-z][A-Za-z0-9]*));")
# html5 maps "name;" (and some legacy names without the semicolon) to text.
_NAMED_ENTITIES = html.entities.html5


def _replace_entity(match: re.Match[str]) -> str:
    decimal, hexadecimal, name = match.groups()
    if name is not None:
        return _NAMED_ENTITIES.get(name + ";", match.group())
    try:
        codepoint = int(decimal) if decimal is not None else int(hexadecimal, 16)
    except ValueError:  # more digits than int() will parse
        return match.group()
    if codepoint > 0x10FFFF or 0xD800 <= codepoint <= 0xDFFF:
        return match.group()  # not a Unicode scalar value
    return chr(codepoint)


def xhtml_unescape(value: str | bytes) -> str:
    """Replace character references with the characters they stand for.

    Handles named entities (HTML5's table, so ``&amp;``, ``&eacute;``,
    ``&nbsp;``...), decimal (``&#39;``) and hexadecimal (``&#x27;``)
    references. A reference must end with ``;``. Unknown names and numbers
    that are not Unicode characters are left as written. One pass: ``&amp;lt;``
    becomes ``&lt;``, not ``<``.
    """
    return _ENTITY_RE.sub(_replace_entity, _text(value, "xhtml_unescape"))


# -- JSON --------------------------------------------------------------------


def json_encode(value: Any) -> str:
    """Encode ``value`` as JSON that is also safe inside an HTML ``<script>`` element.

    ``</`` is written ``<\\/`` (the same string to a JSON parser), so a value
    containing ``</script>`` cannot end the element early.
    """
    return json.dumps(value).replace("</", "<\\/")


def json_decode(value: str | bytes) -> Any:
    """Parse a JSON document given as str or bytes (UTF-8, -16 or -32)."""
    return json.loads(value)


# -- URLs --------------------------------------------------------------------


def url_escape(value: str | bytes, plus: bool = True) -> str:
    """Percent-encode ``value`` (str is encoded as UTF-8 first).

    With ``plus`` (the default, the reverse of :mod:`urllib`'s) a space
    becomes ``+`` and ``/`` is escaped, as in a query string or form value.
    With ``plus=False`` a space becomes ``%20`` and ``/`` is kept, as in a URL
    path.
    """
    if not isinstance(value, (str, bytes)):
        raise TypeError(f"url_escape() expects str or bytes, not {type(value).__name__}")
    if plus:
        return urllib.parse.quote_plus(value)
    return urllib.parse.quote(value)


@overload
def url_unescape(value: str | bytes, encoding: None, plus: bool = True) -> bytes: ...
@overload
def url_unescape(value: str | bytes, encoding: str = "utf-8", plus: bool = True) -> str: ...
def url_unescape(
    value: str | bytes, encoding: str | None = "utf-8", plus: bool = True
) -> str | bytes:
    """Decode ``%XX`` escapes in ``value`` (str or bytes).

    With ``encoding=None`` the result is the raw bytes; otherwise they are
    decoded with ``encoding`` (invalid sequences become U+FFFD). With ``plus``
    (the default) ``+`` means a space, so a literal plus must be ``%2B``;
    pass ``plus=False`` for URL paths.
    """
    text = _text(value, "url_unescape")
    if encoding is None:
        if plus:
            text = text.replace("+", " ")
        return urllib.parse.unquote_to_bytes(text)
    if plus:
        return urllib.parse.unquote_plus(text, encoding=encoding)
    return urllib.parse.unquote(text, encoding=encoding)


def parse_qs_bytes(
    qs: str | bytes,
    keep_blank_values: bool = False,
    strict_parsing: bool = False,
    *,
    max_num_fields: int | None = None,
) -> dict[str, list[bytes]]:
    """Parse a query string into ``{name: [value, ...]}`` with str names and bytes values.

    Values stay bytes because the query's charset is not known here; the
    caller decodes them. Names (and values on the way) go through latin-1,
    which maps every byte to one character and back, so no byte is lost:
    a name that was UTF-8 on the wire appears as its latin-1 reading.
    ``keep_blank_values`` and ``strict_parsing`` are those of
    :func:`urllib.parse.parse_qs`.

    ``max_num_fields`` bounds the work an attacker can ask for: a query with
    more ``&``-separated fields than that raises ValueError before any field
    is decoded (an empty query has none).
    """
    if isinstance(qs, bytes):
        qs = qs.decode("latin-1")
    parsed = urllib.parse.parse_qs(
        qs,
        keep_blank_values,
        strict_parsing,
        encoding="latin-1",
        errors="strict",
        max_num_fields=max_num_fields,
    )
    return {name: [v.encode("latin-1") for v in values] for name, values in parsed.items()}


# -- text --------------------------------------------------------------------

# Tornado's definition of whitespace here: ASCII space and every control
# character below it (so NUL and ESC too), but not Unicode spaces such as NBSP.
_WHITESPACE_RUN_RE = re.compile(r"[\x00-\x20]+")


def squeeze(value: str) -> str:
    """Collapse each run of whitespace to one space and strip both ends.

    Whitespace here is ASCII space and the control characters below it.
    """
    return _WHITESPACE_RUN_RE.sub(" ", value).strip()


# A candidate link in plain (not yet escaped) text:
#   - "scheme:/", "scheme://" or "scheme:///", or a bare "www." host. The
#     scheme has no "." (RFC 3986 allows one, but then "end.http://x" would
#     read as the scheme "end.http") and is bounded in length, so a long
#     hyphenated word cannot make the search quadratic;
#   - then a body of anything but whitespace, quotes, angle brackets and
#     parentheses, where a balanced "(...)" is allowed (Wikipedia-style paths)
#     and an unbalanced ")" ends the link, as in "(see http://x.com)". It has
#     at least one character and does not start with "/", so a lone "http://"
#     is not a link;
#   - which does not end in punctuation (as in Tornado): the "." in "go to
#     x.com." is the sentence's, the "]" in "[http://x.com/a]" the bracket's.
#     Only a ")" that closes a "(" in the link may end it.
_URL_RE = re.compile(
    r"""
    \b
    (?: (?P<scheme> [A-Za-z][A-Za-z0-9+-]{0,31} ) : /{1,3} (?!/)
      | www\.
    )
    (?: [^\s<>"'()] | \( [^\s<>"'()]* \) )+
    (?<! [!"\#$%&'*+,.:;<=>?@\[\]^`{|}~] )
    """,
    re.VERBOSE,
)

# Link text longer than this is shortened when linkify() is asked to.
_SHORT_LINK_MAX = 30


def _shortened_link_text(shown: str, scheme: str | None) -> str | None:
    """The text ``linkify(shorten=True)`` shows for a link, or None to show it whole.

    ``shown`` is the URL as escaped HTML (the lengths are counted there, as
    Tornado counts them). A long URL keeps its scheme, host and the first
    word (up to 8 characters) of its path; if that is still far too long
    it is cut to 30 characters, never inside a character reference, and it
    ends in "...". A result that would not be shorter than the URL is not used.
    """
    if len(shown) <= _SHORT_LINK_MAX:
        return None
    start = 0
    if scheme is not None:
        start = len(scheme) + 1
        while start < len(shown) and shown[start] == "/":
            start += 1
    host, slash, path = shown[start:].partition("/")
    text = shown
    if slash:
        first = path.split("/", 1)[0][:8].split("?", 1)[0].split(".", 1)[0]
        text = shown[:start] + host + "/" + first
    if len(text) > _SHORT_LINK_MAX * 1.5:
        text = text[:_SHORT_LINK_MAX]
    if text == shown:
        return None
    amp = text.rfind("&")
    if amp > _SHORT_LINK_MAX - 5:
        text = text[:amp]
    text += "..."
    return text if len(text) < len(shown) else None


def linkify(
    text: str | bytes,
    shorten: bool = False,
    extra_params: str | Callable[[str], str] = "",
    require_protocol: bool = False,
    permitted_protocols: Collection[str] = ("http", "https"),
) -> str:
    """Escape plain ``text`` for HTML and turn the URLs in it into ``<a>`` links.

    A URL is ``scheme://...`` or starts with ``www.`` (linked as
    ``http://www...``). Its scheme must be in ``permitted_protocols``
    (compared case-insensitively), so ``javascript://...`` stays text; with
    ``require_protocol`` a bare ``www.`` address stays text too.

    ``extra_params`` is markup added to every ``<a>`` tag, such as
    ``'rel="nofollow"'``, or a function that receives each link's URL and
    returns that markup. It is inserted verbatim: escape anything it takes
    from outside.

    With ``shorten``, a link whose text is longer than 30 characters shows
    its scheme, host and the start of its path (cut to 30 characters if that
    is still long), ending in ``...``, as Tornado does; the tag then gets a
    ``title`` attribute with the whole URL.
    """
    text = _text(text, "linkify")
    permitted = {scheme.lower() for scheme in permitted_protocols}
    pieces: list[str] = []
    done = 0
    for match in _URL_RE.finditer(text):
        url = match.group()
        scheme = match.group("scheme")
        if scheme is None:
            if require_protocol:
                continue
            href = "http://" + url
        elif scheme.lower() in permitted:
            href = url
        else:
            continue
        params = extra_params(href).strip() if callable(extra_params) else extra_params.strip()
        if params:
            params = " " + params
        shown = xhtml_escape(url)
        if shorten:
            short = _shortened_link_text(shown, scheme)
            if short is not None:
                shown = short
                params += f' title="{xhtml_escape(href)}"'
        pieces.append(xhtml_escape(text[done : match.start()]))
        pieces.append(f'<a href="{xhtml_escape(href)}"{params}>{shown}</a>')
        done = match.end()
    pieces.append(xhtml_escape(text[done:]))
    return "".join(pieces)
