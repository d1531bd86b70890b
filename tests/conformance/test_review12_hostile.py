"""Review of issue 12 as a hostile client and operator: the loop-facing
defects found, each pinned by a test through real sockets, on every backend
(the Redis ones: tests/test_review12_hostile.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reactor import metrics
from reactor.httpclient import AsyncHTTPClient
from reactor.ioloop import IOLoop
from reactor.web import Application
from tests.conformance.test_metrics import Hello, processes, scrape
from tests.test_demo import Demo, live
from tests.test_demo import site as site  # the fixture
from tests.test_demo import web_log as web_log  # the fixture (no ERROR logged)

pytestmark = pytest.mark.usefixtures("reactor_log")

DEEP = "[" * 100_000
"""JSON nested deeper than json.loads can go: it raises RecursionError (not a
ValueError), however small the limit on the input's size."""


@pytest.fixture
def app() -> Application:
    application = Application([(r"/hello", Hello)], log_function=lambda h: None)
    metrics.install(application)
    return application


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Path]:
    metrics.enable_multiprocess(str(tmp_path))
    yield tmp_path
    metrics.disable_multiprocess()


async def test_a_metrics_file_nested_too_deep_is_ignored(
    io_loop: IOLoop, http_client: AsyncHTTPClient, base_url: str, exchange: Path
) -> None:
    """A file in the metrics directory that is JSON nested too deep is one
    that cannot be parsed: ignored, as the module promises ("a scrape never
    fails because of one"). It made every scrape of every process a 500."""
    (exchange / "1.json").write_text(DEEP[: metrics._MAX_FILE_SIZE])
    samples = await scrape(http_client, base_url + "/metrics")
    assert set(processes(samples)) == {"0"}


async def test_a_chat_message_nested_too_deep_is_refused(site: Demo) -> None:
    """The demo's live chat: a WebSocket message of JSON nested too deep is
    refused as not JSON text, like any other that is not; it raised out of
    on_message instead (logged as an error, the socket closed)."""
    bob, _ = await live(site, await site.user("bob"))
    await bob.connection.write_message(DEEP[:2000])
    assert await bob.next() == {"type": "error", "error": 'send {"text": "..."} as text'}
    await bob.say("still here")
    message = await bob.next()
    assert message["type"] == "message" and message["text"] == "still here"
    await bob.leave()
