"""Conference faults in real browsers: the web client and mediasoup-client in Chromium.

The server is a real `roomler serve` subprocess with one SFU worker; the browser
fixtures are the web client's (tests/web/conftest.py).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.web.conftest import (  # noqa: F401  (fixtures used by the tests here)
    NewUser,
    chromium,
    new_user,
    server,
    start_server,
)
from tests.web.harness import ServerProcess
from tests.web.test_call import assert_video_plays
from tests.web.test_chat import alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORKER_MODULE = "roomler.sfu.worker"


def sfu_workers(server_pid: int) -> list[int]:
    """The pids of the server's SFU worker processes."""
    path = Path(f"/proc/{server_pid}/task/{server_pid}/children")
    workers = []
    for pid in map(int, path.read_text().split()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if WORKER_MODULE.encode() in command:
            workers.append(pid)
    return workers


async def test_a_killed_worker_stops_the_call_and_both_can_rejoin(
    server: ServerProcess,  # noqa: F811
    new_user: NewUser,  # noqa: F811
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await bob.page.get_by_role("button", name="Join call").click()
    await assert_video_plays(alice, "bob")
    await assert_video_plays(bob, "alice")
    assert server.process is not None
    [worker] = sfu_workers(server.process.pid)

    os.kill(worker, signal.SIGKILL)

    for user in (alice, bob):
        await expect(user.page.get_by_text("The media server stopped this call.")).to_be_visible()
    await alice.screenshot("worker-killed", "stopped")
    # Back in through the list of calls: the first join places a new router.
    for user in (alice, bob):
        await user.page.get_by_role("button", name="Back to calls").click()
        await user.page.get_by_role("button", name="Join", exact=True).click()
    await assert_video_plays(alice, "bob")
    await assert_video_plays(bob, "alice")
    [replacement] = sfu_workers(server.process.pid)
    assert replacement != worker
