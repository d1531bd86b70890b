"""A file upload streamed to disk: ``PUT /NAME`` with the file as the body.

With ``stream_request_body`` the body reaches ``data_received`` chunk by
chunk as it arrives, and is never held whole in memory; ``prepare`` refuses
a body that announces more than ``MAX_BYTES`` before reading any of it.
The answer is the size written. Try ``curl -T somefile http://127.0.0.1:8888/``.
"""

from __future__ import annotations

import os
import tempfile

from serve import serve

from reactor import web

MAX_BYTES = 64 * 1024 * 1024
FOLDER = tempfile.mkdtemp(prefix="upload-example-")


@web.stream_request_body
class UploadHandler(web.RequestHandler):
    def prepare(self) -> None:
        length = self.request.headers.get("Content-Length", "")
        if not length.isdigit():
            raise web.HTTPError(411)
        if int(length) > MAX_BYTES:
            raise web.HTTPError(413, "at most %d bytes", MAX_BYTES)
        self.request.connection.set_max_body_size(MAX_BYTES)
        self.size = 0
        self.path = os.path.join(FOLDER, "upload")
        self.file = open(self.path, "wb")  # noqa: SIM115 (open across data_received calls)

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.file.write(chunk)

    def put(self, name: str) -> None:
        self.file.close()
        safe = os.path.basename(name) or "upload"
        os.replace(self.path, os.path.join(FOLDER, safe))
        self.write({"name": safe, "size": self.size})

    def on_connection_close(self) -> None:
        self.file.close()
        os.unlink(self.path)


def make_app() -> web.Application:
    return web.Application([(r"/(.*)", UploadHandler)])


if __name__ == "__main__":
    serve(make_app())
