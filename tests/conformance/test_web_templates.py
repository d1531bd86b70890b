"""RequestHandler.render on the real reactor.template, through real HTTP on
every backend: template files in tmp_path found through ``template_path``,
in Tornado syntax and in Jinja2 syntax, with the handler namespace, the
autoescaping, UI modules and their resources, template errors, the
compiled-template cache and the template settings."""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import reactor.locale
from reactor import template, web
from reactor.httpclient import AsyncHTTPClient, HTTPResponse
from reactor.httpserver import HTTPServer
from reactor.ioloop import IOLoop
from reactor.netutil import bind_sockets

HOSTILE = '<script>alert("x&y")</script>\''
TORNADO_ESCAPED = "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
JINJA_ESCAPED = "&lt;script&gt;alert(&#34;x&amp;y&#34;)&lt;/script&gt;&#39;"


class Serving:
    """An Application served on a free port of the test's loop."""

    def __init__(self, app: web.Application) -> None:
        self.server = HTTPServer(app)
        [sock] = bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.client = AsyncHTTPClient(force_instance=True)

    async def fetch(self, path: str, **kwargs: Any) -> HTTPResponse:
        kwargs.setdefault("raise_error", False)
        kwargs.setdefault("follow_redirects", False)
        return await self.client.fetch(self.url + path, **kwargs)

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def serve(io_loop: IOLoop) -> Iterator[Any]:
    servers: list[Serving] = []

    def start(app: web.Application) -> Serving:
        servers.append(Serving(app))
        return servers[-1]

    yield start
    for serving in servers:
        serving.close()
        io_loop.run_sync(serving.server.close_all_connections)


@pytest.fixture
def tdir(tmp_path: Path) -> Iterator[Path]:
    """The template directory; its loaders are dropped from the shared cache after."""
    directory = tmp_path / "templates"
    directory.mkdir()
    yield directory
    with web.RequestHandler._template_loader_lock:
        for key in [k for k in web.RequestHandler._template_loaders if k.startswith(str(tmp_path))]:
            del web.RequestHandler._template_loaders[key]


def write(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")


@pytest.fixture
def french(tmp_path: Path) -> Iterator[None]:
    """reactor.locale with a French translation from a CSV; restored after."""
    module = reactor.locale
    saved = (module._translations, module._supported_locales, module._use_gettext)
    locale_dir = tmp_path / "locale"
    locale_dir.mkdir()
    (locale_dir / "fr_FR.csv").write_text('"Hello","Bonjour"\n', encoding="utf-8")
    module.load_translations(str(locale_dir))
    reactor.locale.Locale._cache.clear()
    yield
    module._translations, module._supported_locales, module._use_gettext = saved
    reactor.locale.Locale._cache.clear()


# -- the namespace, in both syntaxes ---------------------------------------------------

TORNADO_FILES = {
    "base.html": (
        "<html><head><title>{% block title %}base{% end %}</title></head>\n"
        '<body>{% block body %}{% end %}{% include "footer.html" %}</body></html>\n'
    ),
    "footer.html": "<footer>{{ request.path }}</footer>",
    "page.html": (
        '{% extends "base.html" %}\n'
        "{% block title %}{{ title }}{% end %}\n"
        "{% block body %}"
        "<ul>{% for item in items %}<li>{{ item }}</li>{% end %}</ul>\n"
        "<p id=handler>{{ type(handler).__name__ }}</p>\n"
        "<p id=user>{{ current_user }}</p>\n"
        "<p id=locale>{{ locale.code }}</p>\n"
        '<p id=hello>{{ _("Hello") }}</p>\n'
        '<p id=static>{{ static_url("app.css") }}</p>\n'
        "<form method=post>{% raw xsrf_form_html() %}</form>\n"
        "<a href=\"{{ reverse_url('item', 42) }}\">item</a>\n"
        '<p id=module>{% module Badge("b1") %}</p>\n'
        "<p id=modules>{% raw modules.Badge('b2') %}</p>\n"
        "{% end %}"
    ),
}

JINJA_FILES = {
    "base.j2": (
        "<html><head><title>{% block title %}base{% endblock %}</title></head>\n"
        '<body>{% block body %}{% endblock %}{% include "footer.j2" %}</body></html>\n'
    ),
    "footer.j2": "<footer>{{ request.path }}</footer>",
    "page.j2": (
        '{% extends "base.j2" %}\n'
        "{% block title %}{{ title }}{% endblock %}\n"
        "{% block body %}"
        "<ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>\n"
        "<p id=handler>{{ handler.__class__.__name__ }}</p>\n"
        "<p id=user>{{ current_user }}</p>\n"
        "<p id=locale>{{ locale.code }}</p>\n"
        '<p id=hello>{{ _("Hello") }}</p>\n'
        '<p id=static>{{ static_url("app.css") }}</p>\n'
        "<form method=post>{{ xsrf_form_html() | safe }}</form>\n"
        "<a href=\"{{ reverse_url('item', 42) }}\">item</a>\n"
        '<p id=module>{{ _tt_modules.Badge("b1") | safe }}</p>\n'
        "<p id=modules>{{ modules.Badge('b2') | safe }}</p>\n"
        "{% endblock %}"
    ),
}


class Badge(web.UIModule):
    def render(self, label: str) -> str:
        return f"<b>{label}</b>"


class Page(web.RequestHandler):
    def initialize(self, name: str) -> None:
        self.name = name

    def get_current_user(self) -> str:
        return "alice&bob"

    def get_user_locale(self) -> reactor.locale.Locale | None:
        code = self.get_query_argument("lang", None)
        return reactor.locale.get(code) if code else None

    def get(self) -> None:
        self.render(self.name, title="Hi <you>", items=["one", "<two>"])

    def post(self) -> None:
        self.write("posted")


class Item(web.RequestHandler):
    def get(self, ident: str) -> None:
        self.write(f"item {ident}")


def page_app(tdir: Path, **settings: Any) -> web.Application:
    static = tdir.parent / "static"
    static.mkdir(exist_ok=True)
    (static / "app.css").write_text("body {}\n")
    return web.Application(
        [
            (r"/tornado", Page, {"name": "page.html"}),
            (r"/jinja", Page, {"name": "page.j2"}),
            web.url(r"/item/(\d+)", Item, name="item"),
        ],
        template_path=str(tdir),
        static_path=str(static),
        xsrf_cookies=True,
        ui_modules={"Badge": Badge},
        **settings,
    )


def between(body: str, start: str, end: str) -> str:
    match = re.search(re.escape(start) + "(.*?)" + re.escape(end), body, re.S)
    assert match, (start, body)
    return match.group(1)


@pytest.mark.parametrize("path", ["/tornado", "/jinja"])
async def test_render_finds_the_page_and_fills_the_namespace(
    serve: Any, tdir: Path, french: None, path: str
) -> None:
    write(tdir, TORNADO_FILES | JINJA_FILES)
    s = serve(page_app(tdir))
    response = await s.fetch(path + "?lang=fr_FR")
    assert response.code == 200
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    body = response.body.decode()
    assert between(body, "<title>", "</title>") == "Hi &lt;you&gt;"
    assert between(body, "<ul>", "</ul>") == "<li>one</li><li>&lt;two&gt;</li>"
    assert between(body, "<p id=handler>", "</p>") == "Page"
    assert between(body, "<p id=user>", "</p>") == "alice&amp;bob"
    assert between(body, "<p id=locale>", "</p>") == "fr_FR"
    assert between(body, "<p id=hello>", "</p>") == "Bonjour"
    static_url = between(body, "<p id=static>", "</p>")
    assert re.fullmatch(r"/static/app\.css\?v=[0-9a-f]{128}", static_url)
    assert (await s.fetch(static_url)).body == b"body {}\n"
    assert '<a href="/item/42">' in body
    assert (await s.fetch("/item/42")).body == b"item 42"
    assert between(body, "<p id=module>", "</p>") == "<b>b1</b>"
    assert between(body, "<p id=modules>", "</p>") == "<b>b2</b>"
    # The include sees the same request, after the blocks of the parent.
    assert body.endswith(f"<footer>{path}</footer></body></html>\n")
    # xsrf_form_html's token, with the cookie it set, lets the form's POST through.
    token = re.search(r'name="_xsrf" value="([^"]+)"', body)
    assert token
    cookie = response.headers["Set-Cookie"].split(";")[0]
    posted = await s.fetch(
        path, method="POST", body=f"_xsrf={token.group(1)}", headers={"Cookie": cookie}
    )
    assert (posted.code, posted.body) == (200, b"posted")
    refused = await s.fetch(path, method="POST", body="_xsrf=forged", headers={"Cookie": cookie})
    assert refused.code == 403


async def test_without_a_translation_the_default_locale_answers(
    serve: Any, tdir: Path, french: None
) -> None:
    write(tdir, TORNADO_FILES | JINJA_FILES)
    s = serve(page_app(tdir))
    for path in ("/tornado", "/jinja"):
        body = (await s.fetch(path, headers={"Accept-Language": "de"})).body.decode()
        assert between(body, "<p id=locale>", "</p>") == "en_US"
        assert between(body, "<p id=hello>", "</p>") == "Hello"


# -- autoescaping ----------------------------------------------------------------------


class Hostile(web.RequestHandler):
    def initialize(self, name: str) -> None:
        self.name = name

    def get(self) -> None:
        self.render(self.name, value=HOSTILE)


def hostile_app(tdir: Path, **settings: Any) -> web.Application:
    write(
        tdir,
        {
            "h.html": "[{{ value }}][{% raw value %}][{% raw xhtml_escape(value) %}]",
            "h.j2": "[{{ value }}][{{ value | safe }}][{% raw %}{{ value }}{% endraw %}]",
        },
    )
    return web.Application(
        [(r"/tornado", Hostile, {"name": "h.html"}), (r"/jinja", Hostile, {"name": "h.j2"})],
        template_path=str(tdir),
        **settings,
    )


async def test_hostile_values_are_escaped_and_raw_is_not(serve: Any, tdir: Path) -> None:
    s = serve(hostile_app(tdir))
    tornado_body = (await s.fetch("/tornado")).body.decode()
    assert tornado_body == f"[{TORNADO_ESCAPED}][{HOSTILE}][{TORNADO_ESCAPED}]"
    jinja_body = (await s.fetch("/jinja")).body.decode()
    # Jinja2's {% raw %} writes the template text itself, unrendered.
    assert jinja_body == f"[{JINJA_ESCAPED}][{HOSTILE}][{{{{ value }}}}]"


async def test_autoescape_none_setting_turns_escaping_off(serve: Any, tdir: Path) -> None:
    s = serve(hostile_app(tdir, autoescape=None))
    tornado_body = (await s.fetch("/tornado")).body.decode()
    assert tornado_body == f"[{HOSTILE}][{HOSTILE}][{TORNADO_ESCAPED}]"
    jinja_body = (await s.fetch("/jinja")).body.decode()
    assert jinja_body == f"[{HOSTILE}][{HOSTILE}][{{{{ value }}}}]"


# -- UI modules and their resources ----------------------------------------------------


class Widget(web.UIModule):
    def render(self, label: str) -> str:
        return f"<span class=w>{label}</span>"

    def embedded_javascript(self) -> str:
        return "var widget = 1;"

    def embedded_css(self) -> str:
        return ".w { color: red }"

    def javascript_files(self) -> list[str]:
        return ["w.js", "https://cdn.example/lib.js"]

    def css_files(self) -> list[str]:
        return ["w.css"]

    def html_head(self) -> str:
        return "<meta name=widget>"

    def html_body(self) -> str:
        return "<div id=widget-tail></div>"


MODULE_FILES = {
    "modules.html": (
        "<html><head><title>m</title></head><body>\n"
        '{% module Widget("a") %}{% module Widget("b") %}\n'
        '{% module Template("item.html", name=hostile) %}'
        '{% module Template("item.html", name="second") %}\n'
        "</body></html>"
    ),
    "item.html": (
        "{{ set_resources(embedded_css='.item {}', javascript_files='item.js',"
        " html_body='<i id=item-tail></i>') }}<li>{{ name }}</li>"
    ),
    "modules.j2": (
        "<html><head><title>m</title></head><body>\n"
        '{{ modules.Widget("a") | safe }}{{ modules.Widget("b") | safe }}\n'
        '{{ modules.Template("item.html", name=hostile) | safe }}'
        '{{ modules.Template("item.html", name="second") | safe }}\n'
        "</body></html>"
    ),
}


class ModulePage(web.RequestHandler):
    def get(self, name: str) -> None:
        self.render(name, hostile=HOSTILE)


@pytest.mark.parametrize("name", ["modules.html", "modules.j2"])
async def test_ui_module_resources_go_in_once_where_tornado_puts_them(
    serve: Any, tdir: Path, name: str
) -> None:
    write(tdir, MODULE_FILES)
    static = tdir.parent / "static"
    static.mkdir()
    for file_name in ("w.js", "w.css", "item.js"):
        (static / file_name).write_text("/* static */\n")
    app = web.Application(
        [(r"/(.+)", ModulePage)],
        template_path=str(tdir),
        static_path=str(static),
        ui_modules={"Widget": Widget},
    )
    s = serve(app)
    response = await s.fetch("/" + name)
    assert response.code == 200
    body = response.body.decode()
    head = between(body, "<head>", "</head>")
    tail = body[body.rindex("<li>") : body.index("</body>")]
    # Before </head>: the linked CSS, the embedded CSS, the html_head parts.
    assert re.fullmatch(
        r"<title>m</title>"
        r'<link href="/static/w\.css\?v=[0-9a-f]+" type="text/css" rel="stylesheet"/>\n'
        r'<style type="text/css">\n\.w \{ color: red \}\n\.item \{\}\n</style>\n'
        r"<meta name=widget>\n",
        head,
    ), head
    # The modules render where they are used; the hostile value is escaped in the item.
    assert "<span class=w>a</span><span class=w>b</span>" in body
    assert f"<li>{TORNADO_ESCAPED}</li><li>second</li>" in body
    # Before </body>: the linked scripts (each once), the embedded script, the html_body parts.
    scripts = re.findall(r'<script src="([^"]+)"', tail)
    assert [re.sub(r"\?v=.*", "", url) for url in scripts] == [
        "/static/w.js",
        "https://cdn.example/lib.js",
        "/static/item.js",
    ]
    assert tail.count("var widget = 1;") == 1
    assert tail.index("lib.js") < tail.index("var widget = 1;") < tail.index("<div id=widget-tail>")
    assert body.count("<div id=widget-tail></div>") == 1
    assert body.count("<i id=item-tail></i>") == 1
    assert body.endswith("<div id=widget-tail></div><i id=item-tail></i>\n</body></html>")


# -- template errors -------------------------------------------------------------------

ERROR_FILES = {
    "syntax.html": "<p>\n{% if x %}\nno end\n",
    "missing.html": "<p>\nfine\n{{ no_such_name }}\n</p>",
    "syntax.j2": "<p>\n\n{% if %}\n{% endif %}",
    "divide.j2": "<p>\n{{ 1 // zero }}\n</p>",
}


class Failing(web.RequestHandler):
    def get(self, name: str) -> None:
        self.render(name, zero=0)


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter()
    records = [r for r in caplog.records if r.name == "reactor.application"]
    assert len(records) == 1, records
    return formatter.format(records[0])


@pytest.mark.parametrize(
    ("name", "where", "error"),
    [
        ("syntax.html", "syntax.html:2", "ParseError"),
        ("missing.html", 'syntax.html", line 3', "NameError"),
        ("syntax.j2", "syntax.j2:3", "ParseError"),
        ("divide.j2", 'divide.j2", line 2', "ZeroDivisionError"),
    ],
)
@pytest.mark.parametrize("serve_traceback", [False, True])
async def test_template_errors_are_500_and_logged_with_file_and_line(
    serve: Any,
    tdir: Path,
    caplog: pytest.LogCaptureFixture,
    name: str,
    where: str,
    error: str,
    serve_traceback: bool,
) -> None:
    write(tdir, ERROR_FILES)
    where = where.replace("syntax.html", name)
    s = serve(
        web.Application(
            [(r"/(.+)", Failing)], template_path=str(tdir), serve_traceback=serve_traceback
        )
    )
    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        response = await s.fetch("/" + name)
    assert response.code == 500
    text = logged_text(caplog)
    assert text.startswith(f"Uncaught exception GET /{name} (127.0.0.1)")
    assert error in text
    assert where in text, text
    body = response.body.decode()
    if serve_traceback:
        assert where in body and error in body
    else:
        assert body == (
            "<html><title>500: Internal Server Error</title>"
            "<body>500: Internal Server Error</body></html>"
        )


# -- the compiled-template cache --------------------------------------------------------


class Versioned(web.RequestHandler):
    def get(self, name: str) -> None:
        self.render(name, n=1)


@pytest.mark.parametrize("name", ["v.html", "v.j2"])
@pytest.mark.parametrize(
    ("settings", "rereads"),
    [
        ({}, False),
        ({"compiled_template_cache": True}, False),
        ({"compiled_template_cache": False}, True),
        ({"debug": True, "autoreload": False}, True),
    ],
)
async def test_changed_template_is_reread_only_without_the_cache(
    serve: Any, tdir: Path, name: str, settings: dict[str, Any], rereads: bool
) -> None:
    write(tdir, {name: "first {{ n }}"})
    s = serve(web.Application([(r"/(.+)", Versioned)], template_path=str(tdir), **settings))
    assert (await s.fetch("/" + name)).body == b"first 1"
    write(tdir, {name: "second {{ n }}"})
    again = await s.fetch("/" + name)
    assert again.body == (b"second 1" if rereads else b"first 1")


async def test_reread_template_with_an_error_answers_500_then_recovers(
    serve: Any, tdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tdir, {"v.html": "ok {{ n }}"})
    s = serve(
        web.Application(
            [(r"/(.+)", Versioned)], template_path=str(tdir), compiled_template_cache=False
        )
    )
    assert (await s.fetch("/v.html")).body == b"ok 1"
    write(tdir, {"v.html": "broken {% for %}"})
    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        assert (await s.fetch("/v.html")).code == 500
    assert "v.html:1" in logged_text(caplog)
    write(tdir, {"v.html": "fixed {{ n }}"})
    assert (await s.fetch("/v.html")).body == b"fixed 1"


# -- template settings and overrides --------------------------------------------------


class Spaced(web.RequestHandler):
    def get(self) -> None:
        self.render("spaced.html", items=["a", "b"])


@pytest.mark.parametrize(
    ("whitespace", "expected"),
    [
        (None, b"<ul>\n\n<li>a</li>\n\n<li>b</li>\n\n</ul>\n"),
        ("all", b"<ul>\n  \n    <li>a</li>\n  \n    <li>b</li>\n  \n</ul>\n"),
        ("oneline", b"<ul>  <li>a</li>  <li>b</li>  </ul> "),
    ],
)
async def test_template_whitespace_setting(
    serve: Any, tdir: Path, whitespace: str | None, expected: bytes
) -> None:
    write(
        tdir,
        {"spaced.html": "<ul>\n  {% for i in items %}\n    <li>{{ i }}</li>\n  {% end %}\n</ul>\n"},
    )
    settings: dict[str, Any] = {} if whitespace is None else {"template_whitespace": whitespace}
    s = serve(web.Application([(r"/", Spaced)], template_path=str(tdir), **settings))
    assert (await s.fetch("/")).body == expected


async def test_get_template_path_and_create_template_loader_overridden(
    serve: Any, tdir: Path
) -> None:
    other = tdir.parent / "other"
    other.mkdir()
    write(other, {"page.html": "other {{ handler.request.path }}"})
    write(tdir, {"page.html": "main"})

    class OwnPath(web.RequestHandler):
        def get_template_path(self) -> str:
            return str(other)

        def get(self) -> None:
            self.render("page.html")

    class OwnLoader(web.RequestHandler):
        def get_template_path(self) -> str:
            return str(tdir.parent / "dict")

        def create_template_loader(self, template_path: str) -> template.BaseLoader:
            return template.DictLoader(
                {"page.html": "dict {{ greeting }} {{ value }}"},
                namespace={"greeting": "hi"},
                autoescape=None,
            )

        def get(self) -> None:
            self.render("page.html", value="<b>")

    class Main(web.RequestHandler):
        def get(self) -> None:
            self.render("page.html")

    s = serve(
        web.Application(
            [(r"/own-path", OwnPath), (r"/own-loader", OwnLoader), (r"/", Main)],
            template_path=str(tdir),
        )
    )
    assert (await s.fetch("/own-path")).body == b"other /own-path"
    assert (await s.fetch("/own-loader")).body == b"dict hi <b>"
    assert (await s.fetch("/")).body == b"main"


async def test_missing_template_is_a_logged_500(
    serve: Any, tdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = serve(web.Application([(r"/(.+)", Versioned)], template_path=str(tdir)))
    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        for name in ("absent.html", "absent.j2"):
            response = await s.fetch("/" + name)
            assert response.code == 500
            assert b"absent" not in response.body
    texts = [
        logging.Formatter().format(r) for r in caplog.records if r.name == "reactor.application"
    ]
    assert len(texts) == 2
    assert "absent.html" in texts[0] and "absent.j2" in texts[1]


async def test_a_template_name_cannot_climb_out_of_template_path(
    serve: Any, tdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tdir.parent / "secret.j2").write_text("secret")

    class Climbing(web.RequestHandler):
        def get(self) -> None:
            self.render(self.get_query_argument("t"))

    s = serve(web.Application([(r"/", Climbing)], template_path=str(tdir)))
    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        response = await s.fetch("/?t=../secret.j2")
    assert response.code == 500
    assert b"secret" not in response.body


PARENT_FILES = {
    "base.html": "[{% block b %}{% end %}|{% include 'inc.html' %}] base v1",
    "inc.html": "inc v1",
    "child.html": "{% extends 'base.html' %}{% block b %}child{% end %}",
    "base.j2": "[{% block b %}{% endblock %}|{% include 'inc.j2' %}] base v1",
    "inc.j2": "inc v1",
    "child.j2": "{% extends 'base.j2' %}{% block b %}child{% endblock %}",
}


@pytest.mark.parametrize("syntax", ["html", "j2"])
@pytest.mark.parametrize("cache", [True, False])
async def test_changed_parent_and_include_follow_the_cache_setting(
    serve: Any, tdir: Path, syntax: str, cache: bool
) -> None:
    write(tdir, PARENT_FILES)
    s = serve(
        web.Application(
            [(r"/(.+)", Versioned)], template_path=str(tdir), compiled_template_cache=cache
        )
    )
    path = f"/child.{syntax}"
    assert (await s.fetch(path)).body == b"[child|inc v1] base v1"
    write(tdir, {f"base.{syntax}": PARENT_FILES[f"base.{syntax}"].replace("v1", "v2")})
    write(tdir, {f"inc.{syntax}": "inc v2"})
    again = (await s.fetch(path)).body
    assert again == (b"[child|inc v1] base v1" if cache else b"[child|inc v2] base v2")


async def test_error_in_an_included_file_names_that_file(
    serve: Any, tdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        tdir,
        {
            "outer.html": "<p>\n{% include 'part.html' %}\n</p>",
            "part.html": "ok\nok\n{{ undefined_in_part }}",
            "outer.j2": "<p>\n{% include 'part.j2' %}\n</p>",
            "part.j2": "ok\n{{ 1 // zero }}",
        },
    )
    s = serve(web.Application([(r"/(.+)", Failing)], template_path=str(tdir)))
    for name, where in [("outer.html", 'part.html", line 3'), ("outer.j2", 'part.j2", line 2')]:
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="reactor.application"):
            assert (await s.fetch("/" + name)).code == 500
        assert where in logged_text(caplog)


class ErrorPages(web.RequestHandler):
    def get(self, what: str) -> None:
        raise web.HTTPError(404 if what == "missing" else 500)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.render(self.settings["error_template"], code=status_code, reason=self._reason)


@pytest.mark.parametrize("name", ["error.html", "error.j2"])
async def test_write_error_may_render_a_template(serve: Any, tdir: Path, name: str) -> None:
    write(tdir, {name: "<h1>{{ code }} {{ reason }}</h1>"})
    s = serve(
        web.Application([(r"/(\w+)", ErrorPages)], template_path=str(tdir), error_template=name)
    )
    response = await s.fetch("/missing")
    assert (response.code, response.body) == (404, b"<h1>404 Not Found</h1>")


async def test_a_broken_error_template_still_answers(
    serve: Any, tdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tdir, {"error.html": "{{ no_such_name }}"})
    s = serve(
        web.Application(
            [(r"/(\w+)", ErrorPages)], template_path=str(tdir), error_template="error.html"
        )
    )
    with caplog.at_level(logging.ERROR, logger="reactor.application"):
        response = await s.fetch("/boom")
    assert response.code == 500
    assert b"no_such_name" not in response.body
    assert any("error.html" in logging.Formatter().format(r) for r in caplog.records)
    assert (await s.fetch("/missing")).code == 404
