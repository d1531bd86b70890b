"""Tornado 6.6's ``web.Application``, and reactor's: one program, two packages.

The application is written once, against Tornado's API, and imported from
``tornado`` or from ``reactor``: what the issue promises (a Tornado
application runs on reactor by changing its imports) is what is measured.
Tornado runs under ``asyncio.run``; reactor on the backend the benchmark
names (``IOLoop.configure``).

Besides the five benchmark paths, :func:`layer_target` builds the four
servers of the per-layer cost measurement, each one layer more than the one
before: a bare ``HTTPServer`` callback; the same callback as the target of
the last of an ``Application``'s 50 routes (an Application routes to a
plain callable as to any rule target); the same Application with a
``RequestHandler`` in that route; and that handler rendering the 50-row
template. The route that matches is the regex ``/targets?``, after 49
regex routes that do not: every layer from the second on scans the 50
routes. (reactor finds a route whose pattern is plain text, such as
``/target``, by a dict lookup, for a RequestHandler target: the scan is
what a regex route costs, the worst case.)
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from . import ROWS, TEMPLATES, TITLE

LAYERS = ("bare", "routing", "handler", "template")
ROUTES = 50
LAYER_PATH = "/target"
LAYER_ROUTE = r"/targets?"


def _web(pkg: str) -> Any:
    return importlib.import_module(f"{pkg}.web")


def _handlers(pkg: str) -> tuple[type, type, type]:
    web = _web(pkg)

    class HelloHandler(web.RequestHandler):  # type: ignore[misc, name-defined]
        def get(self) -> None:
            self.write("Hello world!")

    class JSONHandler(web.RequestHandler):  # type: ignore[misc, name-defined]
        def get(self) -> None:
            self.write({"message": "Hello, World!"})

    class PageHandler(web.RequestHandler):  # type: ignore[misc, name-defined]
        def get(self) -> None:
            self.render("page.html", title=TITLE, rows=ROWS)

    return HelloHandler, JSONHandler, PageHandler


def make_app(pkg: str, static_path: str) -> Any:
    """The benchmark's application: hello, JSON, the page, static files."""
    hello, json_handler, page = _handlers(pkg)
    return _web(pkg).Application(
        [("/", hello), ("/json", json_handler), ("/page", page)],
        template_path=str(TEMPLATES),
        static_path=static_path,
    )


def _filler(i: int) -> str:
    # Routes shaped like a real API's, none of which matches LAYER_PATH.
    return rf"/api/v1/item{i}/([0-9]+)"


def layer_target(pkg: str, layer: str) -> Any:
    """What the HTTPServer of one layer measurement serves (see the module doc)."""
    httputil = importlib.import_module(f"{pkg}.httputil")

    def hello(request: Any) -> None:
        request.connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
            httputil.HTTPHeaders({"Content-Type": "text/plain", "Content-Length": "12"}),
            b"Hello world!",
        )
        request.connection.finish()

    if layer == "bare":
        return hello
    hello_handler, _, page = _handlers(pkg)
    target = {"routing": hello, "handler": hello_handler, "template": page}[layer]
    routes: list[tuple[str, Any]] = [(_filler(i), hello_handler) for i in range(ROUTES - 1)]
    routes.append((LAYER_ROUTE, target))
    return _web(pkg).Application(routes, template_path=str(TEMPLATES))


def serve(pkg: str, backend: str | None, port: int, static_path: str, layer: str | None) -> None:
    """Serve the benchmark application (or one layer's target) until killed."""
    httpserver = importlib.import_module(f"{pkg}.httpserver")
    target = make_app(pkg, static_path) if layer is None else layer_target(pkg, layer)

    def listen() -> None:
        httpserver.HTTPServer(target).listen(port, "127.0.0.1")

    if pkg == "tornado":

        async def main() -> None:
            listen()
            await asyncio.Event().wait()

        asyncio.run(main())
        return
    from reactor.ioloop import IOLoop

    IOLoop.configure(backend)
    loop = IOLoop.current()
    if loop.backend_name != backend:
        raise RuntimeError(f"asked for backend {backend!r}, got {loop.backend_name!r}")
    listen()
    loop.start()
