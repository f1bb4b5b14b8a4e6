"""Helpers for the web client's browser tests (the fixtures are in conftest.py).

- `ServerProcess`: `python -m roomler serve` on a fixed port in a temp directory, as a
  newcomer starts it; `restart()` keeps the port, the database and the JWT secret.
- `BrowserUser`: one person in their own browser context, with the console errors of
  their page collected so a test fails on any of them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.async_api import BrowserContext, ConsoleMessage, Locator, Page, expect

REPO = Path(__file__).resolve().parents[2]
DIST_INDEX = REPO / "src" / "roomler" / "web" / "dist" / "index.html"
ARTIFACTS = REPO / "test-artifacts" / "web"
README_SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
JWT_SECRET = "web-test-secret-" + "y" * 32
# The SFU on loopback, one worker, a port range no other test suite uses.
MEDIA_ENV = {
    "ROOMLER__MEDIASOUP__LISTEN_IP": "127.0.0.1",
    "ROOMLER__MEDIASOUP__NUM_WORKERS": "1",
    "ROOMLER__MEDIASOUP__RTC_MIN_PORT": "45000",
    "ROOMLER__MEDIASOUP__RTC_MAX_PORT": "45999",
}
PASSWORD = "correct horse battery"
# One user-visible step: a page load, a round trip through the server to another page.
STEP_MS = 10_000
START_TIMEOUT = 60.0  # a loaded 2-core machine: imports and migrations took 20 s at load 19
STOP_TIMEOUT = 15.0

NewUserFn = Callable[[str, str], Awaitable["BrowserUser"]]

# The web client's debug mode (what `?debug` in the address turns on for the tab): the
# call is reachable as `window.roomlerCall`, which a production page does not expose.
DEBUG_MODE = "try { sessionStorage.setItem('roomler.debug', '1'); } catch {}"
# The same for a page already open (for `page.evaluate`).
DEBUG_NOW = "() => sessionStorage.setItem('roomler.debug', '1')"


async def enable_debug(context: BrowserContext) -> None:
    """Debug mode on every page the context loads from now on (reload a page already open)."""
    await context.add_init_script(DEBUG_MODE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A real `roomler serve`, started and restarted on the same port."""

    def __init__(self, cwd: Path, extra_env: dict[str, str] | None = None) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMLER__")}
        self.env["ROOMLER__JWT__SECRET"] = JWT_SECRET
        self.env.update(MEDIA_ENV)
        self.env.update(extra_env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.cwd / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "roomler", "serve", "--host", "127.0.0.1"]
                + ["--port", str(self.port)],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_for_health()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.cwd / "serve.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _wait_for_health(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"roomler serve exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"roomler serve did not answer /health in time:\n{self.log()}")


@dataclass
class BrowserUser:
    """One person: a browser context of their own, one page, and its console errors."""

    name: str
    username: str
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)
    # Console errors a test expects (a refused connection while the server restarts).
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error" and not any(p.search(message.text) for p in self.allowed):
                self.errors.append(f"console error: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    async def screenshot(self, test_name: str, step: str, readme: str | None = None) -> Path:
        """Save the page to test-artifacts/web/; with `ROOMLER_README_SCREENSHOTS=1`, a
        `readme` shot also goes to docs/screenshots/<readme>.png."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{test_name}-{self.username}-{step}.png"
        await self.page.screenshot(path=str(path))
        if readme is not None and os.environ.get("ROOMLER_README_SCREENSHOTS") == "1":
            README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, README_SCREENSHOTS / f"{readme}.png")
        return path

    # --- what a person does ------------------------------------------------------------

    async def sign_up(self, base: str) -> None:
        page = self.page
        await page.goto(f"{base}/")
        await page.get_by_role("link", name="Create an account").click()
        await page.get_by_label("Email").fill(f"{self.username}@example.com")
        await page.get_by_label("Username").fill(self.username)
        await page.get_by_label("Display name").fill(self.name)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign up").click()
        await expect(page.get_by_role("heading", name="Your workspaces")).to_be_visible()

    async def create_workspace(self, name: str) -> None:
        await self.page.get_by_label("Workspace name").fill(name)
        await self.page.get_by_role("button", name="Create workspace").click()
        await expect(self.channel_heading("general")).to_be_visible()

    async def add_member(self, username: str) -> None:
        await self.page.get_by_label("Username to add").fill(username)
        await self.page.get_by_role("button", name="Add", exact=True).click()
        await expect(self.page.get_by_role("status").filter(has_text="was added")).to_be_visible()

    async def open_workspace_and_join(self, workspace: str, channel: str) -> None:
        page = self.page
        await page.get_by_role("button", name="Refresh").click()
        await page.get_by_role("link", name=re.compile(workspace)).click()
        await expect(page.get_by_role("heading", name="Explore channels")).to_be_visible()
        await page.get_by_role("button", name=f"Join {channel}").click()
        await expect(self.channel_heading(channel)).to_be_visible()

    def channel_heading(self, channel: str) -> Locator:
        return self.page.get_by_role("heading", name=channel, exact=True)

    def composer(self) -> Locator:
        return self.page.locator("#composer-input")

    async def send(self, text: str) -> None:
        await self.composer().fill(text)
        await self.composer().press("Enter")

    def messages(self, text: str) -> Locator:
        """The timeline entries whose content is exactly `text`."""
        return self.page.locator(".message-content").filter(
            has_text=re.compile(rf"^{re.escape(text)}( \(edited\))?$")
        )

    def member(self, username: str) -> Locator:
        return self.page.locator(f'li.member[data-user="{username}"]')

    async def choose_status(self, label: str) -> None:
        await self.page.get_by_label("Status").select_option(label=label)


async def access_token(user: BrowserUser) -> str:
    """The access token the user's page signs its requests with."""
    token: str = await user.page.evaluate(
        "JSON.parse(localStorage.getItem('roomler.session')).accessToken"
    )
    return token


async def alice_and_bob_in_general(
    server: ServerProcess, new_user: NewUserFn
) -> tuple[BrowserUser, BrowserUser]:
    """Both sign up; Alice creates a workspace and adds Bob; both open #general."""
    alice = await new_user("Alice", "alice")
    bob = await new_user("Bob", "bob")
    await bob.sign_up(server.base)
    await expect(bob.page.get_by_text("you are not in any workspace yet")).to_be_visible()
    await alice.sign_up(server.base)
    await alice.create_workspace("Acme")
    await alice.add_member("bob")
    await bob.open_workspace_and_join("Acme", "general")
    return alice, bob
