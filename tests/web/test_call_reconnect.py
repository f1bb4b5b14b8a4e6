"""Calls people can rely on (issue 14): reconnecting without a click, and participant
records that stay true when a tab crashes or the server restarts.

A real `roomler serve` subprocess with a short rejoin grace period and empty-call timeout;
the pages are the web client in Debian's Chromium. Every page keeps its WebSockets and the
types of the frames it received (an init script), so a test can drop a socket the way a
network blip does and check what the other side was told.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import BrowserContext, Locator, Page, expect

from tests.sfu.browser.harness import poll
from tests.web.conftest import NewUser, StartServer
from tests.web.harness import (
    BrowserUser,
    ServerProcess,
    alice_and_bob_in_general,
    enable_debug,
)
from tests.web.test_call import assert_video_plays, participants, remote_tile
from tests.web.test_reconnect import OUTAGE_ERRORS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GRACE_SECS = 8.0
EMPTY_END_SECS = 5.0
SETTINGS = {
    "ROOMLER__CONFERENCE__REJOIN_GRACE_SECS": str(GRACE_SECS),
    "ROOMLER__CONFERENCE__EMPTY_END_SECS": str(EMPTY_END_SECS),
}
# The bound: from the server being back to each page decoding the other's video.
REJOIN_SECS = 15.0
# A record closes within the grace period plus a few attendance checks.
RECORD_SECS = GRACE_SECS + 10.0

KEEP_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__frames = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
      this.addEventListener('message', (event) => {
        try {
          // A batch frame (docs/protocol.md, Batches) carries events held for one tick.
          const frame = JSON.parse(event.data);
          const events = frame.type === 'batch' ? frame.data.events : [frame];
          for (const one of events) window.__frames.push(one.type);
        } catch {}
      });
    }
  };
})();
"""

ICE_UFRAGS = """
() => {
  const found = [];
  for (const pc of window.__peerConnections) {
    if (pc.connectionState === 'closed' || !pc.remoteDescription) continue;
    const match = /a=ice-ufrag:(\\S+)/.exec(pc.remoteDescription.sdp);
    if (match) found.push(match[1]);
  }
  return found;
}
"""

KEEP_PEER_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  const made = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      made.push(this);
    }
  };
  window.__peerConnections = made;
})();
"""


async def instrument(context: BrowserContext) -> None:
    await enable_debug(context)  # window.roomlerCall
    await context.add_init_script(KEEP_SOCKETS)
    await context.add_init_script(KEEP_PEER_CONNECTIONS)


async def frames(page: Page) -> list[str]:
    received: list[str] = await page.evaluate("window.__frames")
    return received


def join_button(user: BrowserUser) -> Locator:
    return user.page.locator("button.call-live")


async def start_call_with_bob(alice: BrowserUser, bob: BrowserUser) -> None:
    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await bob.page.get_by_role("button", name="Join call").click()
    await assert_video_plays(alice, "bob")
    await assert_video_plays(bob, "alice")


async def producer_of(viewer: BrowserUser, username: str) -> str | None:
    return await remote_tile(viewer, username).get_attribute("data-producer")


async def wait_for_new_video(viewer: BrowserUser, username: str, before: str | None) -> None:
    """`viewer` shows a new producer of `username` (a re-produce), and it plays."""
    tile = remote_tile(viewer, username)
    await expect(tile).to_have_count(1, timeout=REJOIN_SECS * 1000)
    await expect(tile).not_to_have_attribute(
        "data-producer", before or "", timeout=REJOIN_SECS * 1000
    )
    await assert_video_plays(viewer, username)


async def test_call_comes_back_without_a_click(
    start_server: StartServer, new_user: NewUser
) -> None:
    server = start_server(SETTINGS)
    alice, bob = await alice_and_bob_in_general(server, new_user)
    for user in (alice, bob):
        await instrument(user.context)
        await user.page.reload()
        user.allowed += OUTAGE_ERRORS
    await start_call_with_bob(alice, bob)

    # An ICE restart while media flows: new credentials from the SFU, video keeps coming.
    ufrags = await bob.page.evaluate(ICE_UFRAGS)
    await bob.page.evaluate("window.roomlerCall.restartIce()")
    restarted, count = await poll(
        lambda: bob.page.evaluate("window.roomlerCall.iceRestarts.value"), lambda n: n == 1, 10
    )
    assert restarted, f"ICE restarts done: {count}"
    after = await bob.page.evaluate(ICE_UFRAGS)
    assert set(after) - set(ufrags), f"the receive transport kept its ICE credentials: {after}"
    await assert_video_plays(bob, "alice")

    # Bob's WebSocket drops (a network blip): he rejoins on a new connection, and Alice
    # sees the same participant come back, never a leave.
    alice_camera = await producer_of(bob, "alice")
    bob_camera = await producer_of(alice, "bob")
    await bob.page.evaluate("window.__sockets.at(-1).close()")
    await wait_for_new_video(alice, "bob", bob_camera)
    await assert_video_plays(bob, "alice")
    received = await frames(alice.page)
    assert "media:peer_reconnected" in received, received
    assert "media:peer_left" not in received, received

    # The server restarts mid-call: both pages show each other's video again, no click.
    alice_camera = await producer_of(bob, "alice")
    bob_camera = await producer_of(alice, "bob")
    server.restart()
    back = time.monotonic()
    await asyncio.gather(
        wait_for_new_video(alice, "bob", bob_camera),
        wait_for_new_video(bob, "alice", alice_camera),
    )
    took = time.monotonic() - back
    assert took < REJOIN_SECS, f"video came back {took:.1f} s after the server did"
    for user in (alice, bob):
        await expect(user.page.get_by_text("Could not join the call")).to_have_count(0)
        await expect(user.page.get_by_role("button", name="Leave call")).to_be_visible()
    # Both records are still open, once each: the same participants.
    records = await participants(server, alice)
    assert sorted(r["display_name"] for r in records if r["is_present"]) == ["Alice", "Bob"]


async def crash(page: Page) -> None:
    """The renderer dies (as with a kill -9): no unload handler runs, the socket just closes."""
    session = await page.context.new_cdp_session(page)
    try:
        await asyncio.wait_for(session.send("Page.crash"), 5)
    except Exception:  # the page is gone before it can answer
        pass


async def present(server: ServerProcess, observer: BrowserUser) -> list[str]:
    return sorted(
        r["display_name"] for r in await participants(server, observer) if r["is_present"]
    )


async def test_records_follow_crashed_tabs_and_restarts(
    start_server: StartServer, new_user: NewUser
) -> None:
    server = start_server(SETTINGS)
    alice, bob = await alice_and_bob_in_general(server, new_user)
    for user in (alice, bob):
        user.allowed += OUTAGE_ERRORS
    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await expect(join_button(bob)).to_have_text("Join call (1)")
    call_url = alice.page.url

    # Bob joins from a second tab; his first tab, still in #general, counts him.
    tab = await bob.context.new_page()
    bob.watch(tab)
    await tab.goto(call_url)
    await assert_video_plays(alice, "bob")
    await expect(join_button(bob)).to_have_text("Join call (2)")

    # The tab crashes: no leave is sent. After the grace period Bob is recorded as gone
    # and the button says so.
    await crash(tab)
    await expect(remote_tile(alice, "bob")).to_have_count(0)
    await expect(join_button(bob)).to_have_text("Join call (1)", timeout=RECORD_SECS * 1000)
    assert await present(server, alice) == ["Alice"]

    # Bob joins again, then the server goes down, and Bob's tab closes while it is down.
    tab = await bob.context.new_page()
    bob.watch(tab)
    await tab.goto(call_url)
    await assert_video_plays(alice, "bob")
    await expect(join_button(bob)).to_have_text("Join call (2)")
    server.stop()
    await tab.close()
    server.start()
    # Alice comes back on her own; Bob does not, and is recorded as gone after the grace.
    await expect(join_button(bob)).to_have_text("Join call (1)", timeout=RECORD_SECS * 1000)
    assert await present(server, alice) == ["Alice"]

    # Alice leaves: nobody is in the call, which ends itself after EMPTY_END_SECS.
    await alice.page.get_by_role("button", name="Leave call").click()
    await expect(bob.page.get_by_role("button", name="Start call")).to_be_visible(
        timeout=(EMPTY_END_SECS + 10) * 1000
    )
