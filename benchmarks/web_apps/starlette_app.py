"""Starlette on uvicorn: one worker, uvloop and httptools, no access log.

The same as ``uvicorn --loop uvloop --http httptools --no-access-log
--log-level warning --workers 1``, in this process (so that it is pinned).
The page comes from Starlette's ``Jinja2Templates``; static files from its
``StaticFiles``.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from . import JSON_OBJECT, ROWS, TEMPLATES, TITLE


def make_app(static_path: str) -> Starlette:
    templates = Jinja2Templates(directory=str(TEMPLATES))

    async def hello(request: Request) -> Response:
        return PlainTextResponse("Hello world!")

    async def json_endpoint(request: Request) -> Response:
        return JSONResponse(JSON_OBJECT)

    async def page(request: Request) -> Any:
        return templates.TemplateResponse(
            request, "page.jinja.html", {"title": TITLE, "rows": ROWS}
        )

    return Starlette(
        routes=[
            Route("/", hello),
            Route("/json", json_endpoint),
            Route("/page", page),
            Mount("/static", StaticFiles(directory=static_path)),
        ]
    )


def serve(port: int, static_path: str) -> None:
    uvicorn.run(
        make_app(static_path),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        workers=1,
    )
