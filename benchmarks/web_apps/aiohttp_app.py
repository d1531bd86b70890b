"""aiohttp's web framework, one process on the default asyncio loop.

No access log (``access_log=None``), as for every server in the benchmark.
aiohttp has no template engine of its own; the page is rendered with a
Jinja2 ``Environment`` made once (autoescaping on, templates cached), as the
``aiohttp_jinja2`` helper would do.
"""

from __future__ import annotations

import jinja2
from aiohttp import web

from . import JSON_OBJECT, ROWS, TEMPLATES, TITLE


def make_app(static_path: str) -> web.Application:
    templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="Hello world!")

    async def json_endpoint(request: web.Request) -> web.Response:
        return web.json_response(JSON_OBJECT)

    async def page(request: web.Request) -> web.Response:
        html = templates.get_template("page.jinja.html").render(title=TITLE, rows=ROWS)
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/json", json_endpoint)
    app.router.add_get("/page", page)
    app.router.add_static("/static", static_path)
    return app


def serve(port: int, static_path: str) -> None:
    web.run_app(make_app(static_path), host="127.0.0.1", port=port, access_log=None, print=None)
