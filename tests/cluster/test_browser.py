"""A call across nodes in real browsers: the web client and mediasoup-client in Chromium.

Two `roomler serve` nodes share PostgreSQL and the machine's Redis. Alice uses node 1
and starts the call there (node 1 hosts the router); Bob uses node 2, whose WebSocket
forwards his `media:*` requests to node 1. Both must decode each other's video and
receive each other's audio, and Bob's media must flow straight to node 1's UDP ports.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.cluster.conftest import (
    RedisTarget,
    StartNodes,
    media_settings,
    port_range,
)
from tests.web.conftest import NewUser, chromium, new_user  # noqa: F401  (fixtures)
from tests.web.harness import DIST_INDEX, BrowserUser

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.nodb]

MEDIA_TIMEOUT = 20.0
MIN_AUDIO_PACKETS = 50
MIN_VIDEO_FRAMES = 30

# Keeps every RTCPeerConnection the page makes, so the test can read its stats.
RECORD_PEER_CONNECTIONS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__peerConnections = [];
  function Recorded(...args) {
    const pc = new Original(...args);
    window.__peerConnections.push(pc);
    return pc;
  }
  Recorded.prototype = Original.prototype;
  Object.setPrototypeOf(Recorded, Original);
  window.RTCPeerConnection = Recorded;
})();
"""

# Received audio packets, decoded video frames, and the remote ports of the pairs in use.
MEDIA_STATS = """
async () => {
  let audio = 0, frames = 0;
  const ports = [];
  for (const pc of window.__peerConnections) {
    const stats = await pc.getStats();
    const byId = new Map();
    stats.forEach((report) => byId.set(report.id, report));
    stats.forEach((report) => {
      if (report.type === "inbound-rtp" && report.kind === "audio") {
        audio += report.packetsReceived || 0;
      }
      if (report.type === "inbound-rtp" && report.kind === "video") {
        frames += report.framesDecoded || 0;
      }
      if (report.type === "candidate-pair" && report.state === "succeeded" && report.nominated) {
        const remote = byId.get(report.remoteCandidateId);
        if (remote) ports.push(remote.port);
      }
    });
  }
  return {audio, frames, ports};
}
"""


async def media_stats(user: BrowserUser) -> dict[str, Any]:
    stats: dict[str, Any] = await user.page.evaluate(MEDIA_STATS)
    return stats


async def assert_receives(user: BrowserUser) -> dict[str, Any]:
    """The user's browser receives audio and decodes video, and keeps doing so."""
    deadline = time.monotonic() + MEDIA_TIMEOUT
    stats = await media_stats(user)
    while stats["audio"] < MIN_AUDIO_PACKETS or stats["frames"] < MIN_VIDEO_FRAMES:
        assert time.monotonic() < deadline, f"{user.username} receives too little: {stats}"
        await asyncio.sleep(0.25)
        stats = await media_stats(user)
    await asyncio.sleep(1.0)
    later = await media_stats(user)
    assert later["audio"] > stats["audio"] and later["frames"] > stats["frames"], (stats, later)
    return later


async def test_participants_on_two_nodes_see_and_hear_each_other(
    start_nodes: StartNodes,
    shared_redis: RedisTarget,
    cluster_db: AsyncEngine,
    new_user: NewUser,  # noqa: F811
) -> None:
    if not DIST_INDEX.exists():
        pytest.fail(f"{DIST_INDEX} is missing: run `make web` (or `cd web && npm run build`)")
    n1, n2 = start_nodes(2, shared_redis, per_node=media_settings)
    tag = secrets.token_hex(3)
    alice = await new_user("Alice", f"alice{tag}")
    bob = await new_user("Bob", f"bob{tag}")
    for user in (alice, bob):
        await user.context.add_init_script(RECORD_PEER_CONNECTIONS)

    await bob.sign_up(n2.http_url)
    await alice.sign_up(n1.http_url)
    await alice.create_workspace("Acme")
    await alice.add_member(bob.username)
    await bob.open_workspace_and_join("Acme", "general")

    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    # Bob's #general (node 2) learns of the call started on node 1.
    await bob.page.get_by_role("button", name="Join call").click()

    for user in (alice, bob):
        stats = await assert_receives(user)
        assert stats["ports"] and set(stats["ports"]) <= set(port_range(1)), stats
    await alice.screenshot("cluster-call", "both")
    await bob.screenshot("cluster-call", "both")
