"""The demo in a real browser: Debian's chromium, headless, driven by Playwright.

``python -m reactor demo`` runs as a user starts it (a subprocess, a free
port); two browser pages sign in as two users, post the XSRF-protected
form, upload a file and see its size, and exchange chat messages through
the long poll. The browser is the system's (``/usr/bin/chromium``), never
one Playwright downloads; it is offline, and the demo needs nothing from
outside. Without chromium or the playwright package the test is skipped and
says which is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("REACTOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 5000
"""Milliseconds any browser step may take before the test fails."""


@pytest.fixture
def demo_url() -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "reactor", "demo", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/) on the (\w+) backend", line)
        assert match, line
        yield match.group(1)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    assert server.returncode == 0, err
    assert "Traceback" not in err, err


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=WAIT_MS * 2
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser: Any, url: str, name: str) -> Any:
    from playwright.sync_api import expect

    page = browser.new_context().new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    expect(page.locator("#hello")).to_have_text(
        re.compile(r"Hello from reactor on the \w+ backend!")
    )
    page.click("#login")
    page.fill("#name", name)
    page.click("#login-form button")
    expect(page.locator("#user")).to_have_text(name)
    return page


def test_demo_in_a_browser(browser: Any, demo_url: str) -> None:
    from playwright.sync_api import expect

    alice = sign_in(browser, demo_url, "alice")
    # the stylesheet is a static file under a versioned URL, and it applied
    assert re.search(r"/static/demo\.css\?v=\w+", alice.content())
    assert "sans-serif" in alice.evaluate("getComputedStyle(document.body).fontFamily")

    # the XSRF-protected form, with markup in it shown as text
    alice.fill("#notes-form input[name=note]", "<i>first</i>")
    alice.click("#notes-form button")
    expect(alice.locator("#note-count")).to_have_text("1 note")
    expect(alice.locator("#notes li")).to_have_text("<i>first</i>")

    # an upload, streamed to the server, its size shown after
    alice.set_input_files(
        "#upload-file",
        files=[
            {"name": "hello.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 12345}
        ],
    )
    alice.click("#upload-form button")
    expect(alice.locator("#upload-result")).to_have_text("Uploaded hello.bin: 12345 bytes")
    alice.reload()
    expect(alice.locator("#uploads li")).to_have_text("hello.bin: 12345 bytes")

    # the chat: each page's message reaches the other's long poll
    bob = sign_in(browser, demo_url, "bob")
    alice.fill("#chat-text", "hi bob <b>")
    alice.press("#chat-text", "Enter")
    expect(bob.locator("#messages li").last).to_have_text("alice: hi bob <b>")
    expect(bob.locator("#messages li span b")).to_have_count(0)  # text, not markup
    bob.fill("#chat-text", "hi alice")
    bob.press("#chat-text", "Enter")
    expect(alice.locator("#messages li").last).to_have_text("bob: hi alice")
    expect(alice.locator("#messages li")).to_have_count(2)

    # the JSON endpoint, read by the browser
    info = alice.evaluate("fetch('/api/info').then((r) => r.json())")
    assert info["user"] == "alice"
    assert (info["messages"], info["notes"]) == (2, 1)

    alice.click("#logout")
    expect(alice.locator("#login")).to_be_visible()
