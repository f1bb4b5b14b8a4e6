"""A rolling restart under two people chatting and in a call (issue 15 item 7).

Two `roomler serve` nodes in cluster mode behind nginx (deploy/nginx.conf, HTTPS), Alice
and Bob in Chromium, each with a chat tab in #general and a call tab. The node hosting
the call gets SIGTERM, drains (its participants hear `media:room_closed {reason:
"server_shutdown"}`, its WebSockets close with 1001) and is started again, while both keep
writing. Without a click, both call tabs show each other's video again within 15 s of the
signal (the call moves to the other node); every message written before, during and
after the restart reaches the other side exactly once, and a reload shows the whole
history.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from redis import Redis

from tests.cluster.behind_nginx import two_nodes_behind_nginx
from tests.cluster.conftest import Node, RedisTarget, StartNodes
from tests.cluster.test_drain import wait_until_ready
from tests.web.harness import BrowserUser
from tests.web.test_call import assert_video_plays, remote_tile
from tests.web.test_https import (  # noqa: F401  (fixtures used by the test here)
    HOST,
    browser,
    nginx_binary,
    nginx_in_front_of,
    open_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.nodb]

SHUTDOWN_TIMEOUT_SECS = 10.0
# The bound: from SIGTERM to each call tab decoding the other's video again.
BACK_IN_CALL_SECS = 15.0
# What Chromium logs while the draining node refuses an upgrade or is gone (the proxy then
# answers from the other node, or the client tries again); the app itself logs nothing.
RESTART_ERRORS = [
    re.compile(r"^WebSocket connection to 'wss://roomler\.test:\d+/ws\?token=[^']*' failed"),
]


def host_of(redis: RedisTarget, conference_id: str) -> str | None:
    client = Redis.from_url(redis.url, socket_timeout=5, decode_responses=True)
    try:
        node: str | None = client.hget(f"{redis.prefix}conf:{conference_id}", "node")
        return node
    finally:
        client.close()


async def call_tab(user: BrowserUser, url: str | None = None) -> BrowserUser:
    """A second tab of the user's (the same session); opens `url` when given."""
    page = await user.context.new_page()
    tab = BrowserUser(user.name, user.username, user.context, page, allowed=user.allowed)
    tab.watch(page)
    if url is not None:
        await page.goto(url)
    return tab


async def producer_of(viewer: BrowserUser, username: str) -> str | None:
    return await remote_tile(viewer, username).get_attribute("data-producer")


async def back_in_call(viewer: BrowserUser, username: str, before: str | None) -> float:
    """`viewer` decodes a new producer of `username`'s (produced again after the move)."""
    tile = remote_tile(viewer, username)
    timeout = BACK_IN_CALL_SECS * 1000
    await expect(tile).to_have_count(1, timeout=timeout)
    await expect(tile).not_to_have_attribute("data-producer", before or "", timeout=timeout)
    await assert_video_plays(viewer, username)
    return time.monotonic()


async def restart(node: Node) -> int:
    """Wait for the signalled node to exit; start it again on its port. Its exit status."""
    assert node.process is not None
    process = node.process
    code = await asyncio.to_thread(process.wait, SHUTDOWN_TIMEOUT_SECS + 5)
    node.spawn()
    await asyncio.to_thread(wait_until_ready, node)
    return code


async def test_rolling_restart_of_the_node_hosting_the_call(
    nginx_binary: str,  # noqa: F811
    browser: Browser,  # noqa: F811
    start_nodes: StartNodes,
    shared_redis: RedisTarget,
    tmp_path: Path,
) -> None:
    async with two_nodes_behind_nginx(
        nginx_binary,
        start_nodes,
        shared_redis,
        tmp_path / "nginx",
        ROOMLER__APP__SHUTDOWN_TIMEOUT_SECS=str(SHUTDOWN_TIMEOUT_SECS),
    ) as (nodes, site):
        base = site.base
        alice = await open_user(browser, "Alice", "alice")
        bob = await open_user(browser, "Bob", "bob")
        users = [alice, bob]
        try:
            for user in users:
                user.allowed += RESTART_ERRORS
            await bob.sign_up(base)
            await alice.sign_up(base)
            await alice.create_workspace("Acme")
            await alice.add_member("bob")
            await bob.open_workspace_and_join("Acme", "general")
            sent = ["Before the restart"]
            await alice.send(sent[0])
            await expect(bob.messages(sent[0])).to_have_count(1)

            # The call, in a tab of each: Alice starts it from #general, Bob opens its page.
            alice_call = await call_tab(alice, alice.page.url)
            await alice_call.page.get_by_role("button", name="Start call").click()
            await expect(alice_call.page).to_have_url(re.compile(r"/call/[0-9a-f]{24}$"))
            bob_call = await call_tab(bob, alice_call.page.url)
            users += [alice_call, bob_call]
            await assert_video_plays(alice_call, "bob")
            await assert_video_plays(bob_call, "alice")
            conference_id = alice_call.page.url.rsplit("/", 1)[1]
            host_id = host_of(shared_redis, conference_id)
            host = next(node for node in nodes if node.node_id == host_id)
            alice_camera = await producer_of(bob_call, "alice")
            bob_camera = await producer_of(alice_call, "bob")

            # SIGTERM to the host; both keep writing while it drains and comes back.
            assert host.process is not None
            host.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            restarted = asyncio.create_task(restart(host))
            for author, text in ((alice, "While it drains (Alice)"), (bob, "Bob, meanwhile")):
                await author.send(text)
                sent.append(text)
            back = await asyncio.gather(
                back_in_call(alice_call, "bob", bob_camera),
                back_in_call(bob_call, "alice", alice_camera),
            )
            took = max(back) - signalled
            print(f"both pages back in the call {took:.1f} s after SIGTERM to {host_id}")
            assert took < BACK_IN_CALL_SECS, f"back in the call {took:.1f} s after SIGTERM"
            for tab in (alice_call, bob_call):
                await expect(tab.page.get_by_role("button", name="Leave call")).to_be_visible()
                await expect(tab.page.get_by_text("Could not join the call")).to_have_count(0)
            assert await restarted == 0, host.log_tail()
            assert host_of(shared_redis, conference_id) != host_id  # the call moved

            # The restarted node serves again; nothing written was lost or doubled.
            for author, text in ((bob, "After the restart (Bob)"), (alice, "And Alice")):
                await author.send(text)
                sent.append(text)
            for reader in (alice, bob):
                for text in sent:
                    await expect(reader.messages(text)).to_have_count(1)
                await expect(reader.page.locator(".send-state")).to_have_count(0)
            await bob.page.reload()
            for text in sent:
                await expect(bob.messages(text)).to_have_count(1)
        finally:
            errors = [f"{u.username}: {e}" for u in users for e in u.errors]
            for user in (alice, bob):
                await user.context.close()
        assert not errors, errors
