"""TURN over TLS: browsers given only a `turns:` URL and relay candidates still make a call.

coturn (Debian's `turnserver`) listens for TLS only, with a self-signed certificate this
test makes, on 127.0.0.1; `ROOMLER__TURN__URL` names only its `turns:` URL. Both pages
force `iceTransportPolicy: "relay"` (tests/conference/test_turn_browser.py), so the only
path from the browser to the SFU is a TURN allocation made over TLS over TCP: each sees
the other's video, and each transport's selected local candidate is a relay candidate
whose allocation used TLS (`relayProtocol: "tls"` in WebRTC's statistics).
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from tests.conference.coturn import Coturn, running_coturn
from tests.conference.test_turn_browser import (
    RELAY_PORTS,
    SECRET,
    relay_only_user,
    wait_for_frames,
)
from tests.web.conftest import (  # noqa: F401  (fixtures used by the tests here)
    NewUser,
    StartServer,
    new_user,
    start_server,
)
from tests.web.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    BrowserUser,
    ServerProcess,
    alice_and_bob_in_general,
)
from tests.web.test_call import assert_video_plays
from tests.web.test_https import self_signed_certificate

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed"),
]


@pytest.fixture
def coturn_tls(tmp_path: Path) -> Iterator[Coturn]:
    directory = tmp_path / "coturn"
    directory.mkdir()
    tls = self_signed_certificate(directory)
    with running_coturn(directory, SECRET, RELAY_PORTS, tls=tls) as coturn:
        yield coturn


@pytest_asyncio.fixture
async def chromium() -> AsyncIterator[Browser]:
    """Chromium that accepts coturn's self-signed certificate (the UDP test's, plus that)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"!!!!! {CHROMIUM} is missing: the TURN/TLS browser test is SKIPPED !!!!!")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"],
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def server(start_server: StartServer, coturn_tls: Coturn) -> ServerProcess:  # noqa: F811
    return start_server({"ROOMLER__TURN__URL": coturn_tls.url, "ROOMLER__TURN__SECRET": SECRET})


async def test_a_call_through_turn_over_tls_only(
    server: ServerProcess,
    coturn_tls: Coturn,
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
        assert len(stats) == 2, stats
        for transport in stats:
            assert [s["urls"] for s in transport["iceServers"]] == [[coturn_tls.url]], transport
            assert transport["connectionState"] == "connected", transport
            assert transport["local"]["type"] == "relay", transport
            assert RELAY_PORTS[0] <= transport["local"]["port"] <= RELAY_PORTS[1], transport
        # How each relay allocation was reached: TLS, the only way given.
        assert await relay_protocols(user) == ["tls", "tls"]
    granted = {username.split(":", 1)[1] for username in coturn_tls.allocations()}
    assert len(granted) == 2, coturn_tls.tail()


# The relay protocol (udp, tcp or tls: how the browser reached its TURN server) of each
# call transport's selected local candidate.
RELAY_PROTOCOLS = """
async () => {
  const out = [];
  for (const { pc, iceServers } of window.__relayOnly) {
    if (iceServers.length === 0 || pc.connectionState === 'closed') continue;
    const stats = new Map();
    (await pc.getStats()).forEach((s) => stats.set(s.id, s));
    for (const s of stats.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        out.push(stats.get(pair.localCandidateId).relayProtocol);
      }
    }
  }
  return out;
}
"""


async def relay_protocols(user: BrowserUser) -> list[str]:
    protocols: list[str] = await user.page.evaluate(RELAY_PROTOCOLS)
    return protocols
