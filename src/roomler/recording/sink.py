"""The far end of a recording pipe: plain RTP in on a UDP socket, one WebM file per stream.

A router's `PipeTransport` (sfu/engine/pipe_transport.py) is connected to this socket
as if it were another router's, and pipe-consumes each producer being recorded: the
packets arrive exactly as the producer sent them (every simulcast encoding, each on its
own SSRC). `RecordingSink` keeps the streams it was told to record (`add_track`), drops
the rest, depacketizes, assembles frames and hands them to a `TrackWriter`. It asks for
a keyframe (RTCP PLI, RFC 4585 section 6.3.1, sent back to the pipe transport, which
passes it to the producer) while a video stream has none yet and after a lost frame.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from roomler.sfu.demux import PacketKind, classify
from roomler.sfu.rtcp import Pli
from roomler.sfu.rtp import read_header

from .depacketize import Depacketizer, FrameAssembler, depacketizer_for
from .writer import TrackWriter, WrittenTrack

__all__ = ["RecordingSink", "Track"]

logger = logging.getLogger(__name__)

# At most one keyframe request per stream in this many seconds.
KEY_FRAME_INTERVAL = 1.0
# A simulcast producer's encodings heard within this long of the start compete: the best
# one sending is recorded (a small camera sends only its low encodings).
CHOOSE_ENCODING_SECS = 0.5


@dataclass(eq=False)
class Track:
    """One recorded producer and what it is about (its owner): one of its encodings.

    `ssrcs` are the encodings' SSRCs, lowest first; `ssrc` the one recorded, chosen
    among those sending within CHOOSE_ENCODING_SECS of the first packet.
    """

    ssrcs: list[int]
    payload_type: int
    mime_type: str
    writer: TrackWriter
    producer_id: str
    user_id: str
    kind: str
    started_at: float  # loop time of the first packet: offset from the recording's start
    depacketize: Depacketizer = field(init=False)
    assembler: FrameAssembler = field(init=False)
    first_packet_at: float | None = None
    ssrc: int | None = None
    heard: set[int] = field(default_factory=set)
    last_key_request: float = float("-inf")
    invalid: int = 0

    def __post_init__(self) -> None:
        self.depacketize = depacketizer_for(self.mime_type)
        self.assembler = FrameAssembler(single_packet=self.kind == "audio")
        if len(self.ssrcs) == 1:
            self.ssrc = self.ssrcs[0]

    def choose(self, ssrc: int, now: float) -> bool:
        """Whether to record this packet of `ssrc`; picks the encoding once it may."""
        if self.ssrc is None:
            self.heard.add(ssrc)
            if self.first_packet_at is None:
                self.first_packet_at = now
            best = self.ssrcs[-1]
            if ssrc == best or now - self.first_packet_at >= CHOOSE_ENCODING_SECS:
                self.ssrc = max(self.heard, key=self.ssrcs.index)
        return ssrc == self.ssrc


class RecordingSink(asyncio.DatagramProtocol):
    """Receives the RTP of one pipe transport and writes its recorded streams."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tracks: dict[int, Track] = {}
        self.finished: list[tuple[Track, WrittenTrack]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] | None = None
        self._sender_ssrc = secrets.randbits(32)

    def __repr__(self) -> str:
        return f"RecordingSink({self.name})"

    @classmethod
    async def listen(cls, name: str, host: str = "127.0.0.1") -> RecordingSink:
        loop = asyncio.get_running_loop()
        _, sink = await loop.create_datagram_endpoint(lambda: cls(name), local_addr=(host, 0))
        return sink

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass

    def add_track(self, track: Track) -> None:
        for ssrc in track.ssrcs:
            self.tracks[ssrc] = track

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.remote is None or (addr[0], addr[1]) != self.remote:
            return
        if classify(data) is not PacketKind.RTP:
            return  # Sender Reports: the files carry the RTP timeline as it is
        try:
            self._on_rtp(data)
        except ValueError as exc:
            logger.debug("%r dropped a packet: %s", self, exc)
        except Exception:
            logger.exception("%r failed on a packet", self)

    def _on_rtp(self, data: bytes) -> None:
        header = read_header(data)
        track = self.tracks.get(header.ssrc)
        if track is None or header.payload_type != track.payload_type:
            return  # another encoding, or RTX
        now = asyncio.get_running_loop().time()
        chosen = track.ssrc
        if not track.choose(header.ssrc, now):
            return
        if chosen is None:  # just chosen: ask that encoding for a keyframe now
            track.last_key_request = float("-inf")
        try:
            fragment = track.depacketize(data[header.payload_start : header.payload_end])
        except ValueError:
            track.invalid += 1
            return
        dropped = track.assembler.dropped
        frames = track.assembler.push(
            header.sequence_number, header.timestamp, header.marker, fragment
        )
        for frame in frames:
            track.writer.write(frame)
        lost = track.assembler.dropped > dropped
        if track.kind == "video" and (track.writer.frames == 0 or lost):
            self._request_key_frame(track, now)

    def _request_key_frame(self, track: Track, now: float) -> None:
        if track.kind != "video" or self.transport is None or self.remote is None:
            return
        if track.ssrc is None:
            return
        if now - track.last_key_request < KEY_FRAME_INTERVAL:
            return
        track.last_key_request = now
        self.transport.sendto(Pli(self._sender_ssrc, track.ssrc).serialize(), self.remote)

    def finish_track(self, track: Track) -> None:
        """Stop recording one producer (it closed) and close its file."""
        if any(self.tracks.pop(ssrc, None) is track for ssrc in track.ssrcs):
            self._close(track)

    def close(self) -> list[tuple[Track, WrittenTrack]]:
        """Close the socket and every file; what was written, with its track."""
        if self.transport is not None:
            self.transport.close()
        for track in set(self.tracks.values()):
            self.finish_track(track)
        return self.finished

    def _close(self, track: Track) -> None:
        try:
            written = track.writer.close()
        except Exception:
            logger.exception("%r could not finish %r", self, track.writer)
            return
        if written is not None:
            self.finished.append((track, written))


def track_path(directory: Path, producer_id: str) -> Path:
    return directory / f"{producer_id}.webm"
