"""`/metrics` during a real call: ICE, DTLS and SRTP peers sending video through a worker."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conference.conftest import MEDIA, Team, join_all, media_client
from tests.conference.peers import connect, vp8_packet
from tests.metrics_scrape import Samples, scrape, value
from tests.realtime.conftest import LiveServer
from tests.sfu.engine_client import wait_for

TOKEN = "scrape-secret-0123456789"
WORKER = {"worker": "0"}


@pytest.fixture
def server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server(mediasoup=MEDIA, metrics={"enabled": True, "token": TOKEN})


def sfu(samples: Samples, name: str) -> float:
    return value(samples, f"roomler_sfu_{name}", **WORKER)


async def test_a_scrape_during_a_call_sees_the_media_move(team: Team, server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as metrics_http:
        idle = await scrape(metrics_http, TOKEN)
        assert ("roomler_sfu_worker_alive", frozenset(WORKER.items())) not in idle  # not started

        conference_id = await team.api.started(team.alice)
        alice = await media_client(server, team.alice, conference_id)
        bob = await media_client(server, team.bob, conference_id)
        alice_joined, bob_joined = await join_all(alice, bob)
        sender = await connect(alice, alice_joined.send_transport)
        receiver = await connect(bob, bob_joined.recv_transport)
        try:
            video = await alice.produce("video")
            await bob.drain()
            consumer = await bob.consume(video)
            ssrc = consumer["rtp_parameters"]["encodings"][0]["ssrc"]
            joined = await scrape(metrics_http, TOKEN)
            assert sfu(joined, "worker_alive") == 1
            assert sfu(joined, "routers") == 1
            assert sfu(joined, "transports") == 4
            assert sfu(joined, "producers") == 1
            assert sfu(joined, "consumers") == 1
            assert value(joined, "roomler_websocket_connections") == 2

            for seq in range(1000, 1050):
                sender.send_rtp(vp8_packet(seq, keyframe=seq == 1000))
            await wait_for(lambda: len(receiver.received(ssrc)) >= 50)
            flowing = await scrape(metrics_http, TOKEN)
            assert sfu(flowing, "rtp_packets_in_total") >= sfu(joined, "rtp_packets_in_total") + 50
            assert (
                sfu(flowing, "rtp_packets_out_total") >= sfu(joined, "rtp_packets_out_total") + 50
            )
            assert sfu(flowing, "rtp_bytes_in_total") > sfu(joined, "rtp_bytes_in_total")
            assert sfu(flowing, "rtp_bytes_out_total") > sfu(joined, "rtp_bytes_out_total")
            assert sfu(flowing, "cpu_seconds_total") > 0
            assert value(flowing, "roomler_websocket_frames_in_total") > value(
                idle, "roomler_websocket_frames_in_total"
            )
            assert value(flowing, "roomler_websocket_deliveries_total") > value(
                idle, "roomler_websocket_deliveries_total"
            )
            assert value(flowing, "roomler_websocket_frames_out_total") > value(
                idle, "roomler_websocket_frames_out_total"
            )
            start = value(
                flowing,
                "roomler_http_requests_total",
                method="POST",
                route="/api/tenant/{tid}/conference/{conf_id}/start",
                status="200",
            )
            assert start == 1
        finally:
            sender.close()
            receiver.close()
        await alice.close()
        await bob.close()
        await server.wait_connections(0)

        # The transports are gone; what they carried still counts (counters never go down).
        left = await scrape(metrics_http, TOKEN)
        assert sfu(left, "transports") == 0
        assert sfu(left, "consumers") == 0
        assert sfu(left, "rtp_packets_in_total") >= sfu(flowing, "rtp_packets_in_total")
        assert sfu(left, "rtp_packets_out_total") >= sfu(flowing, "rtp_packets_out_total")
        assert value(left, "roomler_websocket_connections") == 0
