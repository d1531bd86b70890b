"""Flask, served two ways: by reactor's ``WSGIContainer``, and by gunicorn.

The Flask application is the same for both. Under reactor it is wrapped as
Tornado's documentation shows (``HTTPServer(WSGIContainer(app))``) on the
epoll backend; under gunicorn it is one worker, ``sync`` or ``gthread``
(:data:`GTHREAD_THREADS` threads), its access log off (gunicorn's default).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template

from . import JSON_OBJECT, ROWS, TEMPLATES, TITLE

GTHREAD_THREADS = 4


def make_app(static_path: str) -> Flask:
    app = Flask(
        __name__,
        static_folder=static_path,
        static_url_path="/static",
        template_folder=str(TEMPLATES),
    )

    @app.get("/")
    def hello() -> tuple[str, int, dict[str, str]]:
        return "Hello world!", 200, {"Content-Type": "text/plain"}

    @app.get("/json")
    def json_endpoint() -> dict[str, Any]:
        return JSON_OBJECT

    @app.get("/page")
    def page() -> str:
        return render_template("page.jinja.html", title=TITLE, rows=ROWS)

    return app


def serve_wsgicontainer(backend: str, port: int, static_path: str) -> None:
    from reactor.httpserver import HTTPServer
    from reactor.ioloop import IOLoop
    from reactor.wsgi import WSGIContainer

    IOLoop.configure(backend)
    loop = IOLoop.current()
    HTTPServer(WSGIContainer(make_app(static_path))).listen(port, "127.0.0.1")
    loop.start()


def serve_gunicorn(worker_class: str, port: int, static_path: str) -> None:
    from gunicorn.app.base import BaseApplication

    options: dict[str, Any] = {
        "bind": f"127.0.0.1:{port}",
        "workers": 1,
        "worker_class": worker_class,
        "loglevel": "warning",
    }
    if worker_class == "gthread":
        options["threads"] = GTHREAD_THREADS

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return make_app(static_path)

    Server().run()
