"""A call across nodes in real browsers: the web client and mediasoup-client in Chromium.

Two `roomler serve` nodes share PostgreSQL and the machine's Redis. Alice and Carol use
node 1, where Alice starts the call (node 1 hosts the room); Bob uses node 2, whose
WebSocket forwards his `media:*` requests to node 1. Every page's transports are on its
own node (read from its selected candidate pair's remote port), so Bob's media crosses
between the nodes through a pipe; everyone decodes everyone else's video and gets their
audio. Then node 2 is killed: Bob's tile goes from the others' pages, and Alice and Carol
keep receiving each other.
"""

from __future__ import annotations

import re
import secrets
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
from tests.conference.test_browser import assert_receives as assert_receives_from
from tests.conference.test_browser import camera_tile, inbound
from tests.sfu.browser.harness import poll
from tests.web.conftest import NewUser, chromium, new_user  # noqa: F401  (fixtures)
from tests.web.harness import DIST_INDEX, BrowserUser

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.nodb]

MEDIA_TIMEOUT = 20.0

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


async def frames_of(viewer: BrowserUser, username: str) -> int:
    stats = await inbound(viewer, camera_tile(viewer, username).locator("video"))
    return stats.get("framesDecoded", 0)


async def test_participants_on_two_nodes_see_and_hear_each_other_through_a_pipe(
    start_nodes: StartNodes,
    shared_redis: RedisTarget,
    cluster_db: AsyncEngine,
    new_user: NewUser,  # noqa: F811
) -> None:
    if not DIST_INDEX.exists():
        pytest.fail(f"{DIST_INDEX} is missing: run `make web` (or `cd web && npm run build`)")
    # A short rejoin grace: Bob's tile goes soon after node 2 is found dead.
    n1, n2 = start_nodes(
        2, shared_redis, per_node=media_settings, ROOMLER__CONFERENCE__REJOIN_GRACE_SECS="2"
    )
    tag = secrets.token_hex(3)
    alice = await new_user("Alice", f"alice{tag}")
    bob = await new_user("Bob", f"bob{tag}")
    carol = await new_user("Carol", f"carol{tag}")
    for user in (alice, bob, carol):
        await user.context.add_init_script(RECORD_PEER_CONNECTIONS)

    await bob.sign_up(n2.http_url)
    await carol.sign_up(n1.http_url)
    await alice.sign_up(n1.http_url)
    await alice.create_workspace("Acme")
    for user in (bob, carol):
        await alice.add_member(user.username)
        await user.open_workspace_and_join("Acme", "general")

    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(
        1, timeout=MEDIA_TIMEOUT * 1000
    )
    # Bob's #general (node 2) learns of the call started on node 1.
    await bob.page.get_by_role("button", name="Join call").click()
    await carol.page.get_by_role("button", name="Join call").click()

    everyone = {user.username: user for user in (alice, bob, carol)}
    for viewer in everyone.values():
        for other in everyone:
            if other != viewer.username:
                await assert_receives_from(viewer, other)
    home = {alice.username: 1, bob.username: 2, carol.username: 1}
    for name, user in everyone.items():
        stats = await media_stats(user)
        assert stats["ports"] and set(stats["ports"]) <= set(port_range(home[name])), (name, stats)
    await alice.screenshot("cluster-call", "three")
    await bob.screenshot("cluster-call", "three")

    # Bob's page loses its server: its failed reconnects are expected.
    bob.allowed.append(re.compile("ERR_CONNECTION_REFUSED|WebSocket connection to"))
    n2.kill()
    for viewer in (alice, carol):
        # Noticed by node 1 within the node TTL: only the pipe to node 2 goes.
        await expect(camera_tile(viewer, bob.username)).to_have_count(0, timeout=30_000)
    for viewer, other in ((alice, carol.username), (carol, alice.username)):
        before = await frames_of(viewer, other)
        ok, after = await poll(
            lambda v=viewer, o=other: frames_of(v, o), lambda n, b=before: n > b + 10,
            MEDIA_TIMEOUT,
        )  # fmt: skip
        assert ok, f"{viewer.username}'s video of {other} stopped at {after}"
    assert n1.process is not None and n1.process.poll() is None
