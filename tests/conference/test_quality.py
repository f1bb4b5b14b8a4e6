"""Network quality (`media:score`, conference/quality.py): the scoring rules, and a
reading of real RTP through the SFU -- Alice's video with a tenth of its packets lost on
the way, then clean, then stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from roomler.conference.quality import (
    QualityReporter,
    combine,
    loss_fraction,
    rtt_penalty,
    score_from_loss,
)
from tests.conference.conftest import MEDIA, Team, join_all, media_client
from tests.conference.peers import connect, vp8_packet
from tests.realtime.conftest import LiveServer


def test_loss_scores_like_mediasoup() -> None:
    assert score_from_loss(0.0) == 10
    assert score_from_loss(0.02) == 9
    assert score_from_loss(0.10) == 5
    assert score_from_loss(0.20) == 0
    assert score_from_loss(0.5) == 0


def test_loss_between_two_readings() -> None:
    assert loss_fraction(100, 0, None) is None  # a first reading has nothing to compare
    assert loss_fraction(190, 10, (100, 0)) == 0.1  # 90 arrived, 10 missing
    assert loss_fraction(100, 0, (100, 0)) is None  # nothing expected since
    assert loss_fraction(150, 3, (100, 5)) == 0.0  # a late packet lowers the count


def test_round_trip_and_the_worse_direction() -> None:
    assert [rtt_penalty(ms) for ms in (None, 50, 200, 201, 300, 450, 2000)] == [0, 0, 0, 1, 1, 3, 4]
    assert combine(None, None, 30) is None
    assert combine(9, None, None) == 9
    assert combine(None, 7, 20) == 7
    assert combine(10, 6, 350) == 4
    assert combine(1, 10, 900) == 0


# How long RTP sent on loopback may take to be counted by the SFU on a loaded machine.
ARRIVAL_SECS = 10.0


@pytest.fixture
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    # No reading of its own between ours: the test decides when the SFU is read.
    return start_server(mediasoup=MEDIA, conference={"score_interval_secs": 3600})


async def test_a_reading_scores_real_rtp(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    alice_joined, _ = await join_all(alice, bob)
    sender = await connect(alice, alice_joined.send_transport)
    reporter: QualityReporter = server.app.server.quality
    seq = 1000

    async def send(count: int, *, drop_every: int = 0) -> None:
        nonlocal seq
        for _ in range(count):
            if not drop_every or seq % drop_every:
                sender.send_rtp(vp8_packet(seq, keyframe=seq == 1000))
            seq += 1
        room = server.app.server.media.room(conference_id)
        producer = room.find_producer(video)

        async def arrived() -> int:
            stats = await producer.get_stats()
            return sum(s["packetCount"] + s["packetsLost"] for s in stats["streams"])

        # Every packet sent is counted, received or lost, once the next one came in.
        deadline = asyncio.get_running_loop().time() + ARRIVAL_SECS
        while await server.call(arrived) < seq - 1000 - drop_every:
            assert asyncio.get_running_loop().time() < deadline, "the packets did not arrive"
            await asyncio.sleep(0.02)

    async def scores() -> dict[str, Any]:
        await server.call(reporter.report_all)
        while True:
            frame = await bob.client.recv()
            if frame["type"] == "media:score":
                assert frame["data"]["conference_id"] == conference_id
                return {entry["user_id"]: entry for entry in frame["data"]["scores"]}

    try:
        video = await alice.produce("video")
        await send(50)
        await server.call(reporter.report_all)  # the first reading: counts to compare with

        await send(200, drop_every=10)
        lossy = (await scores())[team.alice.id]
        assert lossy["uplink"] == 5, lossy  # 10 % lost on the way in
        assert lossy["score"] == 5 and lossy["downlink"] is None
        assert lossy["connection_id"] == alice.connection_id
        assert (await scores())[team.bob.id]["score"] is None  # Bob sends nothing

        await send(200)
        assert (await scores())[team.alice.id]["score"] == 10

        # Nothing for a whole reading while the producer is not paused: not flowing.
        assert (await scores())[team.alice.id]["score"] == 0
    finally:
        sender.close()
    await alice.close()
    await bob.close()


class _Producer:
    """What a reading uses of a `proxies.Producer` (`get_stats` as a worker answers it)."""

    id = "producer"
    closed = False
    paused = False

    def __init__(self, streams: list[dict[str, Any]]) -> None:
        self.streams = streams

    async def get_stats(self) -> dict[str, Any]:
        return {"bitrate": 96_000, "streams": self.streams}


async def test_an_encoding_known_only_by_its_rid_is_read_by_position() -> None:
    # A simulcast producer's encodings are rid-based: an SSRC appears with its first packet.
    reporter = QualityReporter({}, dispatcher=None)  # type: ignore[arg-type]
    seen: set[tuple[str, int]] = set()
    producer = _Producer(
        [
            {"ssrc": None, "packetCount": 0, "packetsLost": 0},
            {"ssrc": 5, "packetCount": 100, "packetsLost": 0},
        ]
    )
    assert await reporter._producer_score(producer, seen) == (None, 96)  # type: ignore[arg-type]
    producer.streams = [
        {"ssrc": 7, "packetCount": 50, "packetsLost": 0},
        {"ssrc": 5, "packetCount": 190, "packetsLost": 10},
    ]
    assert await reporter._producer_score(producer, seen) == (10, 96)  # type: ignore[arg-type]
