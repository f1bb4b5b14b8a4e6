"""Pytest fixtures for the roomler.sfu browser tests (a plugin: never import it).

Test modules load it with ``pytest_plugins = ("tests.sfu.browser.fixtures",)``:

- `page_bundle`: entry.js bundled with web/node_modules' mediasoup-client by
  esbuild into a temp dir (once per session; never committed).
- `sfu_pool`: a real `WorkerPool` with two worker processes on 127.0.0.1.
- `signaling`: `SignalingServer` (signaling.py) on a free 127.0.0.1 port.
- `chromium`: Debian's /usr/bin/chromium through Playwright, headless, fake
  camera and microphone; skipped loudly when it is not installed.
- `open_peer`: opens a page on the signaling server as a `BrowserPeer`.
- `open_noisy_peer`: the same in a Chromium whose fake camera plays random
  noise (`noise_video`), for measuring bitrate: see `write_noise_y4m`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, async_playwright

from roomler.sfu.pool import WorkerPool
from tests.sfu.browser.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HERE,
    NOISE_FRAMES,
    NOISE_HEIGHT,
    NOISE_WIDTH,
    RTC_MAX_PORT,
    RTC_MIN_PORT,
    STEP_TIMEOUT,
    BrowserPeer,
    bundle,
    write_noise_y4m,
)
from tests.sfu.browser.signaling import SignalingServer

OpenPeer = Callable[[str], Awaitable[BrowserPeer]]


@pytest.fixture(scope="session")
def page_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("sfu-page")
    bundle(HERE / "entry.js", out_dir)
    return out_dir


@pytest_asyncio.fixture
async def sfu_pool() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(
        num_workers=2,
        listen_ip="127.0.0.1",
        rtc_min_port=RTC_MIN_PORT,
        rtc_max_port=RTC_MAX_PORT,
    )
    await asyncio.wait_for(pool.start(), STEP_TIMEOUT)
    try:
        yield pool
    finally:
        await asyncio.wait_for(pool.close(), STEP_TIMEOUT)


@pytest_asyncio.fixture
async def signaling(sfu_pool: WorkerPool, page_bundle: Path) -> AsyncIterator[SignalingServer]:
    server = SignalingServer(sfu_pool, page_bundle)
    await asyncio.wait_for(server.start(), STEP_TIMEOUT)
    try:
        yield server
    finally:
        await server.close()


def _require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"!!!!! {CHROMIUM} is missing: the SFU browser tests are SKIPPED "
            "(`make browser` installs Debian's chromium) !!!!!"
        )


@asynccontextmanager
async def _launch(extra_args: list[str]) -> AsyncIterator[Browser]:
    _require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS + extra_args,
            timeout=STEP_TIMEOUT * 1000,
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def _page_opener(browser: Browser, server: SignalingServer) -> AsyncIterator[OpenPeer]:
    contexts: list[BrowserContext] = []

    async def open_page(name: str) -> BrowserPeer:
        context = await browser.new_context()
        contexts.append(context)
        page = await context.new_page()
        peer = BrowserPeer(name, page)

        def log(message: ConsoleMessage) -> None:
            peer.console.append(f"{message.type}: {message.text}")

        page.on("console", log)
        page.on("pageerror", lambda error: peer.console.append(f"pageerror: {error}"))
        await page.goto(server.url, timeout=STEP_TIMEOUT * 1000)
        await page.wait_for_function(
            "typeof window.roomler === 'object'", timeout=STEP_TIMEOUT * 1000
        )
        return peer

    try:
        yield open_page
    finally:
        for context in contexts:
            await context.close()


@pytest_asyncio.fixture
async def chromium() -> AsyncIterator[Browser]:
    """Chromium whose fake camera shows its built-in test pattern."""
    async with _launch([]) as browser:
        yield browser


@pytest_asyncio.fixture
async def open_peer(chromium: Browser, signaling: SignalingServer) -> AsyncIterator[OpenPeer]:
    """open_peer(name) loads the test page in a fresh browser context."""
    async with _page_opener(chromium, signaling) as open_page:
        yield open_page


@pytest.fixture(scope="session")
def noise_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sfu-video") / "noise.y4m"
    write_noise_y4m(path, NOISE_WIDTH, NOISE_HEIGHT, NOISE_FRAMES)
    return path


@pytest_asyncio.fixture
async def open_noisy_peer(noise_video: Path, signaling: SignalingServer) -> AsyncIterator[OpenPeer]:
    """Like open_peer, but the fake camera shows random noise (see write_noise_y4m)."""
    async with _launch([f"--use-file-for-fake-video-capture={noise_video}"]) as browser:
        async with _page_opener(browser, signaling) as open_page:
            yield open_page
