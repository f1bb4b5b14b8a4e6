"""RTCP compound packets (RFC 3550 section 6) and the feedback the SFU uses, sans-I/O.

:func:`parse_rtcp` splits a compound datagram into dataclasses and
:func:`serialize_rtcp` joins them again. Covered: SR, RR, SDES, BYE (RFC 3550),
generic NACK and PLI (RFC 4585), FIR (RFC 5104), REMB
(draft-alvestrand-rmcat-remb-03) and transport-wide congestion control
feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01, "TWCC").
Any other packet type or feedback format is kept as :class:`RawRtcp`, so a
compound packet from a newer browser still parses; truncated or inconsistent
packets raise ValueError.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

__all__ = [
    "Bye",
    "Fir",
    "GenericNack",
    "Pli",
    "RawRtcp",
    "ReceiverReport",
    "Remb",
    "ReportBlock",
    "RtcpPacket",
    "Sdes",
    "SdesChunk",
    "SenderReport",
    "TransportFeedback",
    "TransportFeedbackBuilder",
    "ntp_from_unix",
    "ntp_middle_32",
    "ntp_to_unix",
    "parse_rtcp",
    "round_trip_time",
    "serialize_rtcp",
]

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_RTPFB = 205
RTCP_PSFB = 206

SDES_END = 0
SDES_CNAME = 1

_HEADER = struct.Struct("!BBH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_TWO_SSRC = struct.Struct("!II")
_TWO_U16 = struct.Struct("!HH")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_SENDER_INFO = struct.Struct("!IQIII")


def _pack(count: int, packet_type: int, body: bytes) -> bytes:
    """Prefix the common header (RFC 3550 section 6.4.1); pad to 32 bits with the P bit."""
    if not 0 <= count <= 31:
        raise ValueError(f"RTCP count/format {count} does not fit 5 bits")
    first = 0x80 | count
    pad = -len(body) % 4
    if pad:
        # RFC 3550 section 6.4.1: the last padding octet counts the padding.
        body += bytes(pad - 1) + bytes([pad])
        first |= 0x20
    return _HEADER.pack(first, packet_type, len(body) // 4) + body


def _check_length(data: bytes, needed: int, what: str) -> None:
    if len(data) < needed:
        raise ValueError(f"RTCP {what} is truncated")


# -- NTP times (RFC 3550 section 4) ----------------------------------------------

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01


def ntp_from_unix(unix_time: float) -> int:
    """The 64-bit NTP timestamp (32.32 fixed point since 1900) of a Unix time."""
    return int((unix_time + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def ntp_to_unix(ntp: int) -> float:
    """The Unix time of a 64-bit NTP timestamp (era 0)."""
    return ntp / (1 << 32) - NTP_UNIX_OFFSET


def ntp_middle_32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: an RR's LSR (RFC 3550 section 6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


def round_trip_time(arrival_ntp: int, lsr: int, dlsr: int) -> float:
    """RTT in seconds from a report block (RFC 3550 section 6.4.1: A - LSR - DLSR).

    ``arrival_ntp`` is the 64-bit NTP time the report arrived; ``lsr`` and
    ``dlsr`` are from the block, in units of 1/65536 s. A block with LSR 0
    (no SR received yet) has no RTT: ValueError.
    """
    if lsr == 0:
        raise ValueError("RTCP report block has no LSR, RTT is unknown")
    return ((ntp_middle_32(arrival_ntp) - lsr - dlsr) & 0xFFFFFFFF) / 65536


# -- reports (RFC 3550 sections 6.4.1 and 6.4.2) --------------------------------


@dataclass
class ReportBlock:
    """One reception report block (RFC 3550 section 6.4.1)."""

    ssrc: int
    fraction_lost: int = 0
    packets_lost: int = 0  # cumulative, signed 24 bits
    highest_sequence: int = 0  # extended highest sequence number received
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    SIZE: ClassVar[int] = 24

    @classmethod
    def parse(cls, data: bytes, pos: int) -> ReportBlock:
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, pos)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        lost = max(-(1 << 23), min(self.packets_lost, (1 << 23) - 1)) & 0xFFFFFF
        lost_word = ((self.fraction_lost & 0xFF) << 24) | lost
        return _REPORT_BLOCK.pack(
            self.ssrc, lost_word, self.highest_sequence, self.jitter, self.lsr, self.dlsr
        )


def _parse_blocks(payload: bytes, pos: int, count: int, what: str) -> list[ReportBlock]:
    _check_length(payload, pos + count * ReportBlock.SIZE, what)
    return [ReportBlock.parse(payload, pos + i * ReportBlock.SIZE) for i in range(count)]


def _serialize_blocks(reports: list[ReportBlock]) -> bytes:
    if len(reports) > 31:
        raise ValueError("RTCP report carries at most 31 report blocks")
    return b"".join(r.serialize() for r in reports)


@dataclass
class SenderReport:
    """SR (RFC 3550 section 6.4.1); profile-specific extensions are not kept."""

    ssrc: int
    ntp_timestamp: int = 0
    rtp_timestamp: int = 0
    packet_count: int = 0
    octet_count: int = 0
    reports: list[ReportBlock] = field(default_factory=list)

    packet_type: ClassVar[int] = RTCP_SR

    @classmethod
    def parse(cls, count: int, payload: bytes) -> SenderReport:
        _check_length(payload, _SENDER_INFO.size, "SR")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(payload)
        reports = _parse_blocks(payload, _SENDER_INFO.size, count, "SR report block")
        return cls(ssrc, ntp, rtp_ts, packets, octets, reports)

    def serialize(self) -> bytes:
        info = _SENDER_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        )
        return _pack(len(self.reports), RTCP_SR, info + _serialize_blocks(self.reports))


@dataclass
class ReceiverReport:
    """RR (RFC 3550 section 6.4.2)."""

    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)

    packet_type: ClassVar[int] = RTCP_RR

    @classmethod
    def parse(cls, count: int, payload: bytes) -> ReceiverReport:
        _check_length(payload, 4, "RR")
        (ssrc,) = _U32.unpack_from(payload)
        return cls(ssrc, _parse_blocks(payload, 4, count, "RR report block"))

    def serialize(self) -> bytes:
        body = _U32.pack(self.ssrc) + _serialize_blocks(self.reports)
        return _pack(len(self.reports), RTCP_RR, body)


# -- SDES and BYE (RFC 3550 sections 6.5 and 6.6) --------------------------------


@dataclass
class SdesChunk:
    """One SDES chunk: an SSRC and its (item type, value) list (RFC 3550 section 6.5)."""

    ssrc: int
    items: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def cname(self) -> str | None:
        for item_type, value in self.items:
            if item_type == SDES_CNAME:
                return value.decode("utf-8", errors="replace")
        return None

    def serialize(self) -> bytes:
        out = _U32.pack(self.ssrc)
        for item_type, value in self.items:
            if not 1 <= item_type <= 255 or len(value) > 255:
                raise ValueError("RTCP SDES item needs a type 1..255 and at most 255 bytes")
            out += bytes([item_type, len(value)]) + value
        # One null octet ends the list, more pad the chunk to 32 bits.
        return out + bytes(4 - len(out) % 4)


def _parse_sdes_chunk(payload: bytes, pos: int) -> tuple[SdesChunk, int]:
    _check_length(payload, pos + 4, "SDES chunk")
    chunk = SdesChunk(_U32.unpack_from(payload, pos)[0])
    pos += 4
    while True:
        _check_length(payload, pos + 1, "SDES chunk")
        item_type = payload[pos]
        if item_type == SDES_END:
            return chunk, (pos + 4) & ~3
        _check_length(payload, pos + 2, "SDES item")
        end = pos + 2 + payload[pos + 1]
        _check_length(payload, end, "SDES item")
        chunk.items.append((item_type, payload[pos + 2 : end]))
        pos = end


@dataclass
class Sdes:
    """SDES (RFC 3550 section 6.5)."""

    chunks: list[SdesChunk] = field(default_factory=list)

    packet_type: ClassVar[int] = RTCP_SDES

    @classmethod
    def parse(cls, count: int, payload: bytes) -> Sdes:
        chunks = []
        pos = 0
        for _ in range(count):
            chunk, pos = _parse_sdes_chunk(payload, pos)
            chunks.append(chunk)
        return cls(chunks)

    def serialize(self) -> bytes:
        if len(self.chunks) > 31:
            raise ValueError("RTCP SDES carries at most 31 chunks")
        body = b"".join(chunk.serialize() for chunk in self.chunks)
        return _pack(len(self.chunks), RTCP_SDES, body)


@dataclass
class Bye:
    """BYE (RFC 3550 section 6.6) with its optional reason."""

    ssrcs: list[int] = field(default_factory=list)
    reason: bytes | None = None

    packet_type: ClassVar[int] = RTCP_BYE

    @classmethod
    def parse(cls, count: int, payload: bytes) -> Bye:
        _check_length(payload, 4 * count, "BYE")
        ssrcs = list(struct.unpack_from(f"!{count}I", payload))
        pos = 4 * count
        if pos >= len(payload):
            return cls(ssrcs)
        end = pos + 1 + payload[pos]
        _check_length(payload, end, "BYE reason")
        return cls(ssrcs, payload[pos + 1 : end])

    def serialize(self) -> bytes:
        if len(self.ssrcs) > 31:
            raise ValueError("RTCP BYE carries at most 31 SSRCs")
        body = struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        if self.reason is not None:
            if len(self.reason) > 255:
                raise ValueError("RTCP BYE reason is longer than 255 bytes")
            text = bytes([len(self.reason)]) + self.reason
            body += text + bytes(-len(text) % 4)
        return _pack(len(self.ssrcs), RTCP_BYE, body)


# -- transport layer feedback (PT 205) -------------------------------------------


def _feedback_ssrcs(payload: bytes, what: str) -> tuple[int, int]:
    """Sender and media SSRC of a feedback message (RFC 4585 section 6.1)."""
    _check_length(payload, 8, what)
    sender, media = _TWO_SSRC.unpack_from(payload)
    return int(sender), int(media)


@dataclass
class GenericNack:
    """Generic NACK (RFC 4585 section 6.2.1), as the list of lost sequence numbers."""

    sender_ssrc: int
    media_ssrc: int
    lost: list[int] = field(default_factory=list)

    packet_type: ClassVar[int] = RTCP_RTPFB
    fmt: ClassVar[int] = 1

    @classmethod
    def parse(cls, count: int, payload: bytes) -> GenericNack:
        sender, media = _feedback_ssrcs(payload, "NACK")
        if len(payload) == 8 or len(payload) % 4:
            raise ValueError("RTCP NACK has an invalid FCI length")
        lost: list[int] = []
        for pos in range(8, len(payload), 4):
            pid, blp = _TWO_U16.unpack_from(payload, pos)
            lost.append(pid)
            lost.extend((pid + bit + 1) & 0xFFFF for bit in range(16) if blp >> bit & 1)
        return cls(sender, media, lost)

    def serialize(self) -> bytes:
        if not self.lost:
            raise ValueError("RTCP NACK needs at least one lost sequence number")
        fci = b"".join(_TWO_U16.pack(pid, blp) for pid, blp in _nack_items(self.lost))
        return _pack(self.fmt, RTCP_RTPFB, _TWO_SSRC.pack(self.sender_ssrc, self.media_ssrc) + fci)


def _nack_items(lost: Iterable[int]) -> list[tuple[int, int]]:
    """Group sequence numbers into (PID, BLP) pairs: BLP bit i is PID + i + 1.

    Numbers are taken in the given order (send them ascending, modulo 2^16);
    one that is not within the 16 after the current PID starts a new pair.
    """
    items: list[tuple[int, int]] = []
    pid = -1
    blp = 0
    for seq in lost:
        seq &= 0xFFFF
        distance = (seq - pid) & 0xFFFF
        if pid >= 0 and distance <= 16:
            blp |= (1 << (distance - 1)) if distance else 0
            continue
        if pid >= 0:
            items.append((pid, blp))
        pid, blp = seq, 0
    if pid >= 0:
        items.append((pid, blp))
    return items


# Packet status symbols of TWCC feedback (draft-holmer-...-01 section 3.1.1).
NOT_RECEIVED = 0
SMALL_DELTA = 1
LARGE_DELTA = 2
DELTA_TICK_US = 250
REFERENCE_TICK_US = 64_000


@dataclass
class TransportFeedback:
    """Transport-wide CC feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01 s3.1).

    ``statuses`` has one symbol per packet from ``base_sequence`` on
    (NOT_RECEIVED, SMALL_DELTA or LARGE_DELTA); ``deltas`` has one receive
    delta per received packet, in 250 µs ticks; ``reference_time`` is in
    64 ms units (24 bits).
    """

    sender_ssrc: int
    media_ssrc: int
    base_sequence: int
    reference_time: int
    feedback_count: int
    statuses: list[int] = field(default_factory=list)
    deltas: list[int] = field(default_factory=list)

    packet_type: ClassVar[int] = RTCP_RTPFB
    fmt: ClassVar[int] = 15

    def arrivals(self) -> list[tuple[int, int | None]]:
        """(sequence number, arrival µs in the reference clock or None if lost)."""
        now = self.reference_time * REFERENCE_TICK_US
        result: list[tuple[int, int | None]] = []
        deltas = iter(self.deltas)
        for index, status in enumerate(self.statuses):
            seq = (self.base_sequence + index) & 0xFFFF
            if status == NOT_RECEIVED:
                result.append((seq, None))
                continue
            now += next(deltas) * DELTA_TICK_US
            result.append((seq, now))
        return result

    @classmethod
    def parse(cls, count: int, payload: bytes) -> TransportFeedback:
        sender, media = _feedback_ssrcs(payload, "TWCC feedback")
        _check_length(payload, 16, "TWCC feedback")
        base, status_count, ref_and_count = _TWCC_HEAD.unpack_from(payload, 8)
        statuses, pos = _decode_chunks(payload, 16, status_count)
        deltas = _decode_deltas(payload, pos, statuses)
        return cls(sender, media, base, ref_and_count >> 8, ref_and_count & 0xFF, statuses, deltas)

    def serialize(self) -> bytes:
        self._validate()
        head = _TWO_SSRC.pack(self.sender_ssrc, self.media_ssrc) + _TWCC_HEAD.pack(
            self.base_sequence & 0xFFFF,
            len(self.statuses),
            ((self.reference_time & 0xFFFFFF) << 8) | (self.feedback_count & 0xFF),
        )
        chunks = b"".join(_U16.pack(chunk) for chunk in _encode_chunks(self.statuses))
        return _pack(self.fmt, RTCP_RTPFB, head + chunks + _encode_deltas(self))

    def _validate(self) -> None:
        if not 1 <= len(self.statuses) <= 0xFFFF:
            raise ValueError("RTCP TWCC feedback needs 1..65535 packet statuses")
        received = [s for s in self.statuses if s != NOT_RECEIVED]
        if len(received) != len(self.deltas):
            raise ValueError("RTCP TWCC feedback needs one delta per received packet")
        for status, delta in zip(received, self.deltas, strict=True):
            if status == SMALL_DELTA and not 0 <= delta <= 255:
                raise ValueError(f"RTCP TWCC small delta {delta} is not 0..255")
            if status == LARGE_DELTA and not -32768 <= delta <= 32767:
                raise ValueError(f"RTCP TWCC large delta {delta} does not fit 16 bits")
            if status not in (SMALL_DELTA, LARGE_DELTA):
                raise ValueError(f"RTCP TWCC packet status {status} is invalid")


_TWCC_HEAD = struct.Struct("!HHI")
_I16 = struct.Struct("!h")
_RUN_LENGTH_MAX = 0x1FFF


def _decode_chunks(payload: bytes, pos: int, count: int) -> tuple[list[int], int]:
    """Packet chunks (draft section 3.1.3 run length, 3.1.4 status vector)."""
    statuses: list[int] = []
    while len(statuses) < count:
        _check_length(payload, pos + 2, "TWCC packet chunk")
        (chunk,) = _U16.unpack_from(payload, pos)
        pos += 2
        if not chunk & 0x8000:  # T=0: run length chunk
            statuses.extend([(chunk >> 13) & 0x3] * min(chunk & _RUN_LENGTH_MAX, count))
        elif not chunk & 0x4000:  # T=1, S=0: 14 one-bit symbols
            statuses.extend((chunk >> shift) & 0x1 for shift in range(13, -1, -1))
        else:  # T=1, S=1: 7 two-bit symbols
            statuses.extend((chunk >> shift) & 0x3 for shift in range(12, -1, -2))
    del statuses[count:]
    if 3 in statuses:
        raise ValueError("RTCP TWCC feedback uses the reserved packet status 3")
    return statuses, pos


def _decode_deltas(payload: bytes, pos: int, statuses: list[int]) -> list[int]:
    """Receive deltas (draft section 3.1.5): 1 byte unsigned or 2 bytes signed."""
    deltas: list[int] = []
    for status in statuses:
        if status == SMALL_DELTA:
            _check_length(payload, pos + 1, "TWCC receive delta")
            deltas.append(payload[pos])
            pos += 1
        elif status == LARGE_DELTA:
            _check_length(payload, pos + 2, "TWCC receive delta")
            deltas.append(_I16.unpack_from(payload, pos)[0])
            pos += 2
    return deltas


def _encode_chunks(statuses: list[int]) -> list[int]:
    """Greedy chunking: long runs as run length, else the densest status vector."""
    chunks: list[int] = []
    pos = 0
    total = len(statuses)
    while pos < total:
        symbol = statuses[pos]
        run = 1
        while pos + run < total and run < _RUN_LENGTH_MAX and statuses[pos + run] == symbol:
            run += 1
        window = statuses[pos : pos + 14]
        if run >= len(window) or (run >= 7 and LARGE_DELTA in window):
            chunks.append((symbol << 13) | run)
            pos += run
        elif LARGE_DELTA not in window:
            window += [0] * (14 - len(window))
            chunks.append(0x8000 | sum(s << (13 - i) for i, s in enumerate(window)))
            pos += 14
        else:
            window = window[:7] + [0] * (7 - len(window[:7]))
            chunks.append(0xC000 | sum(s << (12 - 2 * i) for i, s in enumerate(window)))
            pos += 7
    return chunks


def _encode_deltas(feedback: TransportFeedback) -> bytes:
    received = (s for s in feedback.statuses if s != NOT_RECEIVED)
    return b"".join(
        bytes([delta]) if status == SMALL_DELTA else _I16.pack(delta)
        for status, delta in zip(received, feedback.deltas, strict=True)
    )


class TransportFeedbackBuilder:
    """Receiver side of TWCC: feed arrivals, get feedback packets (draft section 3.1).

    Each :meth:`build` reports every sequence number from the first one not
    yet reported up to the highest received, in as many packets as
    ``max_packet_size`` and the 16-bit delta range need. Packets arriving
    after their sequence number was already reported (as lost) are ignored.
    """

    MAX_PENDING = 1 << 15

    def __init__(self, sender_ssrc: int, media_ssrc: int = 0, max_packet_size: int = 1200) -> None:
        if max_packet_size < 64:
            raise ValueError("TWCC feedback max_packet_size must be at least 64 bytes")
        self.sender_ssrc = sender_ssrc
        self.media_ssrc = media_ssrc
        self.max_packet_size = max_packet_size
        self._arrivals: dict[int, int] = {}
        self._next: int | None = None  # first unreported unwrapped seq
        self._highest = -1  # highest unwrapped seq seen
        self._feedback_count = 0

    def add(self, sequence_number: int, arrival_us: int) -> None:
        """Record that transport-wide seq ``sequence_number`` arrived at ``arrival_us``."""
        seq = self._unwrap(sequence_number & 0xFFFF)
        if self._next is not None and seq < self._next:
            return
        if len(self._arrivals) >= self.MAX_PENDING:
            return
        self._arrivals.setdefault(seq, arrival_us)
        self._highest = max(self._highest, seq)

    def _unwrap(self, seq: int) -> int:
        if self._highest < 0:
            return seq
        delta = ((seq - self._highest + 0x8000) & 0xFFFF) - 0x8000
        return self._highest + delta

    def build(self) -> list[TransportFeedback]:
        """Feedback for everything received since the last call (maybe none)."""
        packets = []
        while self._arrivals:
            packets.append(self._build_one())
        return packets

    def _build_one(self) -> TransportFeedback:
        start = min(self._arrivals) if self._next is None else self._next
        first_arrival = self._arrivals[min(self._arrivals)]
        reference = first_arrival // REFERENCE_TICK_US
        clock = reference * REFERENCE_TICK_US
        statuses: list[int] = []
        deltas: list[int] = []
        size = 20 + 2
        seq = start
        while seq <= self._highest and len(statuses) < 0xFFFF and size < self.max_packet_size:
            arrival = self._arrivals.get(seq)
            if arrival is None:
                statuses.append(NOT_RECEIVED)
            else:
                ticks = round((arrival - clock) / DELTA_TICK_US)
                if not -32768 <= ticks <= 32767:
                    break
                status = SMALL_DELTA if 0 <= ticks <= 255 else LARGE_DELTA
                statuses.append(status)
                deltas.append(ticks)
                clock += ticks * DELTA_TICK_US
                size += status
                del self._arrivals[seq]
            size += 2 if len(statuses) % 7 == 0 else 0
            seq += 1
        self._next = seq
        feedback = TransportFeedback(
            self.sender_ssrc, self.media_ssrc, start & 0xFFFF,
            reference & 0xFFFFFF, self._feedback_count, statuses, deltas,
        )  # fmt: skip
        self._feedback_count = (self._feedback_count + 1) & 0xFF
        return feedback


# -- payload-specific feedback (PT 206) ------------------------------------------


@dataclass
class Pli:
    """Picture Loss Indication (RFC 4585 section 6.3.1)."""

    sender_ssrc: int
    media_ssrc: int

    packet_type: ClassVar[int] = RTCP_PSFB
    fmt: ClassVar[int] = 1

    @classmethod
    def parse(cls, count: int, payload: bytes) -> Pli:
        return cls(*_feedback_ssrcs(payload, "PLI"))

    def serialize(self) -> bytes:
        return _pack(self.fmt, RTCP_PSFB, _TWO_SSRC.pack(self.sender_ssrc, self.media_ssrc))


_FIR_ENTRY = struct.Struct("!IB3x")


@dataclass
class Fir:
    """Full Intra Request (RFC 5104 section 4.3.1): (media SSRC, command seq) entries."""

    sender_ssrc: int
    entries: list[tuple[int, int]] = field(default_factory=list)
    media_ssrc: int = 0  # RFC 5104 section 4.3.1.2: unused, 0

    packet_type: ClassVar[int] = RTCP_PSFB
    fmt: ClassVar[int] = 4

    @classmethod
    def parse(cls, count: int, payload: bytes) -> Fir:
        sender, media = _feedback_ssrcs(payload, "FIR")
        if len(payload) == 8 or len(payload) % 8:
            raise ValueError("RTCP FIR has an invalid FCI length")
        entries = []
        for pos in range(8, len(payload), 8):
            ssrc, seq = _FIR_ENTRY.unpack_from(payload, pos)
            entries.append((int(ssrc), int(seq)))
        return cls(sender, entries, media)

    def serialize(self) -> bytes:
        fci = b"".join(_FIR_ENTRY.pack(ssrc, seq & 0xFF) for ssrc, seq in self.entries)
        return _pack(self.fmt, RTCP_PSFB, _TWO_SSRC.pack(self.sender_ssrc, self.media_ssrc) + fci)


@dataclass
class Remb:
    """Receiver Estimated Max Bitrate (draft-alvestrand-rmcat-remb-03 section 2.2)."""

    sender_ssrc: int
    bitrate: int  # bits per second
    ssrcs: list[int] = field(default_factory=list)
    media_ssrc: int = 0  # always 0 for REMB

    packet_type: ClassVar[int] = RTCP_PSFB
    fmt: ClassVar[int] = 15
    IDENTIFIER: ClassVar[bytes] = b"REMB"

    @classmethod
    def parse(cls, count: int, payload: bytes) -> Remb:
        sender, media = _feedback_ssrcs(payload, "REMB")
        _check_length(payload, 16, "REMB")
        if payload[8:12] != cls.IDENTIFIER:
            raise ValueError("RTCP application feedback is not REMB")
        (word,) = _U32.unpack_from(payload, 12)
        num_ssrc = word >> 24
        _check_length(payload, 16 + 4 * num_ssrc, "REMB SSRC list")
        ssrcs = list(struct.unpack_from(f"!{num_ssrc}I", payload, 16))
        exponent, mantissa = (word >> 18) & 0x3F, word & 0x3FFFF
        return cls(sender, mantissa << exponent, ssrcs, media)

    def serialize(self) -> bytes:
        if self.bitrate < 0 or len(self.ssrcs) > 255:
            raise ValueError("RTCP REMB needs a bitrate >= 0 and at most 255 SSRCs")
        exponent = max(0, self.bitrate.bit_length() - 18)
        if exponent > 63:
            raise ValueError("RTCP REMB bitrate does not fit 18-bit mantissa and 6-bit exponent")
        word = (len(self.ssrcs) << 24) | (exponent << 18) | (self.bitrate >> exponent)
        body = _TWO_SSRC.pack(self.sender_ssrc, self.media_ssrc) + self.IDENTIFIER
        body += _U32.pack(word) + struct.pack(f"!{len(self.ssrcs)}I", *self.ssrcs)
        return _pack(self.fmt, RTCP_PSFB, body)


# -- anything else ------------------------------------------------------------------


@dataclass
class RawRtcp:
    """A packet type or feedback format not decoded here, kept as bytes.

    ``count`` is the 5-bit count/FMT field; ``payload`` follows the 4-byte
    header, with any RTCP padding removed.
    """

    packet_type: int
    count: int
    payload: bytes

    def serialize(self) -> bytes:
        return _pack(self.count, self.packet_type, self.payload)


RtcpPacket = (
    SenderReport | ReceiverReport | Sdes | Bye | GenericNack | TransportFeedback
    | Pli | Fir | Remb | RawRtcp
)  # fmt: skip

_PARSERS: dict[tuple[int, int | None], Callable[[int, bytes], RtcpPacket]] = {
    (RTCP_SR, None): SenderReport.parse,
    (RTCP_RR, None): ReceiverReport.parse,
    (RTCP_SDES, None): Sdes.parse,
    (RTCP_BYE, None): Bye.parse,
    (RTCP_RTPFB, GenericNack.fmt): GenericNack.parse,
    (RTCP_RTPFB, TransportFeedback.fmt): TransportFeedback.parse,
    (RTCP_PSFB, Pli.fmt): Pli.parse,
    (RTCP_PSFB, Fir.fmt): Fir.parse,
}


def _parse_one(count: int, packet_type: int, payload: bytes) -> RtcpPacket:
    if packet_type == RTCP_PSFB and count == Remb.fmt and payload[8:12] == Remb.IDENTIFIER:
        return Remb.parse(count, payload)
    parser = _PARSERS.get((packet_type, None)) or _PARSERS.get((packet_type, count))
    if parser is None:
        return RawRtcp(packet_type, count, payload)
    return parser(count, payload)


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Split a compound RTCP datagram into packets (RFC 3550 section 6.1)."""
    if not data:
        raise ValueError("RTCP packet is empty")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise ValueError("RTCP packet length is less than 4 bytes")
        first, packet_type, length = _HEADER.unpack_from(data, pos)
        if first >> 6 != 2:
            raise ValueError("RTCP packet has invalid version")
        end = pos + 4 + length * 4
        if end > len(data):
            raise ValueError("RTCP packet is truncated")
        payload_end = end
        if first & 0x20:
            padding = data[end - 1]
            if padding == 0 or padding > length * 4:
                raise ValueError("RTCP packet has invalid padding length")
            payload_end -= padding
        packets.append(_parse_one(first & 0x1F, packet_type, bytes(data[pos + 4 : payload_end])))
        pos = end
    return packets


def serialize_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """Join packets into one compound RTCP datagram (RFC 3550 section 6.1)."""
    return b"".join(packet.serialize() for packet in packets)
