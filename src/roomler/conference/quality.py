"""Each participant's network quality, 0..10, from the SFU's figures: `media:score`.

Every `SCORE_INTERVAL_SECS` the `QualityReporter` reads, for every participant
connection of every room this node hosts:

- **uplink**: the loss the SFU saw on each of its unpaused producers' streams since the
  last reading (packets lost / packets expected, from the cumulative counts of
  `producer.get_stats`), scored like mediasoup's producer score (`score_from_loss`: 10
  without loss, one point less per 2 % lost); an unpaused producer that carried nothing
  for a whole interval scores 0 (its media does not reach us). Its bitrate is reported.
- **downlink**: the lowest `consumer.score` of its consumers that are flowing (the loss
  its browser reports in RTCP receiver reports, pushed by the SFU, no request needed);
  unknown (null) until its browser has sent a report.
- **round-trip time**: from one flowing consumer's receiver reports (RFC 3550 A-LSR-DLSR).

The score is the worse of uplink and downlink, less a point per 100 ms of round trip
above 200 ms (at most 4): a clean link across the world is still a laggy call.
The room's participant connections hear the list whenever it differs from the last one
sent (a score moved, or someone joined or left), at most once an interval, from the
first reading with media on.

Why 2 s: the loss figures come from RTCP receiver reports, which a browser sends about
once a second per stream, so a shorter interval mostly repeats the last figure; people
read a quality indicator over seconds, and one that flickers tells them nothing; and the
cost stays small (per participant, one `get_stats` per producer and one per consumer
read for the round trip, each a worker channel round trip, every 2 s).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any

from roomler.conference.errors import SFU_ERRORS
from roomler.conference.rooms import MediaRoom, ParticipantMedia
from roomler.realtime.dispatcher import Dispatcher
from roomler.realtime.wire import encode
from roomler.sfu import Consumer, Producer

logger = logging.getLogger(__name__)

SCORE_INTERVAL_SECS = 2.0
MAX_SCORE = 10
# Round trips up to this are free; each 100 ms above costs a point, up to RTT_MAX_PENALTY.
RTT_FREE_MS = 200.0
RTT_STEP_MS = 100.0
RTT_MAX_PENALTY = 4


def score_from_loss(fraction: float) -> int:
    """0..10 from a loss fraction (0..1): 10 without loss, a point less per 2 %."""
    return max(0, MAX_SCORE - round(fraction * 100 / 2))


def loss_fraction(packets: int, lost: int, before: tuple[int, int] | None) -> float | None:
    """The share of packets lost since `before` (packets, lost), from cumulative counts;
    None without an earlier reading or when nothing was expected since."""
    if before is None:
        return None
    received = packets - before[0]
    missing = max(0, lost - before[1])
    expected = received + missing
    if expected <= 0:
        return None
    return missing / expected


def rtt_penalty(rtt_ms: float | None) -> int:
    if rtt_ms is None or rtt_ms <= RTT_FREE_MS:
        return 0
    return min(RTT_MAX_PENALTY, math.ceil((rtt_ms - RTT_FREE_MS) / RTT_STEP_MS))


def combine(uplink: int | None, downlink: int | None, rtt_ms: float | None) -> int | None:
    """The participant's score: the worse direction, less the round-trip penalty."""
    known = [score for score in (uplink, downlink) if score is not None]
    if not known:
        return None
    return max(0, min(known) - rtt_penalty(rtt_ms))


@dataclass
class Reading:
    """One participant connection's figures for one interval."""

    uplink: int | None = None
    downlink: int | None = None
    rtt_ms: float | None = None
    send_kbps: int = 0

    def out(self, participant: ParticipantMedia) -> dict[str, Any]:
        return {
            "user_id": participant.user_id,
            "connection_id": participant.connection_id,
            "score": combine(self.uplink, self.downlink, self.rtt_ms),
            "uplink": self.uplink,
            "downlink": self.downlink,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms),
            "send_kbps": self.send_kbps,
        }


def flowing(consumer: Consumer) -> bool:
    return not (consumer.closed or consumer.paused or consumer.producer_paused)


class QualityReporter:
    """Reads the figures of every room hosted here and tells each room its scores."""

    def __init__(self, rooms: dict[str, MediaRoom], dispatcher: Dispatcher) -> None:
        # The live table of `RoomManager.rooms`: rooms come and go between readings.
        self.rooms = rooms
        self.dispatcher = dispatcher
        # (producer id, stream index) -> (packets, lost) at the last reading.
        self._counts: dict[tuple[str, int], tuple[int, int]] = {}
        # conference id -> the last scores sent.
        self._sent: dict[str, list[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self, interval: float = SCORE_INTERVAL_SECS) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(interval))

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.report_all()
            except Exception:
                logger.exception("reading the participants' network quality failed")

    async def report_all(self) -> None:
        seen: set[tuple[str, int]] = set()
        for conference_id, room in list(self.rooms.items()):
            try:
                scores = [await self._read(p, seen) for p in list(room.participants.values())]
            except Exception:  # one room's odd figures must not silence the others
                logger.exception(
                    "reading the network quality of conference %s failed", conference_id
                )
                continue
            last = self._sent.get(conference_id)
            if room.closed or scores == last:
                continue
            if last is None and all(entry["score"] is None for entry in scores):
                continue  # no media has flowed yet: nothing to tell
            self._sent[conference_id] = scores
            frame = encode("media:score", {"conference_id": conference_id, "scores": scores})
            for connection_id in room.connection_ids():
                await self.dispatcher.send_to_connection(connection_id, frame)
        for key in [key for key in self._counts if key not in seen]:
            del self._counts[key]  # the producer closed
        for conference_id in [c for c in self._sent if c not in self.rooms]:
            del self._sent[conference_id]

    async def _read(
        self, participant: ParticipantMedia, seen: set[tuple[str, int]]
    ) -> dict[str, Any]:
        reading = Reading()
        uplinks = []
        for producer in list(participant.producers.values()):
            if producer.closed or producer.paused:
                continue
            score, kbps = await self._producer_score(producer, seen)
            reading.send_kbps += kbps
            if score is not None:
                uplinks.append(score)
        reading.uplink = min(uplinks) if uplinks else None
        consumers = [c for c in list(participant.consumers.values()) if flowing(c)]
        downlinks = [int(c.score["score"]) for c in consumers if c.score is not None]
        if downlinks:  # its browser has sent receiver reports
            reading.downlink = min(downlinks)
            reading.rtt_ms = await self._rtt_ms(consumers)
        return reading.out(participant)

    async def _producer_score(
        self, producer: Producer, seen: set[tuple[str, int]]
    ) -> tuple[int | None, int]:
        """The producer's uplink score (None before a second reading) and its kbit/s."""
        try:
            stats = await producer.get_stats()
        except SFU_ERRORS:
            return None, 0
        scores = []
        bitrate = int(stats.get("bitrate") or 0)
        # By position: a simulcast encoding known by its rid has no SSRC until media came.
        for index, stream in enumerate(stats.get("streams", [])):
            key = (producer.id, index)
            counts = (int(stream["packetCount"]), int(stream["packetsLost"]))
            before = self._counts.get(key)
            self._counts[key] = counts
            seen.add(key)
            if counts[0] == 0:
                continue  # nothing sent yet (the transport may still be connecting)
            if before is not None and counts[0] == before[0]:
                scores.append(0)  # a whole interval without a packet: not flowing
                continue
            fraction = loss_fraction(*counts, before)
            if fraction is not None:
                scores.append(score_from_loss(fraction))
        # Simulcast: the best encoding that flows is what the others receive.
        return (max(scores) if scores else None), round(bitrate / 1000)

    async def _rtt_ms(self, consumers: list[Consumer]) -> float | None:
        for consumer in consumers:
            try:
                stats = await consumer.get_stats()
            except SFU_ERRORS:
                continue
            rtt = stats.get("roundTripTime")
            if isinstance(rtt, int | float):
                return float(rtt) * 1000
        return None
