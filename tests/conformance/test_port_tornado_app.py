"""A Tornado application ports to reactor by changing its imports, on every backend.

``examples/tornado_app`` is a Tornado 6.6 application (templates in
Tornado's syntax, static files, a signed-cookie login, an XSRF-protected
form, a long-polling chat). The test copies it into a temporary folder,
rewrites ``tornado`` to ``reactor`` in its import lines and nowhere else,
serves it on the test's loop and drives it over real HTTP with reactor's
client. The same driver runs once against the unmodified application
served by Tornado in a subprocess: what the driver asserts is Tornado's
behaviour, and the example is genuine Tornado code.
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import http.cookies
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from reactor import backends, gen
from reactor.httpclient import AsyncHTTPClient, HTTPResponse
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.testing import bind_unused_port

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "examples" / "tornado_app"
IMPORT_LINE = re.compile(r"^\s*(?:from|import)\s+tornado\b")
SECRET = "port-test-secret"


class Session:
    """One user agent: reactor's client with a cookie jar of its own.

    ``fetch`` never follows redirects (the test looks at them) and never
    raises for a status: it returns every response.
    """

    def __init__(self, client: AsyncHTTPClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url
        self.cookies: dict[str, str] = {}

    async def fetch(
        self,
        path: str,
        method: str = "GET",
        form: dict[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> HTTPResponse:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if method in ("POST", "PUT") and body is None:
            body = b""
        response = await self.client.fetch(
            self.base_url + path,
            method=method,
            body=body,
            headers=sent,
            follow_redirects=False,
            raise_error=False,
            request_timeout=10,
            **kwargs,
        )
        for line in response.headers.get_list("Set-Cookie"):
            jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or _in_the_past(morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.coded_value
        return response

    @property
    def xsrf(self) -> str:
        """The ``_xsrf`` cookie's value, which a form may echo as its token."""
        return urllib.parse.unquote(self.cookies["_xsrf"].strip('"'))

    async def login(self, name: str) -> HTTPResponse:
        if "_xsrf" not in self.cookies:
            await self.fetch("/login")
        return await self.fetch("/login", "POST", {"name": name, "_xsrf": self.xsrf})


def _in_the_past(expires: str) -> bool:
    if not expires:
        return False
    return email.utils.parsedate_to_datetime(expires) < datetime.datetime.now(datetime.timezone.utc)


def text(response: HTTPResponse) -> str:
    return response.body.decode("utf-8") if response.body else ""


async def drive_app(client: AsyncHTTPClient, base_url: str) -> None:
    """What a user of the example does, with every answer checked."""
    alice = Session(client, base_url)
    page = await alice.fetch("/")
    assert page.code == 200, page
    assert "<h1>Guestbook</h1>" in text(page)
    assert "Sign in</a> to chat" in text(page)
    assert "0 notes" in text(page)
    assert "_xsrf" in alice.cookies  # set by xsrf_form_html

    # static files, with a versioned URL and a long cache for it
    match = re.search(r'href="(/static/style\.css\?v=([0-9a-f]+))"', text(page))
    assert match, text(page)
    css = await alice.fetch(match.group(1))
    assert css.code == 200
    assert css.body == (APP_DIR / "static" / "style.css").read_bytes()
    assert "max-age=" in css.headers.get("Cache-Control", "")
    etag = css.headers["Etag"]
    again = await alice.fetch(match.group(1), headers={"If-None-Match": etag})
    assert again.code == 304
    missing = await alice.fetch("/static/../app.py")
    assert missing.code in (403, 404)

    # the guestbook form: refused without its XSRF token or with a wrong one
    refused = await alice.fetch("/guestbook", "POST", {"note": "no token"})
    assert refused.code == 403
    forged = await alice.fetch("/guestbook", "POST", {"note": "bad", "_xsrf": "2|00|00|00"})
    assert forged.code == 403
    empty = await alice.fetch("/guestbook", "POST", {"note": " ", "_xsrf": alice.xsrf})
    assert empty.code == 400
    signed = await alice.fetch("/guestbook", "POST", {"note": "<b>hi</b>", "_xsrf": alice.xsrf})
    assert signed.code == 302
    assert signed.headers["Location"] == "/"
    page = await alice.fetch("/")
    assert "1 note<" in text(page)
    assert "<li>&lt;b&gt;hi&lt;/b&gt;</li>" in text(page)  # autoescaped
    assert "no token" not in text(page)

    # the chat needs a login: a GET is sent to the login page, a POST refused
    redirected = await alice.fetch("/chat/updates?cursor=0")
    assert redirected.code == 302
    assert redirected.headers["Location"].startswith("/login?next=")
    anonymous = await alice.fetch("/chat/new", "POST", {"text": "hi", "_xsrf": alice.xsrf})
    assert anonymous.code == 403

    # login: a bad name is a 400, a good one a signed cookie and a redirect;
    # a "next" that leaves the site is not followed
    bad = await alice.login("x" * 40)
    assert bad.code == 400
    assert "a name of 1 to 32 characters" in text(bad)
    logged_in = await alice.fetch(
        "/login", "POST", {"name": "alice", "next": "//evil.example/", "_xsrf": alice.xsrf}
    )
    assert logged_in.code == 302
    assert logged_in.headers["Location"] == "/"
    assert alice.cookies["user"].count("|") >= 5  # a signed value, not the name
    page = await alice.fetch("/")
    assert 'Signed in as <b id="user">alice</b>' in text(page)

    # a cookie that was not signed by the server, or was changed, is nobody
    mallory = Session(client, base_url)
    mallory.cookies["user"] = "alice"
    assert "Sign in</a> to chat" in text(await mallory.fetch("/"))
    mallory.cookies["user"] = alice.cookies["user"].replace("YWxpY2U=", "Ym9i")  # "bob"
    assert "Sign in</a> to chat" in text(await mallory.fetch("/"))

    # the long poll: alice polls past the last message and bob posts one; parked or
    # not yet, her poll answers with it (the cursor makes the order not matter)
    bob = Session(client, base_url)
    assert (await bob.login("bob")).code == 302
    bad_cursor = await alice.fetch("/chat/updates?cursor=nope")
    assert bad_cursor.code == 400
    waiting = gen.convert_yielded(alice.fetch("/chat/updates?cursor=0"))
    posted = await bob.fetch("/chat/new", "POST", {"text": "hello <alice>", "_xsrf": bob.xsrf})
    assert posted.code == 200, text(posted)
    assert posted.headers["Content-Type"].startswith("application/json")
    update = await waiting
    assert update.code == 200
    (message,) = json.loads(update.body)["messages"]
    assert (message["author"], message["text"]) == ("bob", "hello <alice>")
    page = await alice.fetch("/")
    assert "<b>bob</b>: <span>hello &lt;alice&gt;</span>" in text(page)

    # sign out: the cookie goes, and with it the chat
    out = await alice.fetch("/logout", "POST", {"_xsrf": alice.xsrf})
    assert out.code == 302
    assert "user" not in alice.cookies
    assert "Sign in</a> to chat" in text(await alice.fetch("/"))


def port_to_reactor(source: str) -> str:
    """``tornado`` -> ``reactor`` in the import lines; every other line unchanged."""
    lines = []
    for line in source.splitlines(keepends=True):
        if IMPORT_LINE.match(line):
            line = line.replace("tornado", "reactor")
        lines.append(line)
    ported = "".join(lines)
    # nothing else named the framework: the rewrite above is the whole port
    assert not re.search(r"\btornado\b", ported)
    return ported


def load_ported_app(tmp_path: Path) -> ModuleType:
    shutil.copytree(APP_DIR, tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / "app" / "app.py"
    path.write_text(port_to_reactor(path.read_text()))
    spec = importlib.util.spec_from_file_location("ported_tornado_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ported_app(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The ported module, imported once: its ``define()`` calls register its
    options in the process-wide ``options``, which allows each name once."""
    return load_ported_app(tmp_path_factory.mktemp("ported"))


async def test_ported_app(io_loop: IOLoop, ported_app: ModuleType) -> None:
    module = ported_app
    assert module.web.__name__ == "reactor.web"
    sock, port = bind_unused_port()
    server = HTTPServer(module.App(cookie_secret=SECRET))
    server.add_sockets([sock])
    client = AsyncHTTPClient(force_instance=True)
    try:
        await drive_app(client, f"http://127.0.0.1:{port}")
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()


AVAILABLE = [name for name, reason in backends.available().items() if reason is None]


@pytest.mark.parametrize("backend", AVAILABLE)
def test_ported_app_runs_as_a_program(ported_app: ModuleType, backend: str) -> None:
    """``python app.py --port=0`` as a user runs the port: ``reactor.options``
    reads the command line, ``IOLoop.current().start()`` runs the backend
    ``REACTOR_BACKEND`` names, and SIGTERM stops it cleanly."""
    env = dict(
        os.environ,
        REACTOR_BACKEND=backend,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    server = subprocess.Popen(
        [sys.executable, ported_app.__file__, "--port=0", "--address=127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.match(r"listening on http://127\.0\.0\.1:(\d+)/", line)
        assert match, (line, server.stderr.read() if server.stderr else "")
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        assert b"<h1>Guestbook</h1>" in response.read()
        conn.close()
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert "Traceback" not in err, err


def test_the_example_is_tornado_code(tmp_path: Path) -> None:
    """The unmodified example, served by Tornado in a subprocess, passes the
    same driver: it runs once (the backend under test is only the client's)."""
    pytest.importorskip("tornado")
    server = subprocess.Popen(
        [sys.executable, str(APP_DIR / "app.py"), "--port=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    loop = IOLoop(make_current=False)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.match(r"listening on (http://127\.0\.0\.1:\d+)/", line)
        assert match, (line, server.stderr.read() if server.stderr else "")

        async def run() -> None:
            client = AsyncHTTPClient(force_instance=True)
            try:
                await drive_app(client, match.group(1))
            finally:
                client.close()

        loop.run_sync(run, timeout=20)
    finally:
        loop.close()
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert "Traceback" not in err, err
