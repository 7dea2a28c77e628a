"""Browser tests: the application in a uvicorn thread on a free loopback port, against the test
platform, driven by Playwright through Debian's chromium (never a browser Playwright downloads).

Screenshots of each main page are written to tests/e2e/screenshots/ (not committed) for review.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from rempart.app import create_app
from rempart.platform import Platform

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).with_name("screenshots")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI requires /usr/bin/chromium (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(platform: Platform, port: int) -> Iterator[str]:
    """The whole application, served on loopback at ``port``; yields its base URL."""
    config = uvicorn.Config(
        create_app(platform.settings, platform),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not running.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def server(platform: Platform) -> Iterator[str]:
    with serving(platform, free_port()) as base:
        yield base


@dataclass
class Tab:
    """A browser page with what it logged: the CSP must never have to block anything."""

    page: Page
    base: str
    console: list[str]

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(exist_ok=True)
        # caret="initial": hiding it would inject a <style>, which the CSP rightly blocks.
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True, caret="initial")


@pytest.fixture
def tab(browser: Browser, server: str) -> Iterator[Tab]:
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    page = context.new_page()
    page.set_default_timeout(10_000)
    console: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            console.append(message.text)

    page.on("console", keep)
    yield Tab(page, server, console)
    context.close()
    blocked = [m for m in console if "Content Security Policy" in m]
    assert not blocked, blocked
