"""Headless Chromium for the screen's browser tests and bench: Debian's `chromium` (installed
with apt when missing, never a browser downloaded by Playwright) and the built `web/dist`."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, async_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


def _has_cjk_font() -> bool:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    found = subprocess.run([fc_list, ":lang=zh"], capture_output=True, text=True, check=False)
    return bool(found.stdout.strip())


def ensure_chromium() -> str:
    """The Chromium binary; installs Debian's package when it is missing (CI runs as root),
    and a CJK font so that screenshots show Chinese rather than empty boxes."""
    wanted = [] if Path(CHROMIUM).exists() else ["chromium"]
    if not _has_cjk_font():
        wanted.append("fonts-wqy-microhei")
    if wanted:
        apt = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        subprocess.run(["apt-get", "update"], check=True, env=apt)
        subprocess.run(["apt-get", "install", "-y", *wanted], check=True, env=apt)
    return CHROMIUM


def ensure_screen_built() -> Path:
    """`web/dist`, built now if `make web` has not run (needs Node ≥ 20 and npm)."""
    dist = REPO / "web" / "dist"
    if not (dist / "index.html").is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("the screen is not built and npm is not on PATH: run `make web`")
        web = REPO / "web"
        if not (web / "node_modules").is_dir():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=web, check=True)
        subprocess.run([npm, "run", "build"], cwd=web, check=True)
    return dist


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = ensure_chromium()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=path, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()
