"""Last N video (issue 17 item 3), in real browsers: the page receives video only for the
tiles it shows -- the most recent speakers (N of them), pinned tiles and screen shares --
and the SFU sends nothing for the others; audio always comes.

Three real pages: Bob's fake microphone plays a tone (he is the one speaking), Alice's and
Carol's carry silence (no audio packets at all: a suspended AudioContext); all three send their
camera. The server runs with
ROOMLER__CONFERENCE__VIDEO_LAST_N=1. What Alice's page receives is read from her
consumers' inbound-rtp stats (`packetsReceived`, through `window.roomlerCall` in debug
mode): a paused consumer's count must not move at all. The extra participants that make a
second grid page are synthetic (room members without media put into Alice's call).
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser, StartServer
from tests.web.harness import BrowserUser, alice_and_bob_in_general, enable_debug
from tests.web.test_call import assert_video_plays, remote_tile
from tests.web.test_call_speaker import SILENT_MICROPHONE, chromium  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SETTINGS = {"ROOMLER__CONFERENCE__VIDEO_LAST_N": "1"}
WINDOW = 2.0  # seconds over which a flowing consumer gets dozens of packets
FLOWING = 3  # packets in WINDOW: flowing (a camera sends dozens, a still screen a few)
MEDIA_SECS = 20.0

ADD_PEERS = """
(count) => {
  const call = window.roomlerCall;
  const peers = new Map(call.peers.value);
  for (let i = 1; i <= count; i++) {
    const id = String(i).padStart(24, 'a');
    const connectionId = 'synthetic' + i;
    peers.set(connectionId, {connectionId, userId: id, displayName: 'Extra ' + i});
  }
  call.peers.value = peers;
}
"""


async def producers(viewer: BrowserUser) -> dict[str, str]:
    """producer id -> 'user/camera' or 'user/screen' or 'user/audio', as the page shows them."""
    names: dict[str, str] = await viewer.page.evaluate(
        """() => {
          const out = {};
          for (const el of document.querySelectorAll('.tile[data-producer]')) {
            const what = el.classList.contains('screen') ? '/screen' : '/camera';
            out[el.dataset.producer] = el.dataset.user + what;
          }
          for (const el of document.querySelectorAll('audio[data-producer]')) {
            out[el.dataset.producer] = el.dataset.user + '/audio';
          }
          return out;
        }"""
    )
    return names


# producer id -> stream name, kept: a tile off the current page is not in the page.
KNOWN: dict[str, str] = {}


async def packets(viewer: BrowserUser) -> dict[str, int]:
    """Packets received so far per stream ('bob/camera', ...)."""
    KNOWN.update(await producers(viewer))
    names = KNOWN
    counts: dict[str, int] = await viewer.page.evaluate("window.roomlerCall.packetsReceived()")
    return {names[p]: n for p, n in counts.items() if p in names}


async def flow(viewer: BrowserUser) -> dict[str, int]:
    """Packets received per stream over WINDOW seconds."""
    before = await packets(viewer)
    await asyncio.sleep(WINDOW)
    after = await packets(viewer)
    return {name: after[name] - before.get(name, 0) for name in after}


async def expect_flow(viewer: BrowserUser, flowing: set[str], stopped: set[str]) -> None:
    """Within MEDIA_SECS the streams in `flowing` get packets and those in `stopped` none."""
    deadline = time.monotonic() + MEDIA_SECS
    while True:
        seen = await flow(viewer)
        ok = all(seen.get(name, 0) >= FLOWING for name in flowing) and all(
            seen.get(name, -1) == 0 for name in stopped
        )
        if ok:
            return
        assert time.monotonic() < deadline, (
            f"expected {sorted(flowing)} flowing and {sorted(stopped)} stopped: {seen}"
        )


async def turn_page(viewer: BrowserUser, button: str, then: str) -> None:
    """Click a page button. Without waiting for two equal animation frames (Playwright's
    "stable"): with three pages decoding video on this 2-core machine a frame can take over
    a second, and the button, enabled and in place, does not move."""
    locator = viewer.page.get_by_role("button", name=button)
    await expect(locator).to_be_enabled()
    await locator.click(force=True)
    await expect(viewer.page.locator(".page-count")).to_have_text(then)


async def test_only_the_last_speakers_pinned_and_shown_tiles_get_video(
    start_server: StartServer, new_user: NewUser
) -> None:
    server = start_server(SETTINGS)
    alice, bob = await alice_and_bob_in_general(server, new_user)
    carol = await new_user("Carol", "carol")
    await carol.sign_up(server.base)
    await alice.add_member("carol")
    await carol.open_workspace_and_join("Acme", "general")
    for user in (alice, carol):
        await user.context.add_init_script(SILENT_MICROPHONE)
    await enable_debug(alice.context)
    await alice.page.reload()
    await carol.page.reload()
    await alice.page.set_viewport_size({"width": 390, "height": 844})

    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    for user in (bob, carol):
        await user.page.get_by_role("button", name="Join call").click()
        await expect(user.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await expect(alice.page.locator('.active-speaker[data-user="bob"]')).to_be_visible()
    await assert_video_plays(alice, "bob")

    # N = 1: Bob speaks, so his camera comes; Carol's consumer is paused at the SFU (her
    # tile shows her avatar). Both microphones come all the time.
    paused = re.compile(r"\bvideo-paused\b")
    await expect(remote_tile(alice, "carol")).to_have_class(paused)
    await expect_flow(alice, flowing={"bob/camera", "bob/audio"}, stopped={"carol/camera"})
    # Carol's (silent) microphone is consumed all the same.
    await expect(alice.page.locator('audio[data-user="carol"]')).to_have_count(1)
    await alice.screenshot("last-n", "carol-paused")

    # Alice pins Carol: her video comes too (pinned tiles are always received).
    await alice.page.get_by_role("button", name="Pin Carol").click()
    await expect(remote_tile(alice, "carol")).not_to_have_class(paused)
    await expect_flow(alice, flowing={"bob/camera", "carol/camera"}, stopped=set())
    await assert_video_plays(alice, "carol")

    # A grid with a second page: on page 2 neither camera tile is on the stage, so neither
    # video comes; back on page 1 both do again.
    await alice.page.get_by_label("Layout").select_option(label="Grid")
    await alice.page.evaluate(ADD_PEERS, 16)
    await turn_page(alice, "Next page", "Page 2 of 2")
    await expect(remote_tile(alice, "carol")).to_have_count(0)
    await expect(remote_tile(alice, "bob")).to_have_count(0)
    await expect_flow(alice, flowing={"bob/audio"}, stopped={"bob/camera", "carol/camera"})
    await turn_page(alice, "Previous page", "Page 1 of 2")
    await expect_flow(alice, flowing={"bob/camera", "carol/camera"}, stopped=set())

    # Unpinned, Carol's camera stops again; her screen share, though, is always received.
    await alice.page.get_by_role("button", name="Pin Carol").click()
    await expect_flow(alice, flowing={"bob/camera"}, stopped={"carol/camera"})
    await carol.page.get_by_role("button", name="Share screen").click()
    await expect(alice.page.locator('.tile.screen[data-user="carol"]')).to_have_count(1)
    await expect_flow(alice, flowing={"bob/camera", "carol/screen"}, stopped={"carol/camera"})
