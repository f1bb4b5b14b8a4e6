"""A room over two workers, in real browsers (issue 17): Chromium pages in one call on
a server with two SFU workers and ROOM_SPREAD_CONSUMERS=1, so the room spreads to the
second worker as soon as the first consumes anything and producers cross between them
through pipe transports. Every page decodes every other page's camera and gets its
microphone's packets; the transports are on both workers (read from each page's selected
candidate pair); then the worker holding the later joiners is killed: they are told the
media server stopped their call, and the first two keep receiving each other.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.conference.test_browser import (
    KEEP_PEER_CONNECTIONS,
    MEDIA_TIMEOUT,
    assert_receives,
    camera_tile,
    inbound,
    sfu_ports,
    sfu_workers,
)
from tests.sfu.browser.harness import poll
from tests.web.conftest import (  # noqa: F401  (fixtures used by the tests here)
    NewUser,
    StartServer,
    chromium,
    new_user,
    start_server,
)
from tests.web.harness import BrowserUser, ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = int(os.environ.get("ROOMLER_TEST_SPREAD_PAGES", "3"))


def socket_owner(pids: list[int], port: int) -> int | None:
    """The process among `pids` holding the UDP socket bound to `port`."""
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return pid
    return None


async def frames_of(viewer: BrowserUser, username: str) -> int:
    stats = await inbound(viewer, camera_tile(viewer, username).locator("video"))
    return stats.get("framesDecoded", 0)


async def test_a_room_over_two_workers_and_one_worker_killed(
    start_server: StartServer,  # noqa: F811
    new_user: NewUser,  # noqa: F811
) -> None:
    server: ServerProcess = start_server(
        {
            "ROOMLER__MEDIASOUP__NUM_WORKERS": "2",
            "ROOMLER__MEDIASOUP__ROOM_SPREAD_CONSUMERS": "1",
        }
    )

    async def member(name: str, username: str) -> BrowserUser:
        user = await new_user(name, username)
        await user.context.add_init_script(KEEP_PEER_CONNECTIONS)
        return user

    later = [await member(name, name.lower()) for name in ("Carol", "Dave")[: PAGES - 2]]
    for user in later:
        await user.sign_up(server.base)
    alice, bob = await alice_and_bob_in_general(server, member)
    for user in later:
        await alice.add_member(user.username)
        await user.open_workspace_and_join("Acme", "general")

    await alice.page.get_by_role("button", name="Start call").click()
    # The first start forks both workers (seconds under load).
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(
        1, timeout=MEDIA_TIMEOUT * 1000
    )
    everyone = {"alice": alice}
    # One at a time: each joiner is placed by what the workers carry once the
    # others receive each other.
    for user in [bob, *later]:
        name = user.username
        await user.page.get_by_role("button", name="Join call").click()
        everyone[name] = user
        for viewer_name, viewer in everyone.items():
            for other in everyone:
                if other != viewer_name:
                    await assert_receives(viewer, other)
    for viewer in everyone.values():
        await expect(viewer.page.locator(".tile")).to_have_count(PAGES)
    await later[-1].screenshot("spread", "all")

    assert server.process is not None
    workers = sfu_workers(server.process.pid)
    assert len(workers) == 2, workers
    placed: dict[str, set[int]] = {}
    for name, user in everyone.items():
        ports = await sfu_ports(user)
        assert len(ports) == 2, (name, ports)
        placed[name] = {owner for port in ports if (owner := socket_owner(workers, port))}
        assert len(placed[name]) == 1, f"{name}'s two transports are on {placed[name]}"
    used = set().union(*placed.values())
    assert used == set(workers), f"the room did not spread over both workers: {placed}"
    assert placed["alice"] == placed["bob"], placed  # the first worker until it consumed
    [second] = placed["carol"]

    os.kill(second, signal.SIGKILL)

    lost = [name for name, pids in placed.items() if second in pids]
    kept = [name for name in everyone if name not in lost]
    for name in lost:
        await expect(
            everyone[name].page.get_by_text("The media server stopped this call.")
        ).to_be_visible()
    for viewer_name in kept:
        viewer = everyone[viewer_name]
        for name in lost:
            await expect(camera_tile(viewer, name)).to_have_count(0)
        for other in kept:
            if other == viewer_name:
                continue
            before = await frames_of(viewer, other)
            ok, after = await poll(
                lambda v=viewer, o=other: frames_of(v, o), lambda n, b=before: n > b + 10,
                MEDIA_TIMEOUT,
            )  # fmt: skip
            assert ok, f"{viewer_name}'s video of {other} stopped at {after} after the kill"
    await alice.screenshot("spread", "after-kill")
