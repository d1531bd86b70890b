"""Cookies and signed cookies of RequestHandler, through real HTTP, on every
backend: the Set-Cookie headers http.client and curl receive, the Cookie
headers they send back, and what a client that forges, replays or expires a
signed cookie gets (None, never an error).

The signing functions themselves are tested without a loop in
tests/test_signing.py.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import http.cookies
import json
import random
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.web

from reactor import web
from reactor.httpclient import AsyncHTTPClient, HTTPClientError
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.testing import bind_unused_port
from tests.util import run_curl

SECRET = "test-cookie-secret-0123456789abcdef"
KEYS = {1: "key-one-aaaaaaaaaaaaaaaa", 2: "key-two-bbbbbbbbbbbbbbbb"}
CLIENT_TIMEOUT = 4.0


class SetCookies(web.RequestHandler):
    """Sets the cookie the ``case`` argument names."""

    def get(self) -> None:
        case = self.get_argument("case")
        if case == "plain":
            self.set_cookie("theme", "dark")
        elif case == "attributes":
            self.set_cookie(
                "sid",
                "abc",
                domain="example.com",
                expires=datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
                path="/app",
                max_age=600,
                httponly=True,
                secure=True,
                samesite="Lax",
            )
        elif case == "expires_days":
            self.set_cookie("later", "1", expires_days=10)
        elif case == "timestamp":
            self.set_cookie("ts", "1", expires=1_700_000_000, path="")
        elif case == "quoted":
            self.set_cookie("q", 'a;b"c\\d,\u00e9\x7f')
        elif case == "twice":
            self.set_cookie("x", "first")
            self.set_cookie("x", "second")
            self.set_cookie("y", "other")
        elif case == "browserish":
            self.set_cookie("sid", "abc", httponly=True, max_age=600, samesite="Strict")
        elif case == "clear_theme":
            self.clear_cookie("theme")
        elif case == "clear":
            self.clear_cookie("gone")
            self.clear_cookie("scoped", path="/app", domain="example.com")
        elif case == "clear_all":
            self.clear_all_cookies(path="/")
        elif case == "deprecated":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.set_cookie("old", "style", HttpOnly=True)
            self.set_header("X-Warning", str(caught[0].category.__name__))
        self.write("ok")


class RefusedCookies(web.RequestHandler):
    """Answers which exception each bad set_cookie raised."""

    def get(self) -> None:
        case = self.get_argument("case")
        attempts: dict[str, Callable[[], None]] = {
            "value_space": lambda: self.set_cookie("a", "b c"),
            "value_newline": lambda: self.set_cookie("a", "b\r\nSet-Cookie: evil=1"),
            "value_snowman": lambda: self.set_cookie("a", "\u2603"),
            "domain_snowman": lambda: self.set_cookie("a", "b", domain="\u2603.example"),
            "name_semicolon": lambda: self.set_cookie("a;b", "c"),
            "name_separator": lambda: self.set_cookie("a(b", "c"),
            "domain_injection": lambda: self.set_cookie("a", "b", domain="x.com; Secure"),
            "path_injection": lambda: self.set_cookie("a", "b", path="/;Domain=evil.example"),
            "samesite_injection": lambda: self.set_cookie("a", "b", samesite="Lax;Domain=e"),
            "max_age_injection": lambda: self.set_cookie("a", "b", max_age="1; Domain=e"),  # type: ignore[arg-type]
            "clear_expires": lambda: self.clear_cookie("a", expires=1),
            "clear_max_age": lambda: self.clear_cookie("a", max_age=1),
        }
        try:
            attempts[case]()
        except Exception as e:
            kinds = [
                kind.__name__
                for kind in (ValueError, http.cookies.CookieError, TypeError)
                if isinstance(e, kind)
            ]
            self.write(",".join(kinds))
        else:
            self.write("accepted")


class Echo(web.RequestHandler):
    """Writes the request's cookies as get_cookie reads them."""

    def get(self) -> None:
        names = self.get_arguments("name")
        self.write({name: self.get_cookie(name, "<default>") for name in names})


# Every character set_cookie accepts in a value: printable latin-1 but space.
VALUE_ALPHABET = "".join(chr(c) for c in range(0x21, 0x100))


def random_values(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(VALUE_ALPHABET, k=rng.randint(0, 30))) for _ in range(count)]


class ManyValues(web.RequestHandler):
    """GET ?seed=N sets c0..c59 to random_values(60, N); with a Cookie
    header, answers whether each came back as set."""

    def get(self) -> None:
        values = random_values(60, int(self.get_argument("seed")))
        if "Cookie" in self.request.headers:
            self.write({f"c{i}": self.get_cookie(f"c{i}") == v for i, v in enumerate(values)})
        else:
            for i, value in enumerate(values):
                self.set_cookie(f"c{i}", value)


class Signed(web.RequestHandler):
    def get(self) -> None:
        value = self.get_signed_cookie(self.get_argument("name", "user"))
        version = self.get_signed_cookie_key_version(self.get_argument("name", "user"))
        self.write({"value": None if value is None else value.decode("latin-1"), "key": version})

    def post(self) -> None:
        name = self.get_argument("name", "user")
        version = self.get_argument("version", None)
        self.set_signed_cookie(
            name, self.get_argument("value"), version=int(version) if version else None
        )
        self.write("signed")


class SecureAliases(web.RequestHandler):
    def get(self) -> None:
        self.set_secure_cookie("alias", "v")
        self.write(
            {
                "read": repr(self.get_secure_cookie("user")),
                "key": self.get_secure_cookie_key_version("user"),
            }
        )


class Raises(web.RequestHandler):
    def get(self) -> None:
        self.set_cookie("a", "b\r\nX-Injected: 1")


class NoSecret(web.RequestHandler):
    def get(self) -> None:
        self.set_signed_cookie("user", "x")


def application(**settings: Any) -> web.Application:
    return web.Application(
        [
            (r"/set", SetCookies),
            (r"/refuse", RefusedCookies),
            (r"/echo", Echo),
            (r"/signed", Signed),
            (r"/aliases", SecureAliases),
            (r"/nosecret", NoSecret),
            (r"/raises", Raises),
            (r"/many", ManyValues),
        ],
        **settings,
    )


@pytest.fixture
def app() -> web.Application:
    return application(cookie_secret=SECRET)


@pytest.fixture
def serve(io_loop: IOLoop) -> Iterator[Callable[..., str]]:
    """``serve(**settings) -> base URL`` of another application on 127.0.0.1."""
    servers: list[HTTPServer] = []

    def start(**settings: Any) -> str:
        sock, port = bind_unused_port()
        server = HTTPServer(application(**settings))
        server.add_sockets([sock])
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop()
        io_loop.run_sync(server.close_all_connections)


async def fetch(client: AsyncHTTPClient, url: str, **kwargs: Any) -> Any:
    kwargs.setdefault("request_timeout", CLIENT_TIMEOUT)
    return await client.fetch(url, **kwargs)


async def set_cookies(http_client: AsyncHTTPClient, base_url: str, case: str) -> list[str]:
    response = await fetch(http_client, f"{base_url}/set?case={case}")
    assert response.body == b"ok"
    return list(response.headers.get_list("Set-Cookie"))


# -- Set-Cookie -------------------------------------------------------------------------


async def test_plain_cookie(http_client: AsyncHTTPClient, base_url: str) -> None:
    assert await set_cookies(http_client, base_url, "plain") == ["theme=dark; Path=/"]


async def test_every_attribute(http_client: AsyncHTTPClient, base_url: str) -> None:
    [header] = await set_cookies(http_client, base_url, "attributes")
    assert header == (
        "sid=abc; Domain=example.com; expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; "
        "Max-Age=600; Path=/app; SameSite=Lax; Secure"
    )


async def test_expires_forms(http_client: AsyncHTTPClient, base_url: str) -> None:
    [header] = await set_cookies(http_client, base_url, "expires_days")
    expires = email.utils.parsedate_to_datetime(header.split("expires=")[1].split(";")[0])
    lifetime = expires - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(days=9) < lifetime <= datetime.timedelta(days=10)
    # A POSIX timestamp; an empty path writes no Path attribute.
    assert await set_cookies(http_client, base_url, "timestamp") == [
        "ts=1; expires=Tue, 14 Nov 2023 22:13:20 GMT"
    ]


async def test_same_headers_as_tornado(http_client: AsyncHTTPClient, base_url: str) -> None:
    """The Set-Cookie strings are Tornado 6.6's (both go through http.cookies)."""
    morsels: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    morsels["q"] = 'a;b"c\\d,\u00e9\x7f'
    morsels["q"]["path"] = "/"
    expected = morsels["q"].OutputString(None)
    assert await set_cookies(http_client, base_url, "quoted") == [expected]
    assert (
        tornado.web.RequestHandler.set_cookie.__defaults__
        == web.RequestHandler.set_cookie.__defaults__
    )


async def test_setting_a_name_again_replaces_it(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    assert await set_cookies(http_client, base_url, "twice") == [
        "x=second; Path=/",
        "y=other; Path=/",
    ]


async def test_deprecated_capitalised_kwargs(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, f"{base_url}/set?case=deprecated")
    assert response.headers["X-Warning"] == "DeprecationWarning"
    assert response.headers.get_list("Set-Cookie") == ["old=style; HttpOnly; Path=/"]


async def test_clear_cookie(http_client: AsyncHTTPClient, base_url: str) -> None:
    """Tornado 6.6's form: an empty value expired a year ago (no Max-Age),
    with the path and domain it was set with."""
    gone, scoped = await set_cookies(http_client, base_url, "clear")
    year_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=364)
    for header, expected in [
        (gone, ['gone=""', "Path=/"]),
        (scoped, ['scoped=""', "Domain=example.com", "Path=/app"]),
    ]:
        parts = header.split("; ")
        [expires] = [part for part in parts if part.startswith("expires=")]
        assert email.utils.parsedate_to_datetime(expires.removeprefix("expires=")) < year_ago
        assert [part for part in parts if part != expires] == expected


async def test_clear_all_cookies(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(
        http_client, f"{base_url}/set?case=clear_all", headers={"Cookie": "a=1; b=2; c=3"}
    )
    names = sorted(header.split("=")[0] for header in response.headers.get_list("Set-Cookie"))
    assert names == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("case", "raised"),
    [
        ("value_space", "ValueError,CookieError"),
        ("value_newline", "ValueError,CookieError"),
        ("value_snowman", "ValueError,CookieError"),
        ("domain_snowman", "ValueError,CookieError"),
        ("name_semicolon", "ValueError,CookieError"),
        ("name_separator", "ValueError,CookieError"),
        ("domain_injection", "ValueError,CookieError"),
        ("path_injection", "ValueError,CookieError"),
        ("samesite_injection", "ValueError,CookieError"),
        ("max_age_injection", "ValueError"),
        ("clear_expires", "TypeError"),
        ("clear_max_age", "TypeError"),
    ],
)
async def test_unsendable_cookies_are_refused(
    http_client: AsyncHTTPClient, base_url: str, case: str, raised: str
) -> None:
    """Nothing a caller passes can add an attribute or a header to the
    response: each attempt raises (a ValueError that is also Tornado's
    CookieError) and no Set-Cookie is sent."""
    response = await fetch(http_client, f"{base_url}/refuse?case={case}")
    assert response.body.decode() == raised
    assert response.headers.get_list("Set-Cookie") == []


async def test_an_uncaught_refusal_is_a_500_and_logged(
    http_client: AsyncHTTPClient, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(HTTPClientError) as info:
        await fetch(http_client, f"{base_url}/raises")
    assert info.value.code == 500
    assert info.value.response is not None
    assert info.value.response.headers.get_list("Set-Cookie") == []
    assert "Invalid cookie" in caplog.text


# -- Cookie -----------------------------------------------------------------------------


async def test_get_cookie(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(
        http_client,
        f"{base_url}/echo?name=a&name=q&name=missing",
        headers={"Cookie": 'a=1; q="x\\073y\\"z"'},
    )
    assert response.body == b'{"a": "1", "q": "x;y\\"z", "missing": "<default>"}'


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_value_round_trips(
    http_client: AsyncHTTPClient, base_url: str, seed: int
) -> None:
    """Values of every accepted character go out quoted by http.cookies, are
    read by a client with http.cookies, and come back as they were set."""
    response = await fetch(http_client, f"{base_url}/many?seed={seed}")
    jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        jar.load(header)
    assert len(jar) == 60
    cookie = "; ".join(f"{m.key}={m.coded_value}" for m in jar.values())
    response = await fetch(http_client, f"{base_url}/many?seed={seed}", headers={"Cookie": cookie})
    assert json.loads(response.body) == {f"c{i}": True for i in range(60)}


def _http_client_round_trip(port: int) -> tuple[list[str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        conn.request("GET", "/set?case=quoted")
        first = conn.getresponse()
        first.read()
        headers = first.headers.get_all("Set-Cookie") or []
        jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
        for header in headers:
            jar.load(header)
        cookie = "; ".join(f"{m.key}={m.coded_value}" for m in jar.values())
        conn.request("GET", "/echo?name=q", headers={"Cookie": cookie})
        second = conn.getresponse()
        return headers, second.read()
    finally:
        conn.close()


async def test_http_client_round_trip(io_loop: IOLoop, http_server: Any, http_port: int) -> None:
    headers, body = await io_loop.run_in_executor(None, _http_client_round_trip, http_port)
    assert len(headers) == 1
    assert body == b'{"q": "a;b\\"c\\\\d,\\u00e9\\u007f"}'


def _curl(*args: str) -> bytes:
    return run_curl("--fail", *args)[0]


async def test_curl_cookie_jar(
    io_loop: IOLoop, http_server: Any, base_url: str, need_curl: str, tmp_path: Path
) -> None:
    """curl keeps the cookies it was sent in a jar and sends them back: a
    plain one, an HttpOnly one (marked so in the jar), a signed one that
    reads back as its value; a cleared one leaves the jar."""
    jar = tmp_path / "jar"

    def session() -> dict[str, bytes]:
        def curl(*args: str) -> bytes:
            return _curl("-b", str(jar), "-c", str(jar), *args)

        seen = {}
        curl(f"{base_url}/set?case=plain")
        curl(f"{base_url}/set?case=browserish")
        curl("-d", "value=alice", f"{base_url}/signed")
        seen["jar"] = jar.read_bytes()
        seen["plain"] = curl(f"{base_url}/echo?name=theme&name=sid")
        seen["signed"] = curl(f"{base_url}/signed")
        curl(f"{base_url}/set?case=clear_theme")
        seen["cleared"] = curl(f"{base_url}/echo?name=theme&name=sid")
        return seen

    seen = await io_loop.run_in_executor(None, session)
    assert b"#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t" in seen["jar"]
    assert seen["plain"] == b'{"theme": "dark", "sid": "abc"}'
    assert seen["signed"] == b'{"value": "alice", "key": 0}'
    assert seen["cleared"] == b'{"theme": "<default>", "sid": "abc"}'


# -- signed cookies ---------------------------------------------------------------------


async def sign_here(http_client: AsyncHTTPClient, base_url: str, **args: str) -> str:
    body = "&".join(f"{k}={v}" for k, v in args.items())
    response = await fetch(http_client, f"{base_url}/signed", method="POST", body=body)
    [header] = response.headers.get_list("Set-Cookie")
    return header.split(";")[0]  # name=value


async def read_signed(
    http_client: AsyncHTTPClient, base_url: str, cookie: str, name: str = "user"
) -> Any:
    response = await fetch(
        http_client, f"{base_url}/signed?name={name}", headers={"Cookie": cookie}
    )
    return json.loads(response.body)


async def test_signed_cookie_round_trip(http_client: AsyncHTTPClient, base_url: str) -> None:
    cookie = await sign_here(http_client, base_url, value="alice")
    name, value = cookie.split("=", 1)
    # Quoted: http.cookies quotes a value with "=" (base64 padding), as in Tornado.
    assert name == "user" and value.startswith('"2|1:0|')
    assert await read_signed(http_client, base_url, cookie) == {"value": "alice", "key": 0}
    # set_signed_cookie's default lifetime in the browser is 30 days.
    response = await fetch(http_client, f"{base_url}/signed", method="POST", body="value=x")
    assert "expires=" in response.headers["Set-Cookie"]


async def test_signed_version_1_round_trip(http_client: AsyncHTTPClient, base_url: str) -> None:
    cookie = await sign_here(http_client, base_url, value="bob", version="1")
    assert not cookie.split("=", 1)[1].strip('"').startswith("2|")
    assert await read_signed(http_client, base_url, cookie) == {"value": "bob", "key": None}


async def test_missing_signed_cookie_is_none(http_client: AsyncHTTPClient, base_url: str) -> None:
    response = await fetch(http_client, f"{base_url}/signed")
    assert response.body == b'{"value": null, "key": null}'


async def test_forged_signed_cookie_is_none(
    http_client: AsyncHTTPClient, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cookie = await sign_here(http_client, base_url, value="alice")
    # Change the value (base64 of "alice" -> of "admin") but keep the signature.
    forged = cookie.replace("8:YWxpY2U=", "8:YWRtaW4=")
    assert forged != cookie
    assert (await read_signed(http_client, base_url, forged))["value"] is None
    assert "Invalid signed value signature" in caplog.text
    # Signed with another secret: as good as forged.
    other = web.create_signed_value("another secret", "user", "alice")
    assert (await read_signed(http_client, base_url, f"user={other.decode()}"))["value"] is None


async def test_signed_cookie_for_another_name_is_none(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    """A value signed as one cookie cannot be replayed as another."""
    cookie = await sign_here(http_client, base_url, name="prefs", value="admin")
    value = cookie.split("=", 1)[1]
    assert (await read_signed(http_client, base_url, f"user={value}"))["value"] is None
    assert (await read_signed(http_client, base_url, f"prefs={value}", name="prefs"))[
        "value"
    ] == "admin"


async def test_expired_signed_cookie_is_none(http_client: AsyncHTTPClient, base_url: str) -> None:
    def days_ago(days: float) -> Callable[[], float]:
        now = time.time()
        return lambda: now - days * 86400

    fresh = web.create_signed_value(SECRET, "user", "carol", clock=days_ago(30))
    stale = web.create_signed_value(SECRET, "user", "carol", clock=days_ago(32))
    future = web.create_signed_value(SECRET, "user", "carol", clock=days_ago(-40))
    assert (await read_signed(http_client, base_url, f"user={fresh.decode()}"))["value"] == "carol"
    assert (await read_signed(http_client, base_url, f"user={stale.decode()}"))["value"] is None
    assert (await read_signed(http_client, base_url, f"user={future.decode()}"))["value"] is None


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "2|",
        "2|99999999999999999999:x|",
        "2|1:0|10:1700000000|4:user|4:@@@@|" + "0" * 64,
        '"2|1:0|\\"quoted\\"|"',
        "x" * 3000,
    ],
)
async def test_malformed_signed_cookie_is_none(
    http_client: AsyncHTTPClient, base_url: str, value: str
) -> None:
    assert (await read_signed(http_client, base_url, f"user={value}"))["value"] is None


async def test_tornado_signed_cookie_reads_after_the_port(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    """A cookie a Tornado app signed with the same secret stays valid."""
    for version in (1, 2):
        theirs = tornado.web.create_signed_value(SECRET, "user", "dave", version=version)
        assert (await read_signed(http_client, base_url, f"user={theirs.decode()}"))[
            "value"
        ] == "dave"
    ours = (await sign_here(http_client, base_url, value="erin")).split("=", 1)[1].strip('"')
    assert tornado.web.decode_signed_value(SECRET, "user", ours) == b"erin"


async def test_secure_cookie_aliases(http_client: AsyncHTTPClient, base_url: str) -> None:
    cookie = await sign_here(http_client, base_url, value="frank")
    response = await fetch(http_client, f"{base_url}/aliases", headers={"Cookie": cookie})
    assert response.body == b'{"read": "b\'frank\'", "key": 0}'
    assert response.headers["Set-Cookie"].startswith('alias="2|1:0|')


async def test_signed_cookie_without_a_secret_is_a_500(
    http_client: AsyncHTTPClient, serve: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(HTTPClientError) as info:
        await fetch(http_client, f"{serve()}/nosecret")
    assert info.value.code == 500
    assert "cookie_secret" in caplog.text


# -- key versions -----------------------------------------------------------------------


async def test_key_rotation(http_client: AsyncHTTPClient, serve: Callable[..., str]) -> None:
    """Rotate from key 1 to key 2: old cookies still read (and name key 1),
    new ones are signed with key 2; retire key 1 and its cookies stop reading."""
    old_value = web.create_signed_value({1: KEYS[1]}, "user", "gina", key_version=1).decode()
    both = serve(cookie_secret=KEYS, key_version=2)
    retired = serve(cookie_secret={2: KEYS[2]}, key_version=2)
    assert await read_signed(http_client, both, f"user={old_value}") == {"value": "gina", "key": 1}
    new_cookie = await sign_here(http_client, both, value="gina")
    assert new_cookie.startswith('user="2|1:2|')
    assert await read_signed(http_client, both, new_cookie) == {"value": "gina", "key": 2}
    assert await read_signed(http_client, retired, new_cookie) == {"value": "gina", "key": 2}
    assert await read_signed(http_client, retired, f"user={old_value}") == {"value": None, "key": 1}


async def test_key_dict_without_key_version_is_a_500(
    http_client: AsyncHTTPClient, serve: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    url = serve(cookie_secret=KEYS)
    with pytest.raises(HTTPClientError) as info:
        await fetch(http_client, f"{url}/signed", method="POST", body="value=x")
    assert info.value.code == 500
    assert "key_version" in caplog.text
    # A version 1 cookie against the dict reads as None, not a 500.
    v1 = web.create_signed_value(SECRET, "user", "x", version=1).decode()
    assert await read_signed(http_client, url, f"user={v1}") == {"value": None, "key": None}
