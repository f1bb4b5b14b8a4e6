"""A call in a private channel with real ICE/DTLS/SRTP peers, and the ways access to it ends.

Shared by the single-node tests (tests/conference/test_revocation.py) and the two-node
ones (tests/cluster/test_revocation.py): `owner` organizes a conference in a private
channel whose members are `owner`, `alice` and `bob`; all three are in the call, Alice
sends video that Owen (the owner) and Bob receive, Bob sends audio. Then Bob loses his
access in one of the `REVOCATIONS`, through the REST API of any node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from roomler.sfu.dtls import DtlsState
from tests.conference.conftest import (
    MEDIA_START_TIMEOUT,
    MediaClient,
    chrome_rtp_capabilities,
    is_media,
    join_all,
)
from tests.conference.peers import connect, vp8_packet
from tests.realtime.conftest import User
from tests.sfu.browser.harness import udp_port_is_bound
from tests.sfu.engine_client import WebRtcPeer, wait_for

# Generous: a two-node revocation crosses Redis twice, on a shared, loaded machine.
SETTLE_SECS = 10.0


@dataclass
class Rest:
    """REST calls on one node as a given user."""

    http: httpx.AsyncClient
    tenant_id: str

    async def ok(self, user: User, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(
            method,
            f"/api/tenant/{self.tenant_id}{path}",
            json=body,
            headers=user.headers,
            timeout=MEDIA_START_TIMEOUT,  # `start` may fork the SFU's workers
        )
        assert response.status_code in (200, 201), response.text
        return response.json()


async def private_conference(rest: Rest, owner: User, *members: User) -> tuple[str, str]:
    """A private channel of `owner` and `members`, and a conference started in it."""
    channel = await rest.ok(owner, "POST", "/channel", {"name": "secret", "is_private": True})
    for member in members:
        await rest.ok(owner, "POST", f"/channel/{channel['id']}/member", {"user_id": member.id})
    conference = await rest.ok(
        owner, "POST", "/conference", {"subject": "Private", "channel_id": channel["id"]}
    )
    await rest.ok(owner, "POST", f"/conference/{conference['id']}/start")
    return channel["id"], conference["id"]


@dataclass
class Revocation:
    """One way Bob loses the call: `act(rest, channel_id)` makes the REST change."""

    name: str
    act: Callable[[Rest, str, User, User], Awaitable[Any]]
    reason: str


async def _remove_from_workspace(rest: Rest, _cid: str, owner: User, bob: User) -> Any:
    return await rest.ok(owner, "DELETE", f"/member/{bob.id}")


async def _leave_channel(rest: Rest, cid: str, _owner: User, bob: User) -> Any:
    return await rest.ok(bob, "POST", f"/channel/{cid}/leave")


async def _remove_from_channel(rest: Rest, cid: str, owner: User, bob: User) -> Any:
    return await rest.ok(owner, "DELETE", f"/channel/{cid}/member/{bob.id}")


async def _make_channel_private(rest: Rest, cid: str, owner: User, bob: User) -> Any:
    """Public first, so that Bob outside it keeps the call; private again: he loses it."""
    await rest.ok(owner, "PUT", f"/channel/{cid}", {"is_private": False})
    await rest.ok(owner, "DELETE", f"/channel/{cid}/member/{bob.id}")
    return await rest.ok(owner, "PUT", f"/channel/{cid}", {"is_private": True})


async def _delete_channel(rest: Rest, cid: str, owner: User, _bob: User) -> Any:
    return await rest.ok(owner, "DELETE", f"/channel/{cid}")


REVOCATIONS = [
    Revocation("removed_from_workspace", _remove_from_workspace, "access_revoked"),
    Revocation("left_private_channel", _leave_channel, "access_revoked"),
    Revocation("removed_from_private_channel", _remove_from_channel, "access_revoked"),
    Revocation("channel_made_private", _make_channel_private, "access_revoked"),
]
CHANNEL_DELETED = Revocation("channel_deleted", _delete_channel, "channel_deleted")


@dataclass
class MidCall:
    conference_id: str
    owner: MediaClient
    alice: MediaClient
    bob: MediaClient
    alice_send: WebRtcPeer
    owner_recv: WebRtcPeer
    bob_send: WebRtcPeer
    bob_recv: WebRtcPeer
    video: str  # Alice's producer
    bob_audio: str  # Bob's producer
    owner_ssrc: int  # of Owen's consumer of Alice's video
    bob_ssrc: int  # of Bob's consumer of Alice's video
    bob_ports: list[int]
    next_seq: int = 1000

    @property
    def peers(self) -> list[WebRtcPeer]:
        return [self.alice_send, self.owner_recv, self.bob_send, self.bob_recv]

    def close(self) -> None:
        for peer in self.peers:
            peer.close()

    async def video_reaches(self, receiver: WebRtcPeer, ssrc: int) -> None:
        """A keyframe from Alice arrives at `receiver` (sent again until it does: UDP)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECS
        self.next_seq += 1
        packet = vp8_packet(self.next_seq, keyframe=True)
        while packet.payload not in [p.payload for p in receiver.received(ssrc)]:
            assert loop.time() < deadline, f"video seq {self.next_seq} did not arrive"
            self.alice_send.send_rtp(packet)
            await asyncio.sleep(0.05)


async def next_media(client: MediaClient, timeout: float = SETTLE_SECS) -> dict[str, Any]:
    """The client's next `media:*` frame, waited for up to `timeout` (what a revocation
    causes may cross Redis twice on a loaded machine)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        assert remaining > 0, f"no media frame within {timeout} s"
        frame = await client.client.recv(remaining)
        if is_media(frame):
            return frame


async def refused(client: MediaClient, message_type: str, **data: Any) -> dict[str, Any]:
    """Send a request that must fail: its `media:error` data, to this connection."""
    request_id = await client.send(message_type, **data)
    frame = await next_media(client)
    assert frame["type"] == "media:error" and frame.get("request_id") == request_id, frame
    error: dict[str, Any] = frame["data"]
    assert error["request_type"] == message_type, error
    return error


def candidate_ports(joined_transport: dict[str, Any]) -> list[int]:
    return [candidate["port"] for candidate in joined_transport["ice_candidates"]]


async def _consumer_ssrc(client: MediaClient, producer_id: str) -> int:
    consumer = await client.consume(producer_id)
    return int(consumer["rtp_parameters"]["encodings"][0]["ssrc"])


async def _heard_new_producer(producer_id: str, *clients: MediaClient) -> None:
    for client in clients:
        frame = await next_media(client)
        assert frame["type"] == "media:new_producer", frame
        assert frame["data"]["producer_id"] == producer_id, frame


async def mid_call(
    conference_id: str, owner: MediaClient, alice: MediaClient, bob: MediaClient
) -> MidCall:
    """All three joined with connected transports; Alice's video reaches Owen and Bob."""
    for client in (owner, alice, bob):
        client.conference_id = conference_id
    owner_joined, alice_joined, bob_joined = await join_all(owner, alice, bob)
    alice_send = await connect(alice, alice_joined.send_transport)
    owner_recv = await connect(owner, owner_joined.recv_transport)
    bob_send = await connect(bob, bob_joined.send_transport)
    bob_recv = await connect(bob, bob_joined.recv_transport)
    video = await alice.produce("video")
    await _heard_new_producer(video, owner, bob)
    bob_audio = await bob.produce("audio")
    await _heard_new_producer(bob_audio, owner, alice)
    call = MidCall(
        conference_id,
        owner,
        alice,
        bob,
        alice_send,
        owner_recv,
        bob_send,
        bob_recv,
        video,
        bob_audio,
        await _consumer_ssrc(owner, video),
        await _consumer_ssrc(bob, video),
        candidate_ports(bob_joined.send_transport) + candidate_ports(bob_joined.recv_transport),
    )
    await call.video_reaches(call.owner_recv, call.owner_ssrc)
    await call.video_reaches(call.bob_recv, call.bob_ssrc)
    assert all(udp_port_is_bound(port) for port in call.bob_ports)
    return call


async def assert_revoked(call: MidCall, bob: User, reason: str) -> None:
    """Bob is out, told why; the others are told he left; their media keeps flowing."""
    closed = await next_media(call.bob)
    assert closed == {
        "type": "media:room_closed",
        "data": {"conference_id": call.conference_id, "reason": reason},
    }
    for other in (call.owner, call.alice):
        producer_closed = await next_media(other)
        assert producer_closed == {
            "type": "media:producer_closed",
            "data": {"producer_id": call.bob_audio, "user_id": bob.id},
        }
        peer_left = await next_media(other)
        assert peer_left == {
            "type": "media:peer_left",
            "data": {
                "user_id": bob.id,
                "conference_id": call.conference_id,
                "connection_id": call.bob.connection_id,
            },
        }
    await assert_transports_closed(call.bob_send, call.bob_recv, ports=call.bob_ports)
    await assert_refused(call)

    # Alice's video still reaches Owen; nothing more reaches Bob's closed transport.
    bob_packets = len(call.bob_recv.rtp)
    await call.video_reaches(call.owner_recv, call.owner_ssrc)
    assert len(call.bob_recv.rtp) == bob_packets
    assert await call.owner.drain() == [] and await call.alice.drain() == []


async def assert_transports_closed(*peers: WebRtcPeer, ports: list[int]) -> None:
    """The SFU closed them: DTLS close_notify reached the peers, the UDP ports are free."""
    for peer in peers:
        await wait_for(
            lambda p=peer: p.dtls is not None and p.dtls.state is DtlsState.CLOSED, SETTLE_SECS
        )  # type: ignore[misc]
    await wait_for(lambda: not any(udp_port_is_bound(port) for port in ports), SETTLE_SECS)


async def assert_refused(call: MidCall) -> None:
    """Bob's later requests for the conference get `media:error`, to him only."""
    error = await refused(
        call.bob,
        "media:consume",
        producer_id=call.video,
        rtp_capabilities=chrome_rtp_capabilities(),
    )
    assert "not a participant" in error["message"], error
    error = await refused(call.bob, "media:join")
    assert call.conference_id in error["message"], error
    assert await call.bob.drain() == []
