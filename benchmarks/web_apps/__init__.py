"""The peer applications of ``bench_web.py``: one small file per framework.

Every application serves the same five things, written the way a user of
that framework would write them:

``GET /``
    ``Hello world!`` (12 bytes).
``GET /json``
    a dict written as JSON: ``{"message": "Hello, World!"}``.
``GET /page``
    a page rendered from a template with a 50-row loop (:data:`ROWS`, each
    row's name escaped), from the template files in ``templates/``: the
    Tornado-syntax ``page.html`` for Tornado and reactor (the same file: a
    Tornado template ports unchanged), the Jinja2 ``page.jinja.html`` for
    the others.
``GET /static/big.bin``
    a 1-MiB file from a static directory, with the framework's own static
    file handler.
``GET /no/such/page``
    the framework's own 404.

What they share is here: the constants the benchmark checks the answers
against, and the static file every cell writes afresh.
"""

from __future__ import annotations

import random
from pathlib import Path

HELLO = b"Hello world!"
JSON_OBJECT = {"message": "Hello, World!"}
TITLE = "Fifty rows"
ROWS = [{"id": i, "name": f"row <{i}> & co", "score": i * 7 % 100} for i in range(50)]
"""The page's rows; ``<`` and ``&`` in every name, so escaping is exercised."""
ESCAPED_NAME = "row &lt;49&gt; &amp; co"
"""How the last row's name must read in the page."""

STATIC_NAME = "big.bin"
STATIC_SIZE = 1024 * 1024
TEMPLATES = Path(__file__).resolve().parent / "templates"

PATHS = {
    "hello": "/",
    "json": "/json",
    "template": "/page",
    "static": f"/static/{STATIC_NAME}",
    "notfound": "/no/such/page",
}


def static_content() -> bytes:
    """The 1-MiB static file's bytes: pseudo-random, the same every time."""
    return random.Random(20261201).randbytes(STATIC_SIZE)


def write_static(directory: str | Path) -> Path:
    """Write the static file into ``directory``; returns its path."""
    path = Path(directory) / STATIC_NAME
    path.write_bytes(static_content())
    return path
