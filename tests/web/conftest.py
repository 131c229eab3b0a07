"""The screen in headless Chromium against a running yujing: every stage on the test's loop
(the stages `yujing up` runs), serving the built `web/dist`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext

from yujing.testing.browser import REPO, chromium, ensure_screen_built
from yujing.testing.flow import Flow, running, settings_for_test

ARTEFACTS = REPO / "var" / "artefacts" / "screen"


@pytest.fixture(scope="session")
def screen_built() -> Path:
    return ensure_screen_built()


@pytest.fixture(scope="session")
async def browser(screen_built: Path) -> AsyncIterator[Browser]:
    async with chromium() as b:
        yield b


@pytest.fixture
async def stack(database_url: str, mqtt_broker: tuple[str, int]) -> AsyncIterator[Flow]:
    async with running(database_url, mqtt_broker, settings_for_test()) as flow:
        yield flow


@pytest.fixture(scope="session")
def artefacts() -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS


@pytest.fixture
async def context(browser: Browser, stack: Flow) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile per test, closed before the stack stops: an open page keeps
    its SSE stream open, and the API's graceful shutdown would wait for it."""
    ctx = await browser.new_context(viewport={"width": 1920, "height": 1080})
    try:
        yield ctx
    finally:
        await ctx.close()


class CuttableLink:
    """A TCP relay between the browser and the API that can drop every connection and refuse
    new ones for a while: a network cut, with the request bytes kept to read headers from."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.up = True
        self.sent: list[bytes] = []  # what the browser sent, as it arrived
        self._links: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> CuttableLink:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.up = False
        for w in self._links:
            w.transport.abort()
        self._links.clear()

    async def _accept(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if not self.up:
            w.transport.abort()
            return
        ur, uw = await asyncio.open_connection(*self.target)
        self._links |= {w, uw}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, keep: bool) -> None:
            try:
                while data := await src.read(65536):
                    if keep:
                        self.sent.append(data)
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(r, uw, True), pipe(ur, w, False))


@pytest.fixture
async def cuttable(stack: Flow) -> AsyncIterator[CuttableLink]:
    url = urlsplit(stack.base_url)
    async with CuttableLink(url.hostname or "127.0.0.1", url.port or 80) as link:
        yield link
