"""Fixtures for the web client's browser tests.

- `server`: a real `roomler serve` subprocess serving the built client (`make web`).
- `chromium`: Debian's /usr/bin/chromium through Playwright, headless, fake camera and
  microphone; skipped loudly when it is not installed.
- `new_user`: opens a browser context for one person; at the end of the test each page
  is screenshotted into test-artifacts/web/ and the test fails on any console error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from tests.web.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DIST_INDEX,
    STEP_MS,
    BrowserUser,
    NewUserFn,
    ServerProcess,
)

NewUser = NewUserFn

expect.set_options(timeout=STEP_MS)


StartServer = Callable[[dict[str, str]], ServerProcess]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start a server with extra `ROOMLER__...` settings; stopped after the test."""
    if not DIST_INDEX.exists():
        pytest.fail(f"{DIST_INDEX} is missing: run `make web` (or `cd web && npm run build`)")
    started: list[ServerProcess] = []

    def start(extra_env: dict[str, str]) -> ServerProcess:
        process = ServerProcess(tmp_path / f"server{len(started)}", extra_env)
        process.cwd.mkdir()
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.fixture
def server(start_server: StartServer) -> ServerProcess:
    return start_server({})


@pytest_asyncio.fixture
async def chromium() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"!!!!! {CHROMIUM} is missing: the web client browser tests are SKIPPED "
            "(`make browser` installs Debian's chromium) !!!!!"
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture
async def new_user(chromium: Browser, request: pytest.FixtureRequest) -> AsyncIterator[NewUser]:
    users: list[BrowserUser] = []

    async def open_user(name: str, username: str) -> BrowserUser:
        context = await chromium.new_context(
            viewport={"width": 1280, "height": 800}, reduced_motion="reduce"
        )
        context.set_default_timeout(STEP_MS)
        page = await context.new_page()
        user = BrowserUser(name, username, context, page)
        user.watch(page)
        users.append(user)
        return user

    yield open_user

    test_name = request.node.name
    errors = []
    for user in users:
        if not user.page.is_closed():
            await user.screenshot(test_name, "end")
        errors += [f"{user.username}: {error}" for error in user.errors]
        await user.context.close()
    assert not errors, "the pages logged errors:\n" + "\n".join(errors)
