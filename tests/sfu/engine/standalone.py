"""Engine objects built on their own, without a transport or a loop running: for sans-I/O tests.

Producers and consumers are real engine objects built with Chrome's parameters
(tests/sfu/fixtures); their transport is :class:`RecordingSender`.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from roomler.sfu import ortc
from roomler.sfu.codecs import DEFAULT_MEDIA_CODECS
from roomler.sfu.engine.consumer import Consumer
from roomler.sfu.engine.producer import Producer
from roomler.sfu.engine.settings import EngineSettings
from roomler.sfu.rtcp import RtcpPacket

FIXTURES = Path(__file__).parent.parent / "fixtures"
VIDEO = json.loads((FIXTURES / "chrome_produce_video.json").read_text())
SIMULCAST = json.loads((FIXTURES / "chrome_produce_video_simulcast.json").read_text())
CAPS = json.loads((FIXTURES / "chrome_device_rtp_capabilities.json").read_text())
ROUTER_CAPS = ortc.generate_router_rtp_capabilities(DEFAULT_MEDIA_CODECS)
# Chrome's extension ids in both fixtures.
MID, RID, RRID = 4, 10, 11


class RecordingSender:
    """A MediaSender that records what it is asked to send."""

    id = "transport"
    rtcp_ssrc = 1234
    can_send = True

    def __init__(self) -> None:
        self.rtcp: list[RtcpPacket] = []

    def send_rtp(self, packet: bytes) -> bytes | None:
        return packet

    def send_protected(self, data: bytes) -> None:
        pass

    def send_rtcp(self, packets: Iterable[RtcpPacket]) -> None:
        self.rtcp.extend(packets)

    def next_transport_sequence(self) -> int:
        return 0

    def retransmission_allowed(self, now: float) -> bool:
        return True

    resend_interval = 0.0


def make_producer(
    loop: asyncio.AbstractEventLoop, params: dict[str, Any], producer_id: str = "p"
) -> Producer:
    return Producer(
        producer_id,
        "video",
        copy.deepcopy(params),
        router_capabilities=ROUTER_CAPS,
        sender=RecordingSender(),
        loop=loop,
        settings=EngineSettings(),
        emit=lambda *_: None,
        on_close=lambda _: None,
    )


def make_consumer(
    loop: asyncio.AbstractEventLoop, producer: Producer, mid: str, cls: type[Consumer] = Consumer
) -> Consumer:
    """A consumer of class ``cls`` (a Consumer, or a subclass such as SimulcastConsumer)."""
    params = ortc.get_consumer_rtp_parameters(producer.consumable_rtp_parameters, CAPS, mid=mid)
    return cls(
        f"c{mid}",
        producer,
        params,
        sender=RecordingSender(),
        loop=loop,
        settings=EngineSettings(),
        emit=lambda *_: None,
        on_close=lambda _: None,
    )
