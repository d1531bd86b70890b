"""A Tornado 6.6 web program ports by changing its imports.

The program below is written for Tornado (``import tornado.web`` ...). The
tests run it as a real process with ``tornado`` replaced by ``reactor`` and
nothing else changed, on each backend, and talk to it with
``http.client`` and ``curl``; one test runs the original on Tornado too and
checks that both answer every request alike.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reactor.testing.kqueue_emulation import EmulatedKqueuePoller

ROOT = Path(__file__).resolve().parents[2]

TORNADO_PROGRAM = """
import sys

import tornado.escape
import tornado.httpserver
import tornado.ioloop
import tornado.web
from tornado import gen


class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")


class ItemHandler(tornado.web.RequestHandler):
    def initialize(self, store):
        self.store = store

    def get(self, item_id):
        if item_id not in self.store:
            raise tornado.web.HTTPError(404, "no item %s", item_id)
        self.write({"id": item_id, "value": self.store[item_id],
                    "url": self.reverse_url("item", item_id)})

    def put(self, item_id):
        data = tornado.escape.json_decode(self.request.body)
        self.store[item_id] = data["value"]
        self.set_status(201)
        self.write({"stored": item_id})


class SlowHandler(tornado.web.RequestHandler):
    async def get(self):
        await gen.sleep(0.001)
        self.write("slow " + self.get_argument("name", "anon"))


class LegacyHandler(tornado.web.RequestHandler):
    @gen.coroutine
    def get(self):
        yield gen.moment
        self.write({"legacy": True})


class FormHandler(tornado.web.RequestHandler):
    def post(self):
        self.write("name=%s tags=%s" % (self.get_argument("name"),
                                        ",".join(self.get_arguments("tag"))))


class BrokenHandler(tornado.web.RequestHandler):
    def get(self):
        1 / 0


def make_app():
    return tornado.web.Application([
        (r"/", MainHandler),
        tornado.web.url(r"/items/([a-z0-9]+)", ItemHandler, dict(store={}), name="item"),
        (r"/slow", SlowHandler),
        (r"/legacy", LegacyHandler),
        (r"/form", FormHandler),
        (r"/broken", BrokenHandler),
        (r"/old", tornado.web.RedirectHandler, {"url": "/"}),
    ])


if __name__ == "__main__":
    server = tornado.httpserver.HTTPServer(make_app())
    server.listen(int(sys.argv[1]), "127.0.0.1")
    print("ready", flush=True)
    tornado.ioloop.IOLoop.current().start()
"""

FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# (method, path, body, headers, compare the body with Tornado's)
EXCHANGES: list[tuple[str, str, bytes | None, dict[str, str], bool]] = [
    ("GET", "/", None, {}, True),
    ("PUT", "/items/abc", b'{"value": 5}', {}, True),
    ("GET", "/items/abc", None, {}, True),
    ("GET", "/items/zzz", None, {}, True),
    ("GET", "/items/ABC", None, {}, True),
    ("GET", "/slow?name=x", None, {}, True),
    ("GET", "/legacy", None, {}, True),
    ("POST", "/form", b"name=a&tag=x&tag=y", FORM, True),
    # reactor's 400 page names the missing argument (docs/migration.md).
    ("POST", "/form", b"tag=x", FORM, False),
    ("POST", "/form", b"name=%ff", FORM, True),
    ("GET", "/broken", None, {}, True),
    ("GET", "/old", None, {}, True),
    ("DELETE", "/", None, {}, True),
    ("GET", "/", None, {"If-None-Match": '"e02aa1b106d5c7c6a98def2b13005d5b84fd8dc8"'}, True),
]


def free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


def backend_env(reactor_backend: Any) -> str:
    if reactor_backend is EmulatedKqueuePoller:
        return "reactor.testing.kqueue_emulation:EmulatedKqueuePoller"
    return str(reactor_backend)


class Program:
    """The program running in its own process, on ``port``."""

    def __init__(self, source: str, directory: Path, backend: str | None) -> None:
        path = directory / "app.py"
        path.write_text(source)
        self.port = free_port()
        # This checkout first; what PYTHONPATH held stays (a third-party backend on test).
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        )
        env.pop("REACTOR_BACKEND", None)
        if backend is not None:
            env["REACTOR_BACKEND"] = backend
        self.process = subprocess.Popen(
            [sys.executable, str(path), str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=directory,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
            raise AssertionError(f"the program did not start: {line!r} {err}")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return (
                response.status,
                response.reason,
                {name.lower(): value for name, value in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    def stop(self) -> str:
        self.process.terminate()
        _, err = self.process.communicate(timeout=10)
        return err


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    programs: list[Program] = []

    def start(source: str, backend: str | None, name: str) -> Program:
        directory = tmp_path / name
        directory.mkdir()
        program = Program(source, directory, backend)
        programs.append(program)
        return program

    yield start
    for program in programs:
        if program.process.poll() is None:
            program.stop()


def reactor_source() -> str:
    """The program with ``tornado`` replaced by ``reactor`` (its imports and
    the module names they bind), and nothing else."""
    return TORNADO_PROGRAM.replace("tornado", "reactor")


def test_ported_program_on_each_backend(reactor_backend: Any, run: Any) -> None:
    program = run(reactor_source(), backend_env(reactor_backend), "reactor")
    status, _, headers, body = program.request("GET", "/")
    assert (status, body) == (200, b"Hello, world")
    assert program.request("PUT", "/items/k1", b'{"value": [1, 2]}')[0] == 201
    status, _, headers, body = program.request("GET", "/items/k1")
    assert status == 200
    assert headers["content-type"] == "application/json; charset=UTF-8"
    assert json.loads(body) == {"id": "k1", "value": [1, 2], "url": "/items/k1"}
    assert program.request("GET", "/slow?name=q")[3] == b"slow q"
    assert json.loads(program.request("GET", "/legacy")[3]) == {"legacy": True}
    status, _, _, body = program.request("POST", "/form", b"name=n&tag=a&tag=b", FORM)
    assert (status, body) == (200, b"name=n tags=a,b")
    assert program.request("POST", "/form", b"tag=a", FORM)[0] == 400
    assert program.request("GET", "/broken")[0] == 500
    err = program.stop()
    # The uncaught exception went to the log with its traceback; the 404
    # of a missing item with its log message.
    assert "Uncaught exception GET /broken" in err
    assert "ZeroDivisionError" in err
    assert "Missing argument name" in err


@pytest.mark.usefixtures("need_curl")
def test_curl_talks_to_the_ported_program(run: Any) -> None:
    program = run(reactor_source(), None, "curl")
    base = f"http://127.0.0.1:{program.port}"
    result = subprocess.run(
        ["curl", "-s", "-i", "-X", "PUT", "-d", '{"value": "v"}', base + "/items/c"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.startswith(b"HTTP/1.1 201 Created\r\n")
    result = subprocess.run(
        ["curl", "-s", "-L", "-w", "\\n%{http_code} %{num_redirects}", base + "/old"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert result.stdout == b"Hello, world\n200 1"
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data-urlencode",
            "tag=x",
            base + "/form",
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert result.stdout == b"400"


def test_answers_match_tornado(run: Any) -> None:
    """The same program on Tornado 6.6 and, ported, on reactor: the same
    status, reason, body and the headers an application sets."""
    pytest.importorskip("tornado")
    original = run(TORNADO_PROGRAM, None, "tornado")
    port = run(reactor_source(), None, "reactor")
    compared = ("content-type", "content-length", "location", "etag")
    for method, path, body, headers, same_body in EXCHANGES:
        expected = original.request(method, path, body, headers)
        got = port.request(method, path, body, headers)
        where = f"{method} {path} {body!r}"
        assert got[:2] == expected[:2], where
        if same_body:
            assert got[3] == expected[3], where
            for name in compared:
                assert got[2].get(name) == expected[2].get(name), (where, name)
