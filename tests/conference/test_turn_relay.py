"""TURN through a real coturn: the credentials Roomler hands out open an allocation, and
a call's media flows through the relay to the SFU.

coturn runs as `turnserver` with `use-auth-secret` (the secret Roomler signs with) on
127.0.0.1; the sending peer talks to the SFU only through its TURN allocation
(aioice's TURN client), the receiving peer directly. Skipped when `turnserver` is not
installed (Debian: `apt-get install coturn`).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from aioice import stun, turn

from roomler.conference.turn import turn_credentials
from tests.conference.conftest import MEDIA, Team, join_all, media_client, room_router
from tests.conference.coturn import running_coturn
from tests.conference.peers import VIDEO_SSRC, connect, vp8_packet
from tests.realtime.conftest import LiveServer
from tests.sfu.engine_client import WebRtcPeer, _Protocol, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed"),
]

SECRET = "coturn-relay-test-secret"
RELAY_PORTS = (47000, 47199)


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[int]:
    """A turnserver on 127.0.0.1, checking credentials with `SECRET`."""
    with running_coturn(tmp_path / "coturn", SECRET, RELAY_PORTS) as coturn:
        yield coturn.port


class RelayedPeer(WebRtcPeer):
    """A `WebRtcPeer` whose every datagram goes through a TURN allocation."""

    def __init__(self, transport_params: dict[str, Any], ice_server: dict[str, Any]) -> None:
        super().__init__(transport_params, dtls_role="client")
        url = urlparse(ice_server["urls"][0])
        host, _, port = url.path.partition(":")
        self.turn_server = (host, int(port))
        self.turn_credentials = (ice_server["username"], ice_server["credential"])
        self.relayed_address: tuple[str, int] | None = None

    async def open(self) -> RelayedPeer:
        username, password = self.turn_credentials
        transport, _ = await turn.create_turn_endpoint(
            lambda: _Protocol(self), self.turn_server, username, password
        )
        self.transport = transport  # type: ignore[assignment]
        self.relayed_address = transport.get_extra_info("sockname")
        return self


@pytest.fixture
def server(start_server: Callable[..., LiveServer], coturn: int) -> LiveServer:
    return start_server(mediasoup=MEDIA, turn={"url": f"turn:127.0.0.1:{coturn}", "secret": SECRET})


async def test_coturn_accepts_roomlers_credentials_only_while_valid(coturn: int) -> None:
    server = ("127.0.0.1", coturn)
    username, password = turn_credentials(SECRET, "6b07945b309ae69bfed55a37", time.time())
    transport, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol, server, username, password
    )
    relayed = transport.get_extra_info("sockname")
    assert RELAY_PORTS[0] <= relayed[1] <= RELAY_PORTS[1]
    transport.close()

    refused = [
        turn_credentials("another-secret", "6b07945b309ae69bfed55a37", time.time()),
        # Expired a second ago.
        turn_credentials(SECRET, "6b07945b309ae69bfed55a37", time.time() - 86401),
    ]
    for username, password in refused:
        with pytest.raises(stun.TransactionFailed, match="401"):
            await turn.create_turn_endpoint(asyncio.DatagramProtocol, server, username, password)


async def test_media_flows_through_the_relay(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    alice_joined, bob_joined = await join_all(alice, bob)
    [ice_server] = alice_joined.ice_servers

    sender = await RelayedPeer(alice_joined.send_transport, ice_server).open()
    receiver = await connect(bob, bob_joined.recv_transport)
    try:
        await sender.ice_check()
        await alice.request(
            "media:connect_transport",
            "media:transport_connected",
            transport_id=alice_joined.send_transport["id"],
            dtls_parameters=sender.dtls_parameters(),
        )
        sender.start_dtls()
        await wait_for(lambda: sender.srtp is not None, timeout=5)
        video = await alice.produce("video")
        await bob.drain()
        consumer = await bob.consume(video)
        ssrc = consumer["rtp_parameters"]["encodings"][0]["ssrc"]
        for seq in range(2000, 2010):
            sender.send_rtp(vp8_packet(seq, keyframe=seq == 2000))
        await wait_for(lambda: len(receiver.received(ssrc)) >= 10, timeout=5)

        # The SFU saw Alice at coturn's relayed address, never at her own socket.
        router = await room_router(server, conference_id)
        transport = router.transports[alice_joined.send_transport["id"]]
        dump = await server.call(transport.dump)
        selected = dump["iceSelectedTuple"]
        assert sender.relayed_address is not None
        assert (selected["remoteIp"], selected["remotePort"]) == tuple(sender.relayed_address)
        assert dump["mapSsrcProducerId"][str(VIDEO_SSRC)] == video
    finally:
        sender.close()
        receiver.close()
    await alice.close()
    await bob.close()
