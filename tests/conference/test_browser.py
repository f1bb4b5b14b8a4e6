"""Conferences in real browsers: the web client, whose calls are mediasoup-client in
Chromium speaking only the `media:*` protocol of docs/protocol.md.

The server is a real `roomler serve` subprocess with one SFU worker; the browser
fixtures are the web client's (tests/web/conftest.py). Every peer connection a page
makes is kept (an init script) so the tests read the browser's own `getStats()`: frames
decoded and audio packets per remote track, and the SFU port each transport talks to.
Chromium's fake devices give a camera, a microphone and, for `getDisplayMedia`, a
screen.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from playwright.async_api import Locator, expect

from tests.sfu.browser.harness import poll, udp_port_is_bound
from tests.web.conftest import (  # noqa: F401  (fixtures used by the tests here)
    NewUser,
    chromium,
    new_user,
    server,
    start_server,
)
from tests.web.harness import BrowserUser, ServerProcess
from tests.web.test_call import assert_video_plays, participants
from tests.web.test_chat import alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORKER_MODULE = "roomler.sfu.worker"
MEDIA_TIMEOUT = 20.0  # from joining (or sharing) to MIN_FRAMES decoded on the other side
MIN_FRAMES = 30  # issue 5: framesDecoded >= 30
SILENCE = 1.0  # a muted microphone sends nothing over this interval
CLEANUP_TIMEOUT = 10.0  # from leaving to the SFU's ports being free again

# Runs before the web client in every page: keep each RTCPeerConnection for getStats().
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

# inbound-rtp figures of the given receive tracks (trackIdentifier is the track's id).
INBOUND = """
async (trackIds) => {
  const out = {};
  for (const pc of window.__peerConnections) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && trackIds.includes(s.trackIdentifier)) {
        out[s.trackIdentifier] = {
          framesDecoded: s.framesDecoded || 0,
          packetsReceived: s.packetsReceived || 0,
        };
      }
    });
  }
  return out;
}
"""

# The SFU's UDP port at the far end of each open transport's selected candidate pair.
SFU_PORTS = """
async () => {
  const ports = [];
  for (const pc of window.__peerConnections) {
    if (pc.connectionState === 'closed') continue;
    const stats = new Map();
    (await pc.getStats()).forEach((s) => stats.set(s.id, s));
    for (const s of stats.values()) {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
      const pair = stats.get(s.selectedCandidatePairId);
      const remote = pair && stats.get(pair.remoteCandidateId);
      if (remote) ports.push(remote.port);
    }
  }
  return ports;
}
"""
TRACK_ID = "(element) => element.srcObject?.getTracks()[0]?.id ?? null"


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


# --- three participants --------------------------------------------------------------------


def camera_tile(viewer: BrowserUser, username: str) -> Locator:
    return viewer.page.locator(f'.tile[data-local="false"][data-user="{username}"]:not(.screen)')


def screen_tile(viewer: BrowserUser, username: str) -> Locator:
    return viewer.page.locator(f'.tile.screen[data-local="false"][data-user="{username}"]')


def microphone(viewer: BrowserUser, username: str) -> Locator:
    return viewer.page.locator(f'audio[data-user="{username}"]')


async def track_id(element: Locator) -> str | None:
    if await element.count() != 1:
        return None
    value: str | None = await element.evaluate(TRACK_ID)
    return value


async def inbound(viewer: BrowserUser, element: Locator) -> dict[str, int]:
    """{framesDecoded, packetsReceived} of the track `element` plays ({} before it has one)."""
    track = await track_id(element)
    if track is None:
        return {}
    stats: dict[str, dict[str, int]] = await viewer.page.evaluate(INBOUND, [track])
    return stats.get(track, {})


async def assert_receives(viewer: BrowserUser, username: str) -> None:
    """`viewer` decoded MIN_FRAMES of `username`'s camera and got packets of their mic."""

    async def media() -> tuple[dict[str, int], dict[str, int]]:
        video = await inbound(viewer, camera_tile(viewer, username).locator("video"))
        return video, await inbound(viewer, microphone(viewer, username))

    ok, (video, audio) = await poll(
        media,
        lambda m: m[0].get("framesDecoded", 0) >= MIN_FRAMES and m[1].get("packetsReceived", 0) > 0,
        MEDIA_TIMEOUT,
    )
    assert ok, (
        f"{viewer.username} got from {username} in {MEDIA_TIMEOUT} s:"
        f" video {video}, audio {audio} (wanted {MIN_FRAMES} frames and audio packets)"
    )


async def assert_screen_plays(viewer: BrowserUser, username: str) -> None:
    # The client pauses the consumer of a tile scrolled out of view (issue 13): the viewer
    # looks at the share, as a person would.
    await screen_tile(viewer, username).scroll_into_view_if_needed()
    screen = screen_tile(viewer, username).locator("video")
    ok, video = await poll(
        lambda: inbound(viewer, screen),
        lambda v: v.get("framesDecoded", 0) >= MIN_FRAMES,
        MEDIA_TIMEOUT,
    )
    assert ok, f"{viewer.username} decoded {video} of {username}'s screen in {MEDIA_TIMEOUT} s"


async def audio_packets(viewer: BrowserUser, username: str) -> int:
    return (await inbound(viewer, microphone(viewer, username))).get("packetsReceived", 0)


async def sfu_ports(user: BrowserUser) -> list[int]:
    ports: list[int] = await user.page.evaluate(SFU_PORTS)
    return ports


async def assert_ports_released(username: str, ports: list[int]) -> None:
    async def bound() -> list[int]:
        return [port for port in ports if udp_port_is_bound(port)]

    ok, still = await poll(bound, lambda b: not b, CLEANUP_TIMEOUT, interval=0.2)
    assert ok, (
        f"the SFU still holds {username}'s transport ports {still} {CLEANUP_TIMEOUT} s"
        " after they left"
    )


async def test_three_browsers_late_joiner_mute_screen_share_leave_and_tab_close(
    server: ServerProcess,  # noqa: F811
    new_user: NewUser,  # noqa: F811
) -> None:
    async def member(name: str, username: str) -> BrowserUser:
        user = await new_user(name, username)
        await user.context.add_init_script(KEEP_PEER_CONNECTIONS)
        return user

    carol = await member("Carol", "carol")
    await carol.sign_up(server.base)
    alice, bob = await alice_and_bob_in_general(server, member)
    await alice.add_member("carol")
    await carol.open_workspace_and_join("Acme", "general")

    # Alice starts the call, Bob joins: two participants.
    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await bob.page.get_by_role("button", name="Join call").click()
    await assert_receives(alice, "bob")
    await assert_receives(bob, "alice")

    # Carol joins late: she is sent the producers already in the room, and they get hers.
    await carol.page.get_by_role("button", name="Join call").click()
    everyone = {"alice": alice, "bob": bob, "carol": carol}
    for viewer_name, viewer in everyone.items():
        for other in everyone:
            if other != viewer_name:
                await assert_receives(viewer, other)
    for viewer in everyone.values():
        await expect(viewer.page.locator(".tile")).to_have_count(3)
    await carol.screenshot("three", "all")

    # Alice mutes: the others see it, and her microphone's packets stop; unmuted, they flow.
    await alice.page.get_by_role("button", name="Mute").click()
    for viewer in (bob, carol):
        await expect(camera_tile(viewer, "alice")).to_have_attribute("data-muted", "true")
    await asyncio.sleep(SILENCE / 2)  # packets already on the wire land
    before = await audio_packets(bob, "alice")
    await asyncio.sleep(SILENCE)
    assert await audio_packets(bob, "alice") == before, "Alice is muted but Bob still gets audio"
    await alice.page.get_by_role("button", name="Unmute").click()
    for viewer in (bob, carol):
        await expect(camera_tile(viewer, "alice")).to_have_attribute("data-muted", "false")
    ok, _ = await poll(lambda: audio_packets(bob, "alice"), lambda n: n > before, MEDIA_TIMEOUT)
    assert ok, "Alice unmuted but Bob gets no audio from her"

    # Bob shares his screen: a second video producer, next to his camera.
    await bob.page.get_by_role("button", name="Share screen").click()
    for viewer in (alice, carol):
        await expect(screen_tile(viewer, "bob").locator("figcaption")).to_have_text("Bob (screen)")
        await assert_screen_plays(viewer, "bob")
        # His camera keeps going beside it.
        camera = camera_tile(viewer, "bob").locator("video")
        frames = (await inbound(viewer, camera))["framesDecoded"]
        await asyncio.sleep(SILENCE)
        assert (await inbound(viewer, camera))["framesDecoded"] > frames, "Bob's camera froze"
    await alice.screenshot("three", "screen")
    await bob.page.get_by_role("button", name="Stop sharing").click()
    for viewer in (alice, carol):
        await expect(screen_tile(viewer, "bob")).to_have_count(0)
        await expect(camera_tile(viewer, "bob")).to_have_count(1)

    # Carol leaves: her tiles go, and the SFU lets go of her transports.
    carol_ports = await sfu_ports(carol)
    assert len(carol_ports) == 2, carol_ports
    await carol.page.get_by_role("button", name="Leave call").click()
    for viewer in (alice, bob):
        await expect(camera_tile(viewer, "carol")).to_have_count(0)
        await expect(microphone(viewer, "carol")).to_have_count(0)
    await assert_ports_released("carol", carol_ports)

    # Bob closes his tab: the same, from the WebSocket closing.
    bob_ports = await sfu_ports(bob)
    assert len(bob_ports) == 2, bob_ports
    await bob.page.close()
    await expect(camera_tile(alice, "bob")).to_have_count(0)
    await expect(microphone(alice, "bob")).to_have_count(0)
    await assert_ports_released("bob", bob_ports)
    assert all(udp_port_is_bound(port) for port in await sfu_ports(alice))

    async def present() -> list[str]:
        return [r["display_name"] for r in await participants(server, alice) if r["is_present"]]

    ok, names = await poll(present, lambda n: n == ["Alice"], CLEANUP_TIMEOUT, interval=0.2)
    assert ok, f"recorded as present after leaving: {names}"
