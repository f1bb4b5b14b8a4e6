"""TURN in real browsers: two Chromium pages restricted to relay candidates still see each other.

A private coturn (tests/conference/coturn.py) runs on a free 127.0.0.1 port with
`use-auth-secret`, and `roomler serve` hands out its time-limited credentials in
`media:transport_created.ice_servers` (`ROOMLER__TURN__URL`, `ROOMLER__TURN__SECRET`).
Both pages run the web client with `RTCPeerConnection` wrapped so that every connection
is made with `iceTransportPolicy: "relay"`: the browser gathers no host candidate, so
every packet to and from the SFU goes through a coturn allocation. The test checks what
a person would notice (each sees the other's video: 30 decoded frames) and how it got
there (each transport's selected pair has a `relay` local candidate on coturn's relay
ports; coturn logged an allocation for each user). Skipped when coturn is missing
(`make test` installs it).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conference.coturn import Coturn, running_coturn
from tests.web.conftest import (  # noqa: F401  (fixtures used by the tests here)
    NewUser,
    StartServer,
    chromium,
    new_user,
    start_server,
)
from tests.web.harness import BrowserUser, ServerProcess
from tests.web.test_call import assert_video_plays
from tests.web.test_chat import alice_and_bob_in_general

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed"),
]

SECRET = "turn-browser-test-secret"
# coturn's relayed addresses: a range no other test uses.
RELAY_PORTS = (48200, 48399)
MEDIA_TIMEOUT = 20.0
MIN_FRAMES = 30

# Runs before the web client in every page of the context: each RTCPeerConnection is
# made relay-only, and kept (with the configuration it got) for getStats().
RELAY_ONLY = """
(() => {
  const Native = window.RTCPeerConnection;
  const made = [];
  class RelayOnlyPeerConnection extends Native {
    constructor(configuration, ...rest) {
      const forced = { ...(configuration || {}), iceTransportPolicy: 'relay' };
      super(forced, ...rest);
      made.push({ pc: this, iceServers: JSON.parse(JSON.stringify(forced.iceServers || [])) });
    }
  }
  window.RTCPeerConnection = RelayOnlyPeerConnection;
  window.__relayOnly = made;
})();
"""

# For every peer connection that was given ICE servers (the call's transports; the
# device's capability probe gets none): its policy, servers, state, the selected
# candidate pair's local and remote candidates, and the video frames it decoded.
TRANSPORT_STATS = """
async () => {
  const out = [];
  for (const { pc, iceServers } of window.__relayOnly) {
    if (iceServers.length === 0 || pc.connectionState === 'closed') continue;
    const stats = new Map();
    (await pc.getStats()).forEach((s) => stats.set(s.id, s));
    let pair = null;
    for (const s of stats.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        pair = stats.get(s.selectedCandidatePairId) || null;
      }
    }
    const local = pair ? stats.get(pair.localCandidateId) : null;
    const remote = pair ? stats.get(pair.remoteCandidateId) : null;
    let framesDecoded = 0;
    for (const s of stats.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') framesDecoded += s.framesDecoded || 0;
    }
    out.push({
      policy: pc.getConfiguration().iceTransportPolicy,
      iceServers,
      connectionState: pc.connectionState,
      local: local && { type: local.candidateType, address: local.address, port: local.port },
      remote: remote && { type: remote.candidateType, address: remote.address, port: remote.port },
      framesDecoded,
    });
  }
  return out;
}
"""


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    with running_coturn(tmp_path / "coturn", SECRET, RELAY_PORTS) as coturn:
        yield coturn


@pytest.fixture
def server(start_server: StartServer, coturn: Coturn) -> ServerProcess:  # noqa: F811
    return start_server({"ROOMLER__TURN__URL": coturn.url, "ROOMLER__TURN__SECRET": SECRET})


async def relay_only_user(new_user: NewUser, name: str, username: str) -> BrowserUser:  # noqa: F811
    user = await new_user(name, username)
    await user.context.add_init_script(RELAY_ONLY)
    return user


async def transports(user: BrowserUser) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await user.page.evaluate(TRANSPORT_STATS)
    return result


async def wait_for_frames(user: BrowserUser) -> list[dict[str, Any]]:
    """The page's transports once its receive side decoded MIN_FRAMES video frames."""
    deadline = time.monotonic() + MEDIA_TIMEOUT
    while True:
        stats = await transports(user)
        if sum(t["framesDecoded"] for t in stats) >= MIN_FRAMES:
            return stats
        assert time.monotonic() < deadline, (
            f"{user.username} decoded fewer than {MIN_FRAMES} frames in {MEDIA_TIMEOUT} s: {stats}"
        )
        await asyncio.sleep(0.25)


async def user_id(user: BrowserUser) -> str:
    value: str = await user.page.evaluate(
        "JSON.parse(localStorage.getItem('roomler.session')).user.id"
    )
    return value


async def test_browsers_limited_to_relay_candidates_exchange_media_through_coturn(
    server: ServerProcess,
    coturn: Coturn,
    new_user: NewUser,  # noqa: F811
) -> None:
    async def relay_only(name: str, username: str) -> BrowserUser:
        return await relay_only_user(new_user, name, username)

    alice, bob = await alice_and_bob_in_general(server, relay_only)
    await alice.page.get_by_role("button", name="Start call").click()
    await bob.page.get_by_role("button", name="Join call").click()
    await assert_video_plays(alice, "bob")
    await assert_video_plays(bob, "alice")

    for user in (alice, bob):
        stats = await wait_for_frames(user)
        # A send and a receive transport, each made relay-only with Roomler's TURN server.
        assert len(stats) == 2, stats
        for transport in stats:
            assert transport["policy"] == "relay", transport
            [ice_server] = transport["iceServers"]
            assert ice_server["urls"] == [coturn.url], transport
            assert ice_server["username"].endswith(":" + await user_id(user)), transport
            assert transport["connectionState"] == "connected", transport
            local = transport["local"]
            assert local is not None and local["type"] == "relay", transport
            assert RELAY_PORTS[0] <= local["port"] <= RELAY_PORTS[1], transport
            # The other end is the SFU's own candidate, not another relay.
            assert transport["remote"]["type"] == "host", transport
    await alice.screenshot("turn-relay", "both")

    # coturn granted the allocations, to each user's time-limited credentials.
    granted = {username.split(":", 1)[1] for username in coturn.allocations()}
    assert {await user_id(alice), await user_id(bob)} <= granted, coturn.tail()
