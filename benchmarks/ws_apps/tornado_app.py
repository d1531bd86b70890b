"""A Tornado 6.6 ``WebSocketHandler`` echo server, and reactor's: one program, two packages.

The handler is written once, against Tornado's API, and imported from
``tornado`` or from ``reactor`` (changing the imports is all a Tornado
application needs, which is what the benchmark measures). Tornado runs under
``asyncio.run``; reactor on the backend named (``IOLoop.configure``).

The handler does what Tornado's documentation shows: ``on_message`` calls
``write_message`` (``binary=`` for bytes) and does not wait for the write;
``open`` turns Nagle's algorithm off (``set_nodelay(True)``);
``get_compression_options`` returns ``{}`` (the library's defaults) when the
cell is compressed, else None (no permessage-deflate).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

from . import PATH


def make_app(pkg: str, deflate: bool) -> Any:
    web = importlib.import_module(f"{pkg}.web")
    websocket = importlib.import_module(f"{pkg}.websocket")

    class EchoHandler(websocket.WebSocketHandler):  # type: ignore[misc, name-defined]
        def open(self) -> None:
            self.set_nodelay(True)

        def on_message(self, message: str | bytes) -> None:
            self.write_message(message, binary=isinstance(message, bytes))

        def get_compression_options(self) -> dict[str, Any] | None:
            return {} if deflate else None

    return web.Application([(PATH, EchoHandler)])


def serve(
    pkg: str,
    backend: str | None,
    port: int,
    deflate: bool,
    stop_hook: Callable[[Callable[[], None]], None] | None = None,
) -> None:
    """Serve the echo application until killed (or stopped through ``stop_hook``)."""
    app = make_app(pkg, deflate)
    if pkg == "tornado":

        async def main() -> None:
            app.listen(port, "127.0.0.1")
            done = asyncio.Event()
            if stop_hook is not None:
                loop = asyncio.get_running_loop()
                stop_hook(lambda: loop.call_soon_threadsafe(done.set))
            await done.wait()

        asyncio.run(main())
        return
    from reactor.ioloop import IOLoop

    IOLoop.configure(backend)
    loop = IOLoop.current()
    if loop.backend_name != backend:
        raise RuntimeError(f"asked for backend {backend!r}, got {loop.backend_name!r}")
    app.listen(port, "127.0.0.1")
    if stop_hook is not None:
        stop_hook(lambda: loop.add_callback(loop.stop))
    loop.start()
