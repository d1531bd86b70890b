"""XSRF protection through real HTTP, on every backend: the ``_xsrf`` cookie
and masked token a page gets, the 403s a forged or token-less form post
gets, and the ways a real client (a form, JavaScript's header, curl with a
cookie jar) passes the check.
"""

from __future__ import annotations

import binascii
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest

from reactor import web
from reactor.httpclient import AsyncHTTPClient, HTTPClientError, HTTPResponse
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.testing import bind_unused_port
from tests.util import run_curl

CLIENT_TIMEOUT = 4.0
MASKED = re.compile(r"2\|([0-9a-f]{8})\|([0-9a-f]{32})\|(\d+)")
TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    '<form method="post">{{ xsrf_form_html() }}<input name="text"></form>'
)


class Form(web.RequestHandler):
    """GET: the form (and the token as a header); POST, PUT, DELETE: "ok"."""

    def get_current_user(self) -> Any:
        return self.get_argument("user", None)

    def get(self) -> None:
        self.set_header("X-Token", self.xsrf_token.decode())
        self.write(TEMPLATE.render(xsrf_form_html=self.xsrf_form_html))

    def head(self) -> None:
        self.set_header("X-Checked", "no")

    def options(self) -> None:
        self.write("options")

    def post(self) -> None:
        self.write("ok " + self.get_argument("text", ""))

    def put(self) -> None:
        self.write("put ok")

    def delete(self) -> None:
        self.write("delete ok")


class Concatenated(web.RequestHandler):
    """A Tornado-style page built in Python: str + xsrf_form_html() + str."""

    def get(self) -> None:
        self.write('<form method="post">' + self.xsrf_form_html() + "</form>")


class Exempt(web.RequestHandler):
    """An API that authenticates otherwise opts out by overriding the check."""

    def check_xsrf_cookie(self) -> None:
        pass

    def post(self) -> None:
        self.write("exempt")


def application(extra_handlers: list[Any] | None = None, **settings: Any) -> web.Application:
    settings.setdefault("xsrf_cookies", True)
    handlers = [
        (r"/form", Form),
        (r"/concat", Concatenated),
        (r"/api", Exempt),
        *(extra_handlers or []),
    ]
    return web.Application(handlers, **settings)


@pytest.fixture
def app() -> web.Application:
    return application()


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


async def fetch(client: AsyncHTTPClient, url: str, **kwargs: Any) -> HTTPResponse:
    kwargs.setdefault("request_timeout", CLIENT_TIMEOUT)
    return await client.fetch(url, **kwargs)


async def refused(client: AsyncHTTPClient, url: str, **kwargs: Any) -> int:
    with pytest.raises(HTTPClientError) as info:
        await fetch(client, url, **kwargs)
    return info.value.code


def unmask(token: str) -> bytes:
    match = MASKED.fullmatch(token)
    assert match is not None, token
    mask, masked = binascii.a2b_hex(match[1]), binascii.a2b_hex(match[2])
    return bytes(b ^ mask[i % 4] for i, b in enumerate(masked))


def cookie_of(response: HTTPResponse, name: str = "_xsrf") -> str:
    [header] = [h for h in response.headers.get_list("Set-Cookie") if h.startswith(name + "=")]
    return header.split(";")[0].split("=", 1)[1]


async def new_session(client: AsyncHTTPClient, base_url: str) -> tuple[str, str]:
    """GET the form: (the _xsrf cookie, the form's token)."""
    response = await fetch(client, f"{base_url}/form")
    return cookie_of(response), response.headers["X-Token"]


# -- the token and its cookie -----------------------------------------------------------


async def test_first_page_sets_the_cookie_and_masks_the_token(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, f"{base_url}/form")
    cookie = cookie_of(response)
    token = response.headers["X-Token"]
    assert MASKED.fullmatch(cookie) and MASKED.fullmatch(token)
    assert cookie == token  # the cookie is the first masking of the token
    assert len(unmask(token)) == 16
    assert abs(int(token.rsplit("|", 1)[1]) - time.time()) < 60
    assert response.headers.get_list("Set-Cookie") == [
        f"_xsrf={cookie}; Path=/"
    ]  # no expires for an anonymous user


async def test_form_html_is_markup_for_jinja2(http_client: AsyncHTTPClient, base_url: str) -> None:
    """xsrf_form_html() comes out as an <input>, not escaped by Jinja2's
    autoescaping, with the token (its "|" intact) in the value."""
    response = await fetch(http_client, f"{base_url}/form")
    token = response.headers["X-Token"]
    assert f'<input type="hidden" name="_xsrf" value="{token}"/>'.encode() in response.body
    assert b"&lt;input" not in response.body


async def test_form_html_concatenated_in_python_is_not_escaped(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    """Tornado's xsrf_form_html() is a plain str: gluing it to the page's own
    HTML in Python leaves that HTML as it is (markupsafe.Markup would escape
    the other operand and send "&lt;form")."""
    response = await fetch(http_client, f"{base_url}/concat")
    body = response.body.decode()
    assert re.fullmatch(
        r'<form method="post"><input type="hidden" name="_xsrf" value="2\|[0-9a-f|]+"/></form>',
        body,
    ), body


async def test_every_response_masks_the_same_token_afresh(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    """BREACH: no two pages carry the same token bytes, yet all unmask to
    the cookie's token, and no new cookie is set while it is valid."""
    cookie, first = await new_session(http_client, base_url)
    tokens = {first}
    for _ in range(5):
        response = await fetch(
            http_client, f"{base_url}/form", headers={"Cookie": f"_xsrf={cookie}"}
        )
        assert response.headers.get_list("Set-Cookie") == []
        tokens.add(response.headers["X-Token"])
    assert len(tokens) == 6
    assert {unmask(token) for token in tokens} == {unmask(cookie)}


async def test_logged_in_user_cookie_lasts_30_days(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    response = await fetch(http_client, f"{base_url}/form?user=alice")
    [header] = response.headers.get_list("Set-Cookie")
    assert "expires=" in header


async def test_cookie_kwargs_and_name(
    http_client: AsyncHTTPClient, serve: Callable[..., str]
) -> None:
    url = serve(
        xsrf_cookie_kwargs={"httponly": True, "secure": True, "samesite": "Strict"},
        xsrf_cookie_name="csrf",
    )
    for _ in range(2):  # the setting is not changed by a logged-in user's request
        response = await fetch(http_client, f"{url}/form?user=bob")
        [header] = response.headers.get_list("Set-Cookie")
        assert header.startswith("csrf=2|")
        assert header.endswith("; HttpOnly; Path=/; SameSite=Strict; Secure")
        assert "expires=" in header
    response = await fetch(http_client, f"{url}/form")
    assert "expires=" not in response.headers["Set-Cookie"]
    cookie, token = cookie_of(response, "csrf"), response.headers["X-Token"]
    posted = await fetch(
        http_client,
        f"{url}/form",
        method="POST",
        body=f"_xsrf={token}",
        headers={"Cookie": f"csrf={cookie}"},
    )
    assert posted.body == b"ok "


async def test_version_1_tokens(http_client: AsyncHTTPClient, serve: Callable[..., str]) -> None:
    url = serve(xsrf_cookie_version=1)
    response = await fetch(http_client, f"{url}/form")
    cookie, token = cookie_of(response), response.headers["X-Token"]
    assert re.fullmatch(r"[0-9a-f]{32}", token) and cookie == token
    posted = await fetch(
        http_client,
        f"{url}/form",
        method="POST",
        body=f"_xsrf={token}",
        headers={"Cookie": f"_xsrf={cookie}"},
    )
    assert posted.body == b"ok "


async def test_old_version_1_cookie_accepts_masked_tokens(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    """A browser holding a version 1 cookie (from an older Tornado app) keeps
    it: the page gets a version 2 token of the same bytes, which passes."""
    raw = os.urandom(16)
    old_cookie = binascii.b2a_hex(raw).decode()
    response = await fetch(
        http_client, f"{base_url}/form", headers={"Cookie": f"_xsrf={old_cookie}"}
    )
    assert response.headers.get_list("Set-Cookie") == []
    token = response.headers["X-Token"]
    assert unmask(token) == raw
    for sent in (token, old_cookie):
        posted = await fetch(
            http_client,
            f"{base_url}/form",
            method="POST",
            body=f"_xsrf={sent}",
            headers={"Cookie": f"_xsrf={old_cookie}"},
        )
        assert posted.body == b"ok "


async def test_malformed_cookie_is_replaced(http_client: AsyncHTTPClient, base_url: str) -> None:
    for bad in ["2|zz|00|1", "2|00000000|00|x", "3|a|b|c", "2|0000|", "2|" + "0" * 5000]:
        response = await fetch(http_client, f"{base_url}/form", headers={"Cookie": f"_xsrf={bad}"})
        assert MASKED.fullmatch(cookie_of(response)), bad


# -- the check --------------------------------------------------------------------------


async def test_post_without_token_is_403(
    http_client: AsyncHTTPClient, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cookie, _ = await new_session(http_client, base_url)
    with caplog.at_level(logging.WARNING):
        code = await refused(
            http_client,
            f"{base_url}/form",
            method="POST",
            body="text=hi",
            headers={"Cookie": f"_xsrf={cookie}"},
        )
    assert code == 403
    assert "'_xsrf' argument missing from POST" in caplog.text


async def test_post_with_wrong_token_is_403(
    http_client: AsyncHTTPClient, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cookie, _ = await new_session(http_client, base_url)
    _, other_token = await new_session(http_client, base_url)  # another browser's
    with caplog.at_level(logging.WARNING):
        code = await refused(
            http_client,
            f"{base_url}/form",
            method="POST",
            body=f"_xsrf={other_token}",
            headers={"Cookie": f"_xsrf={cookie}"},
        )
    assert code == 403
    assert "XSRF cookie does not match POST argument" in caplog.text


async def test_post_with_malformed_token_is_403(
    http_client: AsyncHTTPClient, base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cookie, _ = await new_session(http_client, base_url)
    for bad in ["2|zz|00|1", "2|" + "f" * 100_000, "7|x", "2|00000000|" + "0" * 32 + "|-1"]:
        code = await refused(
            http_client,
            f"{base_url}/form",
            method="POST",
            body=f"_xsrf={bad}",
            headers={"Cookie": f"_xsrf={cookie}"},
        )
        assert code == 403
    assert "'_xsrf' argument has invalid format" in caplog.text


async def test_non_utf8_token_is_400(http_client: AsyncHTTPClient, base_url: str) -> None:
    cookie, _ = await new_session(http_client, base_url)
    code = await refused(
        http_client,
        f"{base_url}/form",
        method="POST",
        body="_xsrf=%ff%fe",
        headers={"Cookie": f"_xsrf={cookie}"},
    )
    assert code == 400


async def test_post_without_cookie_is_403(http_client: AsyncHTTPClient, base_url: str) -> None:
    """A token copied from someone's page is useless without their cookie:
    the server makes a new token for this request, which cannot match."""
    _, token = await new_session(http_client, base_url)
    assert (
        await refused(http_client, f"{base_url}/form", method="POST", body=f"_xsrf={token}") == 403
    )


async def test_token_in_the_cookie_alone_is_403(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    """The cookie is sent by the browser on a cross-site post too; only the
    page's copy proves the post came from the page."""
    cookie, _ = await new_session(http_client, base_url)
    code = await refused(
        http_client,
        f"{base_url}/form",
        method="POST",
        body="",
        headers={"Cookie": f"_xsrf={cookie}", "X-Requested-With": "XMLHttpRequest"},
    )
    assert code == 403


@pytest.mark.parametrize("where", ["form", "query", "X-XSRFToken", "X-CSRFToken"])
async def test_right_token_passes(http_client: AsyncHTTPClient, base_url: str, where: str) -> None:
    cookie, token = await new_session(http_client, base_url)
    headers = {"Cookie": f"_xsrf={cookie}"}
    url, body = f"{base_url}/form", "text=hi"
    if where == "form":
        body += f"&_xsrf={token}"
    elif where == "query":
        url += f"?_xsrf={token}"
    else:
        headers[where] = token
    response = await fetch(http_client, url, method="POST", body=body, headers=headers)
    assert response.body == b"ok hi"


async def test_other_unsafe_methods_are_checked(
    http_client: AsyncHTTPClient, base_url: str
) -> None:
    cookie, token = await new_session(http_client, base_url)
    for method in ("PUT", "DELETE"):
        body = "" if method == "PUT" else None
        assert (
            await refused(
                http_client,
                f"{base_url}/form",
                method=method,
                body=body,
                headers={"Cookie": f"_xsrf={cookie}"},
            )
            == 403
        )
        response = await fetch(
            http_client,
            f"{base_url}/form",
            method=method,
            body=body,
            headers={"Cookie": f"_xsrf={cookie}", "X-Xsrftoken": token},
            allow_nonstandard_methods=True,
        )
        assert response.body == f"{method.lower()} ok".encode()


async def test_safe_methods_are_not_checked(http_client: AsyncHTTPClient, base_url: str) -> None:
    assert (await fetch(http_client, f"{base_url}/form", method="HEAD")).headers[
        "X-Checked"
    ] == "no"
    assert (await fetch(http_client, f"{base_url}/form", method="OPTIONS")).body == b"options"


async def test_handler_may_opt_out(http_client: AsyncHTTPClient, base_url: str) -> None:
    assert (await fetch(http_client, f"{base_url}/api", method="POST", body="")).body == b"exempt"


async def test_without_the_setting_nothing_is_checked(
    http_client: AsyncHTTPClient, serve: Callable[..., str]
) -> None:
    url = serve(xsrf_cookies=False)
    assert (await fetch(http_client, f"{url}/form", method="POST", body="text=x")).body == b"ok x"


# -- a real client -----------------------------------------------------------------------


async def test_curl_session(
    io_loop: IOLoop, http_server: Any, base_url: str, need_curl: str, tmp_path: Path
) -> None:
    """As a user scripts it: fetch the form keeping cookies, post with the
    token from the page; the same post with no token is refused."""
    jar = str(tmp_path / "jar")

    def curl(*args: str) -> bytes:
        return run_curl("-b", jar, "-c", jar, *args)[0]

    def session() -> tuple[bytes, bytes]:
        page = curl(f"{base_url}/form").decode()
        match = re.search(r'name="_xsrf" value="([^"]+)"', page)
        assert match is not None, page
        token = match[1]
        ok = curl("--data-urlencode", f"_xsrf={token}", "-d", "text=from curl", f"{base_url}/form")
        denied = curl("-o", "/dev/null", "-w", "%{http_code}", "-d", "text=x", f"{base_url}/form")
        return ok, denied

    ok, denied = await io_loop.run_in_executor(None, session)
    assert ok == b"ok from curl"
    assert denied == b"403"


# -- cross-origin protection (Tornado 6.6: Sec-Fetch-Site and Origin) -------------------


class TrustsPartners(web.RequestHandler):
    def check_trusted_origin(self, origin: str) -> bool:
        return origin.endswith(".partner.example")

    def post(self) -> None:
        self.write("partner ok")


@pytest.fixture
def origin_checked(serve: Callable[..., str]) -> str:
    return serve(
        xsrf_cookies=False,
        cross_origin_protection=True,
        trusted_origins=["https://trusted.example"],
        extra_handlers=[(r"/partner", TrustsPartners)],
    )


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # curl, a script: no browser, nothing to forge
        ({"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example"}, True),
        ({"Sec-Fetch-Site": "none"}, True),  # typed into the address bar
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, False),
        ({"Sec-Fetch-Site": "same-site", "Origin": "https://sub.site.example"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://trusted.example"}, True),
        ({"Origin": "https://evil.example"}, False),  # an old browser, or plain HTTP
        ({"Origin": "https://trusted.example"}, True),
        ({"Origin": "null"}, False),  # a sandboxed iframe or a redirect
        ({"Origin": "http://[::1"}, False),  # malformed: refused, not a 500
        ({"Sec-Fetch-Site": "unheard-of", "Origin": "https://evil.example"}, False),
    ],
)
async def test_cross_origin_protection(
    http_client: AsyncHTTPClient,
    origin_checked: str,
    headers: dict[str, str],
    allowed: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kwargs: dict[str, Any] = {"method": "POST", "body": "text=x", "headers": headers}
    if allowed:
        assert (await fetch(http_client, f"{origin_checked}/form", **kwargs)).body == b"ok x"
    else:
        with caplog.at_level(logging.WARNING):
            assert await refused(http_client, f"{origin_checked}/form", **kwargs) == 403
        assert "not allowed" in caplog.text


async def test_origin_of_this_host_is_same_origin(
    http_client: AsyncHTTPClient, origin_checked: str
) -> None:
    """Without Sec-Fetch-Site, an Origin naming the Host (and port) passes,
    whatever its scheme (a TLS proxy in front may hide it)."""
    host = origin_checked.removeprefix("http://")
    for origin in (f"http://{host}", f"https://{host.upper()}"):
        response = await fetch(
            http_client,
            f"{origin_checked}/form",
            method="POST",
            body="text=x",
            headers={"Origin": origin},
        )
        assert response.body == b"ok x"
    other_port = host.rsplit(":", 1)[0] + ":1"
    code = await refused(
        http_client,
        f"{origin_checked}/form",
        method="POST",
        body="",
        headers={"Origin": f"http://{other_port}"},
    )
    assert code == 403


async def test_check_trusted_origin_override(
    http_client: AsyncHTTPClient, origin_checked: str
) -> None:
    headers = {"Sec-Fetch-Site": "cross-site", "Origin": "https://shop.partner.example"}
    response = await fetch(
        http_client, f"{origin_checked}/partner", method="POST", body="", headers=headers
    )
    assert response.body == b"partner ok"
    headers["Origin"] = "https://trusted.example"  # the override replaces the setting
    assert (
        await refused(
            http_client, f"{origin_checked}/partner", method="POST", body="", headers=headers
        )
        == 403
    )


async def test_cross_origin_gets_are_not_checked(
    http_client: AsyncHTTPClient, origin_checked: str
) -> None:
    headers = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    response = await fetch(http_client, f"{origin_checked}/form", headers=headers)
    assert response.code == 200


async def test_both_protections_together(
    http_client: AsyncHTTPClient, serve: Callable[..., str]
) -> None:
    url = serve(cross_origin_protection=True)  # and xsrf_cookies=True
    cookie, token = await new_session(http_client, url)
    same = {"Sec-Fetch-Site": "same-origin", "Cookie": f"_xsrf={cookie}"}
    assert await refused(http_client, f"{url}/form", method="POST", body="", headers=same) == 403
    same["X-XSRFToken"] = token
    assert (
        await fetch(http_client, f"{url}/form", method="POST", body="", headers=same)
    ).body == b"ok "
    cross = dict(same, **{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
    assert await refused(http_client, f"{url}/form", method="POST", body="", headers=cross) == 403


async def test_cross_site_passes_without_the_setting(
    http_client: AsyncHTTPClient, serve: Callable[..., str]
) -> None:
    url = serve(xsrf_cookies=False)
    headers = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    response = await fetch(
        http_client, f"{url}/form", method="POST", body="text=x", headers=headers
    )
    assert response.body == b"ok x"
