"""reactor.escape: text/bytes conversion, HTML, JSON and URL escaping, linkify.

Pure functions: no event loop, so these run once, not once per backend.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactor import escape
from reactor.escape import (
    json_decode,
    json_encode,
    linkify,
    native_str,
    parse_qs_bytes,
    recursive_unicode,
    squeeze,
    to_basestring,
    to_unicode,
    url_escape,
    url_unescape,
    utf8,
    xhtml_escape,
    xhtml_unescape,
)

# -- utf8 / to_unicode ---------------------------------------------------------


def test_utf8_encodes_str() -> None:
    assert utf8("abc") == b"abc"
    assert utf8("caf\u00e9 \u2603 \U0001f600") == "caf\u00e9 \u2603 \U0001f600".encode()
    assert utf8("") == b""


def test_utf8_passes_bytes_and_none_through() -> None:
    data = b"\xff\x00 not utf-8"
    assert utf8(data) is data
    assert utf8(None) is None


def test_utf8_accepts_subclasses() -> None:
    class Markup(str):
        pass

    class Blob(bytes):
        pass

    assert utf8(Markup("<b>")) == b"<b>"
    blob = Blob(b"x")
    assert utf8(blob) is blob


@pytest.mark.parametrize("value", [1, 1.5, bytearray(b"x"), memoryview(b"x"), ["a"]])
def test_utf8_rejects_other_types_by_name(value: object) -> None:
    with pytest.raises(TypeError, match=type(value).__name__):
        utf8(value)  # type: ignore[call-overload]


def test_utf8_rejects_lone_surrogate() -> None:
    with pytest.raises(UnicodeEncodeError):
        utf8("\ud800")


def test_to_unicode_decodes_bytes() -> None:
    assert to_unicode(b"abc") == "abc"
    assert to_unicode("caf\u00e9".encode()) == "caf\u00e9"
    assert to_unicode(b"") == ""


def test_to_unicode_passes_str_and_none_through() -> None:
    text = "caf\u00e9"
    assert to_unicode(text) is text
    assert to_unicode(None) is None


@pytest.mark.parametrize("data", [b"\xff", b"caf\xe9", b"\xc3", b"\xed\xa0\x80"])
def test_to_unicode_invalid_utf8_raises(data: bytes) -> None:
    with pytest.raises(UnicodeDecodeError):
        to_unicode(data)


@pytest.mark.parametrize("value", [1, bytearray(b"x"), object()])
def test_to_unicode_rejects_other_types_by_name(value: object) -> None:
    with pytest.raises(TypeError, match=type(value).__name__):
        to_unicode(value)  # type: ignore[call-overload]


def test_aliases_are_to_unicode() -> None:
    assert native_str is to_unicode
    assert to_basestring is to_unicode
    assert escape._unicode is to_unicode


def test_recursive_unicode() -> None:
    data = {b"k\xc3\xa9": [b"a", (b"b", 1, None)], "s": {b"inner": b"v"}}
    out = recursive_unicode(data)
    assert out == {"k\u00e9": ["a", ("b", 1, None)], "s": {"inner": "v"}}
    assert type(out["k\u00e9"][1]) is tuple
    # The input is copied, not changed in place.
    assert data == {b"k\xc3\xa9": [b"a", (b"b", 1, None)], "s": {b"inner": b"v"}}


def test_recursive_unicode_leaves_other_values() -> None:
    marker = object()
    assert recursive_unicode(marker) is marker
    assert recursive_unicode("text") == "text"
    assert recursive_unicode(b"x") == "x"
    with pytest.raises(UnicodeDecodeError):
        recursive_unicode([b"\xff"])


# -- JSON ----------------------------------------------------------------------


def test_json_encode_is_safe_in_script() -> None:
    encoded = json_encode({"html": "</script><script>alert(1)</script>"})
    assert "</" not in encoded
    assert "<\\/script>" in encoded
    assert json_decode(encoded) == {"html": "</script><script>alert(1)</script>"}


def test_json_encode_plain_values() -> None:
    assert json_encode([1, "a", None, True]) == '[1, "a", null, true]'
    assert json_encode("caf\u00e9") == '"caf\\u00e9"'


def test_json_decode_str_and_bytes() -> None:
    assert json_decode('{"a": [1, 2]}') == {"a": [1, 2]}
    assert json_decode(b'{"a": "caf\xc3\xa9"}') == {"a": "caf\u00e9"}
    with pytest.raises(ValueError):
        json_decode("{not json")


# -- HTML ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("&", "&amp;"),
        ("<", "&lt;"),
        (">", "&gt;"),
        ('"', "&quot;"),
        ("'", "&#39;"),
        (
            "<a href='x' title=\"y\">Tom & Jerry</a>",
            "&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;Tom &amp; Jerry&lt;/a&gt;",
        ),
        ("&amp;", "&amp;amp;"),
        ("plain text", "plain text"),
        ("", ""),
        ("caf\u00e9 \u2603 <\U0001f600>", "caf\u00e9 \u2603 &lt;\U0001f600&gt;"),
    ],
)
def test_xhtml_escape(raw: str, escaped: str) -> None:
    assert xhtml_escape(raw) == escaped
    assert xhtml_escape(raw.encode()) == escaped


def test_xhtml_escape_returns_str_for_subclasses_and_bytes() -> None:
    class Markup(str):
        pass

    assert type(xhtml_escape(b"<x>")) is str
    assert xhtml_escape(Markup("<x>")) == "&lt;x&gt;"


def test_xhtml_escape_rejects_invalid_input() -> None:
    with pytest.raises(UnicodeDecodeError):
        xhtml_escape(b"\xff<")
    with pytest.raises(TypeError, match="NoneType"):
        xhtml_escape(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        xhtml_escape(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("escaped", "raw"),
    [
        ("&amp;&lt;&gt;&quot;&#39;", "&<>\"'"),
        ("&apos;", "'"),
        ("caf&eacute; &copy; &nbsp;", "caf\u00e9 \u00a9 \u00a0"),
        ("&hellip;&rarr;", "\u2026\u2192"),
        ("&#65;&#066;&#x43;&#X44;&#x1F600;", "ABCD\U0001f600"),
        ("&#x27;&#X27;&#39;", "'''"),
        ("&amp;lt;", "&lt;"),  # one pass only
        ("no entities", "no entities"),
        ("", ""),
    ],
)
def test_xhtml_unescape(escaped: str, raw: str) -> None:
    assert xhtml_unescape(escaped) == raw
    assert xhtml_unescape(escaped.encode()) == raw


@pytest.mark.parametrize(
    "text",
    [
        "&bogus;",  # unknown name
        "&AmP;",  # names are case-sensitive
        "&amp",  # no semicolon
        "& amp;",
        "&;",
        "&#;",
        "&#x;",
        "&#xZZ;",
        "&#1114112;",  # past U+10FFFF
        "&#xD800;",  # a surrogate is not a character
        "&#" + "9" * 5000 + ";",  # more digits than int() parses
        "AT&T; R&D",
    ],
)
def test_xhtml_unescape_leaves_unknown_references(text: str) -> None:
    assert xhtml_unescape(text) == text


def test_xhtml_unescape_mixed() -> None:
    assert xhtml_unescape("&lt;b&gt; &unknown; &#x41;&amp") == "<b> &unknown; A&amp"


# -- URLs ----------------------------------------------------------------------


def test_url_escape_plus() -> None:
    assert url_escape("a b") == "a+b"
    assert url_escape("a+b/c?d=e&f") == "a%2Bb%2Fc%3Fd%3De%26f"
    assert url_escape("caf\u00e9") == "caf%C3%A9"
    assert url_escape("-_.~") == "-_.~"


def test_url_escape_path() -> None:
    assert url_escape("a b", plus=False) == "a%20b"
    assert url_escape("/dir/a+b c", plus=False) == "/dir/a%2Bb%20c"
    assert url_escape("caf\u00e9", plus=False) == "caf%C3%A9"


def test_url_escape_bytes() -> None:
    assert url_escape(b"\xff \x00") == "%FF+%00"
    assert url_escape(b"\xff \x00", plus=False) == "%FF%20%00"


def test_url_escape_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="NoneType"):
        url_escape(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        url_escape(5)  # type: ignore[arg-type]


def test_url_unescape() -> None:
    assert url_unescape("a+b%2B%C3%A9") == "a b+\u00e9"
    assert url_unescape("a+b%2B%C3%A9", plus=False) == "a+b+\u00e9"
    assert url_unescape(b"a+b%20c") == "a b c"
    assert url_unescape("%E9", encoding="latin-1") == "\u00e9"
    assert url_unescape("%FF") == "\ufffd"  # invalid UTF-8 is replaced, not raised


def test_url_unescape_to_bytes() -> None:
    assert url_unescape("a+b%FF%2B", encoding=None) == b"a b\xff+"
    assert url_unescape(b"a+b%FF", encoding=None, plus=False) == b"a+b\xff"
    assert type(url_unescape("x", encoding=None)) is bytes


# -- parse_qs_bytes ------------------------------------------------------------


def test_parse_qs_bytes() -> None:
    assert parse_qs_bytes("a=1&b=2&a=3") == {"a": [b"1", b"3"], "b": [b"2"]}
    assert parse_qs_bytes(b"q=caf%C3%A9+au+lait") == {"q": ["caf\u00e9 au lait".encode()]}
    assert parse_qs_bytes("") == {}


def test_parse_qs_bytes_keeps_every_byte() -> None:
    # Values are the exact bytes sent, whatever their charset.
    assert parse_qs_bytes("v=%FF%FE%00") == {"v": [b"\xff\xfe\x00"]}
    assert parse_qs_bytes(b"v=\xff\xe9") == {"v": [b"\xff\xe9"]}
    # A UTF-8 name is read as latin-1, and can be recovered from it.
    (name,) = parse_qs_bytes("caf%C3%A9=1")
    assert name == "caf\u00c3\u00a9"
    assert name.encode("latin-1").decode() == "caf\u00e9"


def test_parse_qs_bytes_blank_values() -> None:
    assert parse_qs_bytes("a=&b=1") == {"b": [b"1"]}
    assert parse_qs_bytes("a=&b=1", keep_blank_values=True) == {"a": [b""], "b": [b"1"]}


def test_parse_qs_bytes_strict_parsing() -> None:
    assert parse_qs_bytes("a&b=1") == {"b": [b"1"]}
    with pytest.raises(ValueError):
        parse_qs_bytes("a&b=1", strict_parsing=True)


# -- squeeze -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "squeezed"),
    [
        ("  a  b\t\tc\n\r\nd  ", "a b c d"),
        ("a\x00\x1fb", "a b"),
        ("already squeezed", "already squeezed"),
        ("a\u00a0\u00a0b", "a\u00a0\u00a0b"),  # non-ASCII spaces are not squeezed
        ("   ", ""),
        ("", ""),
    ],
)
def test_squeeze(text: str, squeezed: str) -> None:
    assert squeeze(text) == squeezed


# -- linkify -------------------------------------------------------------------


def _link(href: str, text: str | None = None, params: str = "") -> str:
    return f'<a href="{href}"{params}>{href if text is None else text}</a>'


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("http://example.com", _link("http://example.com")),
        (
            "see https://example.com/a/b?c=d#e now",
            f"see {_link('https://example.com/a/b?c=d#e')} now",
        ),
        ("www.example.com/x", _link("http://www.example.com/x", "www.example.com/x")),
        # Sentence punctuation after a URL is not part of it.
        ("Go to http://example.com.", f"Go to {_link('http://example.com')}."),
        (
            "http://a.com/x, http://b.com/y; or http://c.com/z!?",
            f"{_link('http://a.com/x')}, {_link('http://b.com/y')}; or {_link('http://c.com/z')}!?",
        ),
        # Balanced parentheses stay in the URL; an unbalanced one ends it.
        (
            "(see http://en.wikipedia.org/wiki/Foo_(bar))",
            f"(see {_link('http://en.wikipedia.org/wiki/Foo_(bar)')})",
        ),
        # Quotes and angle brackets delimit a URL and are escaped.
        ("<http://example.com/a>", f"&lt;{_link('http://example.com/a')}&gt;"),
        ('"http://example.com/"x', f"&quot;{_link('http://example.com/')}&quot;x"),
        ("'http://example.com/'", f"&#39;{_link('http://example.com/')}&#39;"),
        # The text around links, and the links themselves, are escaped.
        ("a < b & http://x.com/?a=1&b=2", f"a &lt; b &amp; {_link('http://x.com/?a=1&amp;b=2')}"),
        (
            "http://x.com:8080/p http://[::1]:80/",
            f"{_link('http://x.com:8080/p')} {_link('http://[::1]:80/')}",
        ),
        ("http://\u00fcn\u00ef.com/caf\u00e9", _link("http://\u00fcn\u00ef.com/caf\u00e9")),
        ("HTTP://EXAMPLE.COM", _link("HTTP://EXAMPLE.COM")),
        # Things that are not URLs.
        ("no links here", "no links here"),
        ("mailto:a@b.com", "mailto:a@b.com"),
        ("http://", "http://"),
        ("http:////x", "http:////x"),
        ("file:///etc/hosts", "file:///etc/hosts"),
        ("awww.example.com", "awww.example.com"),
        ("", ""),
    ],
)
def test_linkify(text: str, html: str) -> None:
    assert linkify(text) == html
    assert linkify(text.encode()) == html


@pytest.mark.parametrize(
    "text",
    [
        "javascript:alert(1)",
        "javascript://%0Aalert(1)",
        "JavaScript://%0Aalert(document.cookie)",
        "data://text/html,<script>alert(1)</script>",
        "ftp://example.com/file",
    ],
)
def test_linkify_leaves_unpermitted_schemes_as_text(text: str) -> None:
    assert linkify(text) == xhtml_escape(text)
    assert "<a" not in linkify(text)


def test_linkify_permitted_protocols() -> None:
    text = "ftp://example.com/f and http://example.com/"
    assert linkify(text, permitted_protocols=["ftp"]) == (
        f"{_link('ftp://example.com/f')} and http://example.com/"
    )
    assert linkify(text, permitted_protocols={"FTP", "http"}) == (
        f"{_link('ftp://example.com/f')} and {_link('http://example.com/')}"
    )
    assert linkify(text, permitted_protocols=()) == text
    # A bare www. address is an http link, and needs http permitted.
    assert linkify("www.example.com", permitted_protocols=["https"]) == (
        _link("http://www.example.com", "www.example.com")
    )


def test_linkify_require_protocol() -> None:
    text = "www.example.com and http://example.com"
    assert (
        linkify(text, require_protocol=True) == f"www.example.com and {_link('http://example.com')}"
    )


def test_linkify_extra_params_string() -> None:
    assert linkify("http://x.com", extra_params='  rel="nofollow" ') == (
        _link("http://x.com", params=' rel="nofollow"')
    )
    assert linkify("http://x.com", extra_params="   ") == _link("http://x.com")


def test_linkify_extra_params_callable() -> None:
    seen: list[str] = []

    def params(url: str) -> str:
        seen.append(url)
        return "" if url.startswith("http://internal") else ' class="external" '

    html = linkify("http://internal/a www.outside.com/?a=1&b=2", extra_params=params)
    assert seen == ["http://internal/a", "http://www.outside.com/?a=1&b=2"]
    assert html == (
        f"{_link('http://internal/a')} "
        + _link(
            "http://www.outside.com/?a=1&amp;b=2",
            "www.outside.com/?a=1&amp;b=2",
            ' class="external"',
        )
    )


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("see [http://x.com/a] now", 'see [<a href="http://x.com/a">http://x.com/a</a>] now'),
        ("{http://x.com/}", '{<a href="http://x.com/">http://x.com/</a>}'),
        ("http://x.com/a*", '<a href="http://x.com/a">http://x.com/a</a>*'),
        ("http://x.com/a`", '<a href="http://x.com/a">http://x.com/a</a>`'),
        ("http://x.com/a^~", '<a href="http://x.com/a">http://x.com/a</a>^~'),
        ("http://x.com/?q=1&", '<a href="http://x.com/?q=1">http://x.com/?q=1</a>&amp;'),
        ("http://x.com/a#", '<a href="http://x.com/a">http://x.com/a</a>#'),
        ("http://x.com/a]b", '<a href="http://x.com/a]b">http://x.com/a]b</a>'),
        ("http://x.com/a_(b)]", '<a href="http://x.com/a_(b)">http://x.com/a_(b)</a>]'),
    ],
)
def test_linkify_never_ends_a_link_in_punctuation(text: str, html: str) -> None:
    """Tornado's rule: the last character of a link is not punctuation, so
    brackets and marks around a URL in a chat line stay text."""
    assert linkify(text) == html


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # scheme, host and the first word of the path (up to 8 characters)
        (
            "http://www.example.com/a/very/long/path/that/goes/on?x=1&y=2",
            "http://www.example.com/a...",
        ),
        ("http://example.com/" + "x" * 12, "http://example.com/" + "x" * 8 + "..."),
        ("see http://example.com/abcdefghijklmnop/q", "http://example.com/abcdefgh..."),
        ("https://example.com/page.html?ref=" + "a" * 20, "https://example.com/page..."),
        ("http://example.com/ab?x=1&y=2&" + "z" * 18, "http://example.com/ab..."),
        ("www.example.com/" + "abcdefghijklmnopqrstuvwxyz", "www.example.com/abcdefgh..."),
        ("http://example.com/?aaaaaa&b=1" + "&c=2" * 5, "http://example.com/..."),
        # still over 45 characters: cut to 30, never inside "&amp;"
        ("http://" + "a" * 60 + ".com/" + "b" * 40, "http://" + "a" * 23 + "..."),
        ("http://" + "a" * 50 + ".com", "http://" + "a" * 23 + "..."),
        ("http://" + "a" * 12 + ".com?q=1&b=2&c=" + "3" * 19, "http://" + "a" * 12 + ".com?q=1..."),
    ],
)
def test_linkify_shorten(url: str, shown: str) -> None:
    """Tornado's shortening: the link text keeps the host and the start of
    the path; the whole URL is the tag's title."""
    html = linkify(url, shorten=True)
    href = xhtml_escape(url.removeprefix("see "))
    if href.startswith("www."):
        href = "http://" + href
    assert html.endswith(f'<a href="{href}" title="{href}">{shown}</a>'), html


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/" + "x" * 11,  # 30 characters
        "http://example.com/short",
        "http://abcdefghijklmnopqrstuvw.c/x",  # long, but its short form is itself
    ],
)
def test_linkify_shorten_leaves_links_it_cannot_shorten(url: str) -> None:
    assert linkify(url, shorten=True) == _link(url)


def test_linkify_long_input_is_linear() -> None:
    # A long hyphenated word gives the scheme pattern a start at every "-";
    # the bounded scheme keeps this at ~10 ms (unbounded: ~15 s, quadratic).
    text = "a-" * 50_000
    assert linkify(text) == text


# -- properties ------------------------------------------------------------------


@given(st.text())
def test_xhtml_round_trip(text: str) -> None:
    escaped = xhtml_escape(text)
    assert not set("<>\"'") & set(escaped)
    assert xhtml_unescape(escaped) == text


@given(st.text(), st.booleans())
def test_url_round_trip(text: str, plus: bool) -> None:
    escaped = url_escape(text, plus=plus)
    assert escaped.isascii() and " " not in escaped
    assert url_unescape(escaped, plus=plus) == text
    assert url_unescape(escaped, encoding=None, plus=plus) == text.encode()


@given(st.binary(), st.booleans())
def test_url_round_trip_bytes(data: bytes, plus: bool) -> None:
    assert url_unescape(url_escape(data, plus=plus), encoding=None, plus=plus) == data


_TAG_RE = re.compile(r"<a [^>]*>|</a>")


@given(
    st.lists(
        st.one_of(
            st.text(),
            st.sampled_from(
                ["http://", "https://x.com/", "www.", "javascript://", "(", ")", ".", "&", "<", " "]
            ),
        )
    ).map("".join)
)
def test_linkify_only_adds_tags(text: str) -> None:
    # Without shorten, removing the <a> tags leaves exactly the escaped text.
    html = linkify(text)
    assert xhtml_unescape(_TAG_RE.sub("", html)) == text


def test_parse_qs_bytes_max_num_fields() -> None:
    # The limit counts fields before decoding any, so a flood costs one count.
    assert parse_qs_bytes("a=1&b=2", max_num_fields=2) == {"a": [b"1"], "b": [b"2"]}
    with pytest.raises(ValueError, match="Max number of fields"):
        parse_qs_bytes("a=1&b=2&c=3", max_num_fields=2)
    with pytest.raises(ValueError, match="Max number of fields"):
        parse_qs_bytes(b"&" * 100_000, max_num_fields=1000)
    # Blank fields count too (they are fields the parser had to look at).
    with pytest.raises(ValueError):
        parse_qs_bytes("a=1&&", max_num_fields=2)
    assert parse_qs_bytes("", max_num_fields=0) == {}
    assert parse_qs_bytes("a=1", max_num_fields=None) == {"a": [b"1"]}
