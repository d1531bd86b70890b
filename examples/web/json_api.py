"""A JSON endpoint: ``write`` of a dict answers it as JSON; a body that is not
JSON, or lacks a field, is a 400 that says so."""

from __future__ import annotations

import json

from serve import serve

from reactor import web


class SumHandler(web.RequestHandler):
    def get(self) -> None:
        self.write({"usage": 'POST {"numbers": [1, 2, 3]}'})

    def post(self) -> None:
        try:
            numbers = json.loads(self.request.body)["numbers"]
        except (ValueError, KeyError, TypeError):
            raise web.HTTPError(400, "the body must be JSON with a list 'numbers'") from None
        if not isinstance(numbers, list) or not all(isinstance(n, (int, float)) for n in numbers):
            raise web.HTTPError(400, "'numbers' must be a list of numbers")
        self.write({"count": len(numbers), "sum": sum(numbers)})


def make_app() -> web.Application:
    return web.Application([(r"/sum", SumHandler)])


if __name__ == "__main__":
    serve(make_app())
