"""One producer's frames into one WebM file, as they came: no decoding, no encoding.

PyAV (FFmpeg's libavformat) does the muxing. A stream is added by its encoder's name only
because FFmpeg's muxer wants codec parameters (size, sample rate, Opus's header); no frame
is ever given to that encoder -- the RTP payloads, once depacketized, are the packets.
A video file starts at its first keyframe (what comes before it cannot be decoded); the
size is read from that keyframe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from .depacketize import Frame, vp8_dimensions

__all__ = ["TrackWriter", "WrittenTrack"]

logger = logging.getLogger(__name__)

# mime type -> (FFmpeg encoder naming the codec, RTP clock rate)
_CODECS = {
    "video/vp8": ("libvpx", 90000),
    "video/vp9": ("libvpx-vp9", 90000),
    "audio/opus": ("libopus", 48000),
}
CONTENT_TYPE = {"audio": "audio/webm", "video": "video/webm"}
# VP9's size is not in a fixed place of its keyframes; the muxer needs one, the decoder
# reads the real one from the bitstream.
_DEFAULT_SIZE = (640, 480)


@dataclass(frozen=True, slots=True)
class WrittenTrack:
    path: Path
    frames: int
    duration_secs: float


class TrackWriter:
    """Frames of one RTP stream (see depacketize.FrameAssembler) into `path` (WebM)."""

    def __init__(self, path: Path, mime_type: str) -> None:
        mime = mime_type.lower()
        if mime not in _CODECS:
            raise ValueError(f"cannot record {mime_type}: only VP8, VP9 and Opus")
        self.path = path
        self.mime_type = mime
        self.kind = mime.split("/", 1)[0]
        self._encoder, self._clock = _CODECS[mime]
        self._time_base = Fraction(1, self._clock)
        self._container: av.container.OutputContainer | None = None
        self._stream: av.stream.Stream | None = None
        self._first_ts: int | None = None
        self._last_ts = 0
        self.frames = 0

    def __repr__(self) -> str:
        return f"TrackWriter({self.path.name}, {self.mime_type})"

    def write(self, frame: Frame) -> None:
        if self._stream is None:
            if self.kind == "video" and not frame.keyframe:
                return  # undecodable until the first keyframe
            self._open(frame)
        assert self._container is not None and self._stream is not None
        assert self._first_ts is not None
        if frame.timestamp <= self._last_ts and self.frames:
            return  # the muxer needs increasing times
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = frame.timestamp - self._first_ts
        packet.time_base = self._time_base
        packet.stream = self._stream
        if frame.keyframe and self.kind == "video":
            packet.is_keyframe = True
        self._container.mux(packet)
        self._last_ts = frame.timestamp
        self.frames += 1

    def _open(self, first: Frame) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(self.path), "w", format="webm")
        stream: av.stream.Stream
        if self.kind == "video":
            width, height = _DEFAULT_SIZE
            if self.mime_type == "video/vp8":
                width, height = vp8_dimensions(first.data)
            video = container.add_stream(self._encoder, rate=30)
            assert isinstance(video, av.VideoStream)
            video.width, video.height = width, height
            stream = video
        else:
            stream = container.add_stream(self._encoder, rate=self._clock)
        stream.time_base = self._time_base
        self._container, self._stream = container, stream
        self._first_ts = first.timestamp
        logger.info("%r started", self)

    def close(self) -> WrittenTrack | None:
        """Finish the file; None when nothing was written (no keyframe ever came)."""
        container, self._container = self._container, None
        if container is None:
            return None
        container.close()
        duration = (self._last_ts - (self._first_ts or 0)) / self._clock
        return WrittenTrack(self.path, self.frames, duration)
