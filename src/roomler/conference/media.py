"""`ConferenceMedia`: the SFU worker pool, the rooms on it, and what participants are told.

The pool of worker processes starts on first use (the first conference started), so a
server that never hosts a call never forks a worker. Both the REST API and the WebSocket
signaling go through this object for everything that changes who is in a room; it sends
the peer notifications:

- `media:producer_closed` for each producer a leaving participant had, then
  `media:peer_left` (with the `connection_id` when one connection left), to the users
  still in the room (user-level);
- `media:room_closed {conference_id, reason}` to every participant connection when a
  room goes away: `"ended"` (the conference ended) or `"worker_died"`.

With several nodes, `placement` (`roomler.cluster.conference`) records which node hosts
each room: `start` refuses with `RoomElsewhere` when another live node has it, and
`end`/`leave_user` for a room hosted elsewhere are carried out by that node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from roomler.conference.rooms import Departure, MediaRoom, RoomError, RoomManager
from roomler.config import MediasoupSettings
from roomler.context import ServerContext
from roomler.realtime.dispatcher import Dispatcher
from roomler.realtime.protocol import encode
from roomler.sfu.pool import WorkerPool, WorkerPoolSettings
from roomler.sfu.proxies import Router, Worker

logger = logging.getLogger(__name__)

# Where the server context keeps the service (`ServerContext.extras`).
CONFERENCE_KEY = "conference"

ROOM_ENDED = "ended"
ROOM_WORKER_DIED = "worker_died"


class RoomElsewhere(RoomError):
    """The conference's room is hosted by another node."""

    def __init__(self, conference_id: str, node_id: str, rtp_capabilities: dict[str, Any]):
        super().__init__(f"conference {conference_id} is hosted by node {node_id}")
        self.node_id = node_id
        self.rtp_capabilities = rtp_capabilities


class RoomPlacement(Protocol):
    """Where rooms live when several nodes share the conferences."""

    async def claim(self, conference_id: str) -> None:
        """Record this node as the host, or raise `RoomElsewhere`."""
        ...

    def hosted(self, conference_id: str, rtp_capabilities: dict[str, Any]) -> None: ...

    def released(self, conference_id: str) -> None: ...

    async def end_elsewhere(self, conference_id: str, reason: str) -> None: ...

    async def leave_elsewhere(self, conference_id: str, user_id: str) -> None: ...


def pool_settings(settings: MediasoupSettings) -> WorkerPoolSettings:
    """The pool's settings from ``ROOMLER__MEDIASOUP__*`` (`roomler.sfu` reads no config)."""
    return WorkerPoolSettings(
        num_workers=settings.num_workers,
        listen_ip=settings.listen_ip,
        announced_ip=settings.announced_ip,
        rtc_min_port=settings.rtc_min_port,
        rtc_max_port=settings.rtc_max_port,
    )


def media_of(ctx: ServerContext) -> ConferenceMedia:
    media: ConferenceMedia = ctx.extras[CONFERENCE_KEY]
    return media


class ConferenceMedia:
    def __init__(
        self,
        settings: MediasoupSettings,
        dispatcher: Dispatcher,
        *,
        pool_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.rooms = RoomManager()
        # Extra `WorkerPool` arguments (`handler=...` in tests); read when the pool starts.
        self.pool_options: dict[str, Any] = dict(pool_options or {})
        self._pool: WorkerPool | None = None
        self._pool_lock = asyncio.Lock()
        self._closed = False
        self.placement: RoomPlacement | None = None

    @property
    def pool_started(self) -> bool:
        return self._pool is not None

    async def pool(self) -> WorkerPool:
        """The running worker pool, started on the first call."""
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._closed:
                raise RuntimeError("the media service has shut down")
            if self._pool is None:
                pool = WorkerPool.from_settings(pool_settings(self.settings), **self.pool_options)
                pool.on_worker_died(self._worker_died)
                await pool.start()
                self._pool = pool
        return self._pool

    async def close(self) -> None:
        """Stop the workers (on server shutdown); every room goes with them."""
        async with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        for conference_id in list(self.rooms.rooms):
            self.rooms.remove_room(conference_id)
            self._released(conference_id)
        if pool is not None:
            await pool.close()

    # --- rooms -----------------------------------------------------------------------------

    async def start(self, conference_id: str) -> MediaRoom:
        """The conference's room; a router is placed on a worker if it has none."""
        placement = self.placement
        if placement is None:
            return await self.rooms.open_room(conference_id, self._create_router)
        if self.rooms.get_room(conference_id) is None:
            await placement.claim(conference_id)  # RoomElsewhere: another node has it
        try:
            room = await self.rooms.open_room(conference_id, self._create_router)
        except BaseException:
            if self.rooms.get_room(conference_id) is None:
                placement.released(conference_id)
            raise
        placement.hosted(conference_id, room.router.rtp_capabilities)
        return room

    def _released(self, conference_id: str) -> None:
        if self.placement is not None:
            self.placement.released(conference_id)

    async def _create_router(self) -> Router:
        pool = await self.pool()
        return await pool.create_router()

    async def end(self, conference_id: str, reason: str = ROOM_ENDED) -> MediaRoom | None:
        """Tell every participant connection the room closed, then close its router."""
        room = self.rooms.remove_room(conference_id)
        if room is None:
            if self.placement is not None:
                await self.placement.end_elsewhere(conference_id, reason)
            return None
        self._released(conference_id)
        await self._announce_closed(room, reason)
        try:
            await room.router.close()
        except Exception:
            logger.exception("closing the router of conference %s failed", conference_id)
        return room

    def _worker_died(self, worker: Worker, reason: str, router_ids: list[str]) -> Any:
        # Called by the pool; the rooms are forgotten at once, so no join lands in them.
        rooms = [
            self.rooms.remove_room(room.conference_id)
            for room in self.rooms.rooms_of_routers(router_ids)
        ]
        closed = [room for room in rooms if room is not None]
        if not closed:
            return None
        for room in closed:
            self._released(room.conference_id)
        logger.warning(
            "SFU worker %d died (%s): closing conferences %s",
            worker.pid,
            reason,
            ", ".join(room.conference_id for room in closed),
        )
        return self._announce_closed_all(closed, ROOM_WORKER_DIED)

    async def _announce_closed_all(self, rooms: list[MediaRoom], reason: str) -> None:
        for room in rooms:
            await self._announce_closed(room, reason)

    async def _announce_closed(self, room: MediaRoom, reason: str) -> None:
        frame = encode("media:room_closed", {"conference_id": room.conference_id, "reason": reason})
        for connection_id in room.connection_ids():
            await self.dispatcher.send_to_connection(connection_id, frame)

    # --- participants leaving --------------------------------------------------------------

    async def leave_connection(self, conference_id: str, connection_id: str) -> Departure | None:
        """One connection leaves (`media:leave`, or its WebSocket closed)."""
        departure = await self.rooms.close_participant(conference_id, connection_id)
        if departure is not None:
            await self._announce_departures(
                conference_id, [departure], exclude_connection=connection_id
            )
        return departure

    async def leave_user(self, conference_id: str, user_id: str) -> list[Departure]:
        """Every connection of the user leaves (the HTTP leave, which knows no connection)."""
        if self.placement is not None and self.rooms.get_room(conference_id) is None:
            await self.placement.leave_elsewhere(conference_id, user_id)
            return []
        departures = await self.rooms.close_participant_by_user(conference_id, user_id)
        if departures:
            await self._announce_departures(conference_id, departures)
        return departures

    async def _announce_departures(
        self,
        conference_id: str,
        departures: Iterable[Departure],
        *,
        exclude_connection: str | None = None,
    ) -> None:
        room = self.rooms.get_room(conference_id)
        remaining = room.user_ids() if room is not None else set()
        if not remaining:
            return
        # user id -> the connections of theirs that left, in order of departure
        left: dict[str, list[str]] = {}
        for departure in departures:
            for producer_id in departure.producer_ids:
                await self.publish(
                    remaining,
                    "media:producer_closed",
                    {"producer_id": producer_id, "user_id": departure.user_id},
                    exclude_connection=exclude_connection,
                )
            left.setdefault(departure.user_id, []).append(departure.connection_id)
        for user_id, connection_ids in left.items():
            data = {"user_id": user_id, "conference_id": conference_id}
            if len(connection_ids) == 1:
                # One connection left; without the field, all of the user's connections did.
                data["connection_id"] = connection_ids[0]
            await self.publish(
                remaining, "media:peer_left", data, exclude_connection=exclude_connection
            )

    async def publish(
        self,
        user_ids: Iterable[str],
        event_type: str,
        data: dict[str, Any],
        *,
        exclude_connection: str | None = None,
    ) -> None:
        """User-level delivery to `user_ids`, skipping one connection (the actor's)."""
        await self.dispatcher.broadcast(
            user_ids, encode(event_type, data), exclude_connection=exclude_connection
        )
