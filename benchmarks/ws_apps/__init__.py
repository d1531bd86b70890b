"""The echo servers of ``bench_websocket.py``: one small file per library.

Every server answers a WebSocket upgrade on ``/`` and sends every message it
receives straight back, text as text and binary as binary, written the way a
user of that library writes an echo server. ``deflate`` says whether the
server enables permessage-deflate (RFC 7692) with its library's own default
settings; the benchmark's client offers it in the same cells, so both sides
agree on whether a cell is compressed.

- :mod:`.tornado_app`: one ``WebSocketHandler`` program, imported from
  ``tornado`` (6.6, under ``asyncio.run``) or from ``reactor`` (on the
  backend named).
- :mod:`.websockets_app`: the ``websockets`` package's
  ``websockets.asyncio.server.serve``, on asyncio's default loop or uvloop.
- :mod:`.aiohttp_app`: aiohttp's ``web.WebSocketResponse`` in a
  ``web.Application`` under ``web.run_app``.

Each ``serve`` runs until the process is stopped. ``stop_hook``, when given,
is called with a thread-safe function that stops the server's loop (the
benchmark's ``--profile`` uses it to end the profile cleanly).
"""

from __future__ import annotations

PATH = "/"
"""The path every echo server upgrades."""
