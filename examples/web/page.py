"""A page rendered from a template, its stylesheet a static file under a
versioned URL (``static_url`` adds ``?v=`` and a hash of the file's content,
and such a URL is cached for long)."""

from __future__ import annotations

import os

from serve import serve

from reactor import web

HERE = os.path.dirname(os.path.abspath(__file__))


class PageHandler(web.RequestHandler):
    def get(self) -> None:
        visitor = self.get_argument("name", "stranger")
        self.render("page.html", visitor=visitor, items=["one", "two", "<three>"])


def make_app() -> web.Application:
    return web.Application(
        [(r"/", PageHandler)],
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
    )


if __name__ == "__main__":
    serve(make_app())
