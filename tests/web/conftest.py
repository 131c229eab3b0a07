"""The screen in headless Chromium against a running yujing: every stage on the test's loop
(the stages `yujing up` runs), serving the built `web/dist`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

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
