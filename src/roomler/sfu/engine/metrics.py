"""A worker's figures for monitoring (``worker.get_metrics``), summed over its objects.

The engine objects keep their own counters (plain integers on the packet path); this
module only adds them up when asked. A closed object's counts are kept in
:class:`RetiredCounts` when it leaves :class:`~.router.WorkerObjects`, so the totals
never go down while the worker lives (Prometheus counters must not).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .consumer import Consumer
    from .media_transport import MediaTransport
    from .producer import Producer


@dataclass
class RetiredCounts:
    """Counts of one worker's objects, closed ones included once they are added."""

    rtp_packets_in: int = 0
    rtp_bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    packets_lost_in: int = 0  # reported missing by the producers' streams (sender -> SFU)
    packets_lost_out: int = 0  # reported lost by receivers in RTCP (SFU -> receiver)
    nacks_received: int = 0
    plis_received: int = 0

    def add_transport(self, transport: MediaTransport) -> None:
        self.rtp_packets_in += transport.rtp_packets_received
        self.rtp_bytes_in += transport.bytes_received
        self.packets_out += transport.packets_sent
        self.bytes_out += transport.bytes_sent

    def add_producer(self, producer: Producer) -> None:
        self.packets_lost_in += sum(max(0, stream.stats.lost) for stream in producer.streams)

    def add_consumer(self, consumer: Consumer) -> None:
        report = consumer.report
        self.packets_lost_out += max(0, report.packets_lost) if report is not None else 0
        self.nacks_received += consumer.nack_count
        self.plis_received += consumer.pli_count

    def plus(
        self,
        transports: Iterable[MediaTransport],
        producers: Iterable[Producer],
        consumers: Iterable[Consumer],
    ) -> RetiredCounts:
        """These counts plus those of the live objects."""
        total = RetiredCounts(**asdict(self))
        for transport in transports:
            total.add_transport(transport)
        for producer in producers:
            total.add_producer(producer)
        for consumer in consumers:
            total.add_consumer(consumer)
        return total


def worker_metrics(
    retired: RetiredCounts,
    routers: int,
    transports: Mapping[str, MediaTransport],
    producers: dict[str, Producer],
    consumers: dict[str, Consumer],
) -> dict[str, Any]:
    totals = retired.plus(transports.values(), producers.values(), consumers.values())
    cpu = os.times()
    send_bitrate = sum(float(t.get_stats()["sendBitrate"]) for t in transports.values())
    return {
        "pid": os.getpid(),
        "cpu_seconds": cpu.user + cpu.system,
        "routers": routers,
        "transports": len(transports),
        "producers": len(producers),
        "consumers": len(consumers),
        "send_bitrate": send_bitrate,
        **asdict(totals),
    }
