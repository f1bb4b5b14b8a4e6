"""Recording a conference: each producer of the room into a WebM file of its own.

**One file per producer, no transcoding.** The SFU never decodes media, and neither does
the recorder: each producer's RTP is depacketized (VP8, VP9, Opus; recording/depacketize.py)
and its frames muxed as they are into WebM (recording/writer.py, PyAV). A composed layout
would decode every video, draw a grid and encode it again: one or more cores for a
720p grid on a 2-core machine that also forwards the call. Separate files keep the
original quality and cost a few microseconds a packet; a player or an editor lines them
up by `offset_ms`.

**How the media reaches the recorder.** Just as a room spreads over routers
(conference/placement.py), each router with a recorded producer gets a `PipeTransport`
(roomler.sfu, plain RTP over UDP) whose far end is not another router but a
`RecordingSink` socket in this process; the router pipe-consumes every producer on it.
The worker processes forward as they always do; mediasoup apps do the same with a plain
RTP consumer into FFmpeg or GStreamer.

**Who.** The conference's organizer and the workspace's owners and admins -- those who may
end it -- start and stop it (`POST .../recording/start|stop`, api/conferences.py); the
room hears `media:recording_started {conference_id, started_by}` and
`media:recording_stopped {conference_id, stopped_by, recordings}`. Producers made while
recording are recorded from their first keyframe; the recording stops with the room.
When it stops, each file goes to the file storage (files/storage.py) under its
`Recording` row's id, and the temporary directory is removed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.conference.conference_media import ConferenceMedia
from roomler.conference.errors import SFU_ERRORS, RoomError
from roomler.conference.rooms import MediaRoom, ParticipantMedia
from roomler.db.models import Recording
from roomler.files.storage import FileStorage
from roomler.recording.sink import RecordingSink, Track, track_path
from roomler.recording.writer import CONTENT_TYPE, TrackWriter, WrittenTrack
from roomler.sfu import PipeTransport, Producer, Router

logger = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024


class NotRecording(RoomError):
    pass


@dataclass(eq=False)
class RoomRecording:
    """One run of recording a room: a pipe and a sink per router, a track per producer."""

    conference_id: str
    run_id: str
    started_by: str
    directory: Path
    started_at: float = field(default_factory=time.monotonic)
    pipes: dict[str, tuple[PipeTransport, RecordingSink]] = field(default_factory=dict)
    producers: set[str] = field(default_factory=set)

    def data(self) -> dict[str, Any]:
        return {"conference_id": self.conference_id, "started_by": self.started_by}


class Recordings:
    def __init__(
        self,
        media: ConferenceMedia,
        sessions: async_sessionmaker[AsyncSession],
        storage: FileStorage,
    ) -> None:
        self.media = media
        self.sessions = sessions
        self.storage = storage
        self.active: dict[str, RoomRecording] = {}
        media.producer_listeners.append(self._producer_added)
        media.closing_listeners.append(self._room_closing)

    def recording(self, conference_id: str) -> RoomRecording | None:
        return self.active.get(conference_id)

    async def start(self, conference_id: str, user_id: str) -> RoomRecording:
        room = self.media.room(conference_id)
        if room is None:
            raise NotRecording("the call is not running on this server")
        if conference_id in self.active:
            return self.active[conference_id]
        directory = Path(tempfile.mkdtemp(prefix=f"roomler-rec-{conference_id}-"))
        run = RoomRecording(conference_id, secrets.token_hex(8), user_id, directory)
        self.active[conference_id] = run
        for owner, producer in room.producers():
            await self._record(run, owner, producer)
        logger.info("recording %s started by %s", conference_id, user_id)
        await self.media.notices.publish(room.user_ids(), "media:recording_started", run.data())
        return run

    async def stop(
        self, conference_id: str, user_id: str | None, room: MediaRoom | None = None
    ) -> list[Recording]:
        """Finish and store the files; `room` when it is closing (no longer listed)."""
        run = self.active.pop(conference_id, None)
        if run is None:
            raise NotRecording("the call is not being recorded")
        saved = await self._finish(run)
        room = room or self.media.room(conference_id)
        if room is not None:
            data = {
                "conference_id": conference_id,
                "stopped_by": user_id,
                "recordings": [recording_out(r) for r in saved],
            }
            await self.media.notices.publish(room.user_ids(), "media:recording_stopped", data)
        return saved

    async def close(self) -> None:
        for conference_id in list(self.active):
            await self.stop(conference_id, None)

    # --- producers -------------------------------------------------------------------

    async def _producer_added(
        self, room: MediaRoom, owner: ParticipantMedia, producer: Producer
    ) -> None:
        run = self.active.get(room.conference_id)
        if run is not None:
            await self._record(run, owner, producer)

    async def _room_closing(self, room: MediaRoom) -> None:
        if room.conference_id in self.active:
            await self.stop(room.conference_id, None, room)

    async def _record(
        self, run: RoomRecording, owner: ParticipantMedia, producer: Producer
    ) -> None:
        """Pipe-consume `producer` into its router's sink; an SFU failure skips it."""
        if producer.id in run.producers:
            return
        run.producers.add(producer.id)
        try:
            pipe, sink = await self._pipe(run, producer.transport.router)
            consumer = await pipe.consume(producer.id)
        except SFU_ERRORS as exc:
            logger.warning("recording %s skips %r: %s", run.conference_id, producer, exc)
            return
        params = consumer.rtp_parameters
        codec = next(c for c in params["codecs"] if not c["mimeType"].lower().endswith("/rtx"))
        # Simulcast's encodings, lowest first: the sink records the best one sending.
        ssrcs = [int(encoding["ssrc"]) for encoding in params["encodings"]]
        try:
            writer = TrackWriter(track_path(run.directory, producer.id), codec["mimeType"])
        except ValueError as exc:  # H.264: not recorded
            logger.warning("recording %s skips %r: %s", run.conference_id, producer, exc)
            await consumer.close()
            return
        track = Track(
            ssrcs=ssrcs,
            payload_type=int(codec["payloadType"]),
            mime_type=codec["mimeType"],
            writer=writer,
            producer_id=producer.id,
            user_id=owner.user_id,
            kind=consumer.kind,
            started_at=time.monotonic() - run.started_at,
        )
        sink.add_track(track)
        consumer.on("close", lambda: sink.finish_track(track))

    async def _pipe(
        self, run: RoomRecording, router: Router
    ) -> tuple[PipeTransport, RecordingSink]:
        if router.id in run.pipes:
            return run.pipes[router.id]
        sink = await RecordingSink.listen(f"{run.conference_id}/{router.id[:8]}")
        try:
            pipe = await router.create_pipe_transport(listen_ip="127.0.0.1")
            sink.remote = (str(pipe.tuple["localIp"]), int(pipe.tuple["localPort"]))
            host, port = sink.address
            await pipe.connect(ip=host, port=port)
        except BaseException:
            sink.close()
            raise
        run.pipes[router.id] = (pipe, sink)
        return pipe, sink

    # --- finishing -----------------------------------------------------------------------

    async def _finish(self, run: RoomRecording) -> list[Recording]:
        written: list[tuple[Track, WrittenTrack]] = []
        for pipe, sink in run.pipes.values():
            if not pipe.closed:
                try:
                    await pipe.close()
                except SFU_ERRORS as exc:
                    logger.info("closing %r failed: %s", pipe, exc)
            written.extend(sink.close())
        try:
            return await self._store(run, written)
        finally:
            shutil.rmtree(run.directory, ignore_errors=True)

    async def _store(
        self, run: RoomRecording, written: list[tuple[Track, WrittenTrack]]
    ) -> list[Recording]:
        saved: list[Recording] = []
        async with self.sessions() as session:
            for track, file in written:
                row = Recording(
                    conference_id=run.conference_id,
                    run_id=run.run_id,
                    started_by=run.started_by,
                    user_id=track.user_id,
                    producer_id=track.producer_id,
                    kind=track.kind,
                    content_type=CONTENT_TYPE[track.kind],
                    size=0,
                    frames=file.frames,
                    duration_ms=round(file.duration_secs * 1000),
                    offset_ms=round(track.started_at * 1000),
                )
                session.add(row)
                await session.flush()  # the id is the storage key
                row.size = await self.storage.put(row.id, _read(file.path))
                saved.append(row)
            await session.commit()
        return saved


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:  # noqa: ASYNC230 -- each read is in a thread
        while chunk := await asyncio.to_thread(source.read, _READ_CHUNK):
            yield chunk


def recording_out(recording: Recording) -> dict[str, Any]:
    return {
        "id": recording.id,
        "conference_id": recording.conference_id,
        "run_id": recording.run_id,
        "started_by": recording.started_by,
        "user_id": recording.user_id,
        "producer_id": recording.producer_id,
        "kind": recording.kind,
        "content_type": recording.content_type,
        "size": recording.size,
        "frames": recording.frames,
        "duration_ms": recording.duration_ms,
        "offset_ms": recording.offset_ms,
        "created_at": recording.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
