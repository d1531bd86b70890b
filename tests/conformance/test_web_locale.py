"""RequestHandler.locale through real HTTP on every backend: Accept-Language
picks the translation, get_user_locale overrides it, and ``_`` translates in
the handler. A header that lies (bad weights, junk, thousands of languages,
non-ASCII bytes) still gets an answer in a supported locale."""

from __future__ import annotations

import datetime
import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import reactor.locale
from reactor import web
from reactor.httpclient import AsyncHTTPClient
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.iostream import IOStream

TRANSLATIONS = {
    "fr": (
        '"Hello","Bonjour"\n'
        '"%(n)d file","%(n)d fichier","singular"\n'
        '"%(n)d files","%(n)d fichiers","plural"\n'
        '"Monday","lundi"\n'
        '"January","janvier"\n'
    ),
    "de_DE": '"Hello","Hallo"\n"Monday","Montag"\n',
    "pt_BR": '"Hello","Ol\u00e1"\n',
    "ar_AR": '"Hello","\u0645\u0631\u062d\u0628\u0627"\n',
}


@pytest.fixture(autouse=True)
def translations(tmp_path: Path) -> Iterator[None]:
    """Loads the CSV translations above; puts the process's own back afterwards."""
    module = reactor.locale
    saved = (module._translations, module._supported_locales, module._use_gettext)
    for code, text in TRANSLATIONS.items():
        (tmp_path / f"{code}.csv").write_text(text, encoding="utf-8")
    reactor.locale.load_translations(str(tmp_path))
    yield
    module._translations, module._supported_locales, module._use_gettext = saved
    reactor.locale.Locale._cache.clear()


class Greeting(web.RequestHandler):
    def get(self) -> None:
        _ = self.locale.translate
        n = int(self.get_argument("n", "1"))
        self.write(
            {
                "code": self.locale.code,
                "hello": _("Hello"),
                "files": _("%(n)d file", "%(n)d files", n) % {"n": n},
                "day": self.locale.format_day(datetime.datetime(2024, 1, 1)),
                "rtl": self.locale.rtl,
            }
        )


class UserChoice(Greeting):
    """The user's saved choice (here: ?lang=) wins over the browser's."""

    def get_user_locale(self) -> reactor.locale.Locale | None:
        lang = self.get_argument("lang", None)
        return reactor.locale.get(lang) if lang else None


class SetLocale(Greeting):
    def prepare(self) -> None:
        self.locale = reactor.locale.get("de_DE")


class BrowserDefault(web.RequestHandler):
    def get(self) -> None:
        self.write(self.get_browser_locale(default="pt_BR").code)


@pytest.fixture
def app() -> web.Application:
    return web.Application(
        [
            (r"/", Greeting),
            (r"/user", UserChoice),
            (r"/set", SetLocale),
            (r"/browser-default", BrowserDefault),
        ]
    )


async def greet(
    client: AsyncHTTPClient, url: str, accept_language: str | None = None
) -> dict[str, Any]:
    headers = {} if accept_language is None else {"Accept-Language": accept_language}
    response = await client.fetch(url, headers=headers, raise_error=False)
    assert response.code == 200, response.body
    result: dict[str, Any] = json.loads(response.body)
    return result


async def test_accept_language_picks_the_locale(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    reply = await greet(http_client, base_url + "/", "fr-CA,fr;q=0.8,en;q=0.5")
    assert reply == {
        "code": "fr",
        "hello": "Bonjour",
        "files": "1 fichier",
        "day": "lundi, janvier 1",
        "rtl": False,
    }
    reply = await greet(http_client, base_url + "/?n=3", "fr")
    assert reply["files"] == "3 fichiers"
    reply = await greet(http_client, base_url + "/", "ar")
    assert reply["code"] == "en_US"  # "ar" is not "ar_AR": the exact code or its language
    reply = await greet(http_client, base_url + "/", "ar-AR")
    assert reply["code"] == "ar_AR" and reply["rtl"] is True


async def test_weights_order_the_languages(http_client: AsyncHTTPClient, base_url: str) -> None:
    reply = await greet(http_client, base_url + "/", "de-DE;q=0.3, pt-br;q=0.9, ja")
    assert reply["code"] == "pt_BR" and reply["hello"] == "Ol\u00e1"
    reply = await greet(http_client, base_url + "/", "pt-BR;q=0, de-de")
    assert reply["code"] == "de_DE"  # q=0 means "not this one"


async def test_no_supported_language_is_the_default(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    assert (await greet(http_client, base_url + "/"))["code"] == "en_US"
    reply = await greet(http_client, base_url + "/", "ja-JP, ko;q=0.5")
    assert reply == {
        "code": "en_US",
        "hello": "Hello",
        "files": "1 file",
        "day": "Monday, January 1",
        "rtl": False,
    }
    response = await http_client.fetch(
        base_url + "/browser-default", headers={"Accept-Language": "xx"}
    )
    assert response.body == b"en_US"  # the closest to "xx" is the default locale
    response = await http_client.fetch(base_url + "/browser-default")
    assert response.body == b"pt_BR"  # no header: get_browser_locale's default


@pytest.mark.parametrize(
    "header",
    [
        "fr;q=abc",
        "fr;q=5",
        "fr;q=nan",
        "fr;q=-1",
        ",,, ;;; ,",
        "fr_CA_extra_parts, ;q=1",
        "*",
        "fr;q=",
    ],
)
async def test_a_lying_header_gets_an_answer(
    http_client: AsyncHTTPClient, base_url: str, header: str
) -> None:
    reply = await greet(http_client, base_url + "/", header)
    assert reply["code"] in {"en_US", "fr"}


async def test_a_flood_of_languages_is_answered(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    # As many languages as fit in a header the server accepts (about 40 kB):
    # the work is linear in the header, and the best one still wins.
    header = ", ".join(f"x{i};q=0.{i % 9 + 1}" for i in range(3000)) + ", de-DE;q=1"
    assert len(header) < 60_000
    reply = await greet(http_client, base_url + "/", header)
    assert reply["code"] == "de_DE"


async def test_non_ascii_bytes_in_the_header(
    io_loop: IOLoop, http_server: HTTPServer, http_port: int
) -> None:
    stream = IOStream(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    await stream.connect(("127.0.0.1", http_port))
    await stream.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Language: \xe9t\xe9, fr-\xff\xfe\r\n"
        b"Connection: close\r\n\r\n"
    )
    reply = await stream.read_until_close()
    assert reply.startswith(b"HTTP/1.1 200 ")
    # The header reads as latin-1: "été" is no locale; "fr-ÿþ" is no region
    # reactor knows, so its language, fr, answers.
    assert b'"code": "fr"' in reply


async def test_get_user_locale_overrides_the_browser(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    reply = await greet(http_client, base_url + "/user?lang=de_DE", "fr")
    assert reply["code"] == "de_DE" and reply["hello"] == "Hallo"
    assert reply["day"] == "Montag, January 1"  # untranslated words stay English
    reply = await greet(http_client, base_url + "/user", "fr")
    assert reply["code"] == "fr"  # None: the browser decides


async def test_the_locale_can_be_set(http_client: AsyncHTTPClient, base_url: str) -> None:
    reply = await greet(http_client, base_url + "/set", "fr")
    assert reply["code"] == "de_DE"


async def test_http_client_module(io_loop: IOLoop, http_server: HTTPServer, http_port: int) -> None:
    """The standard library's client, as a script would send it."""

    def blocking_fetch() -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        try:
            connection.request("GET", "/?n=2", headers={"Accept-Language": "fr-FR,en;q=0.1"})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    status, body = await io_loop.run_in_executor(None, blocking_fetch)
    assert status == 200
    assert json.loads(body)["files"] == "2 fichiers"
