"""`ConferenceMedia`: starting, joining, leaving and ending a conference's media room.

Everything that changes who is in a room goes through this object, from the REST API
and the WebSocket signaling alike: it checks the conference's status in the database,
places the room's router on a worker under the conference's lock, turns every SFU
failure into `RoomError` (conference/errors.py), and has the others told
(conference/room_notices.py). `media:room_closed {conference_id, reason}` goes to every
participant connection when a room goes away: `"ended"` (the conference ended),
`"worker_died"` (conference/worker_loss.py) or `"server_shutdown"` (`drain`), and to a
user's participant connections when they lose access to it (`conference/access.py`):
`"access_revoked"`, or `"channel_deleted"` for everyone when its channel goes.

Its parts with one job each: the rejoin grace period (conference/rejoin_grace.py), which
router of a room a joiner goes to (conference/spreading.py), the loss of a worker
(conference/worker_loss.py) and who is speaking (conference/speakers.py).

The pool of worker processes starts on first use (the first conference started), so a
server that never hosts a call never forks a worker.

With several nodes, a `RoomPlacement` (`roomler.cluster.conference`) given at
construction records which node hosts each room: a start refuses with `RoomElsewhere`
when another live node has it, and an end, a user's leave or a revoked access for a
room hosted elsewhere is carried out by that node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.conference.errors import (
    SFU_ERRORS,
    ConferenceEnded,
    MediaUnavailable,
    RoomElsewhere,
    RoomError,
)
from roomler.conference.queries import ENDED, IN_PROGRESS, close_participation, member_conference
from roomler.conference.rejoin_grace import RejoinGrace
from roomler.conference.room_notices import RoomNotices
from roomler.conference.rooms import (
    Departure,
    MediaRoom,
    ParticipantMedia,
    RoomManager,
)
from roomler.conference.speakers import SpeakerNotices
from roomler.conference.spreading import NodeWorkers, RoomSpreading
from roomler.conference.worker_loss import WorkerLoss
from roomler.config import MediasoupSettings
from roomler.db.models import Conference, User, utcnow
from roomler.realtime.dispatcher import Dispatcher
from roomler.sfu import Producer, Router, Worker, WorkerPool, WorkerPoolSettings
from roomler.tasks import BackgroundTasks

logger = logging.getLogger(__name__)

ROOM_ENDED = "ended"
# The hosting server is shutting down (SIGTERM): the conference goes on; join it again.
ROOM_SERVER_SHUTDOWN = "server_shutdown"


class RoomPlacement(Protocol):
    """Where rooms live when several nodes share the conferences."""

    async def claim(self, conference_id: str) -> None:
        """Record this node as the host, or raise `RoomElsewhere`."""
        ...

    def hosted(self, conference_id: str, rtp_capabilities: dict[str, Any]) -> None: ...

    def released(self, conference_id: str) -> None: ...

    async def end_elsewhere(self, conference_id: str, reason: str) -> None: ...

    async def leave_elsewhere(self, conference_id: str, user_id: str) -> None: ...

    async def revoke_elsewhere(
        self, conference_id: str, user_id: str | None, reason: str
    ) -> None: ...

    async def keeps_attendance(self, conference_id: str, hold_secs: float) -> bool:
        """Whether this node checks the participant records of a conference no live node
        hosts (its host died or shut down), for the next `hold_secs`."""
        ...


def pool_settings(settings: MediasoupSettings) -> WorkerPoolSettings:
    """The pool's settings from ``ROOMLER__MEDIASOUP__*`` (`roomler.sfu` reads no config)."""
    names = {field.name for field in fields(WorkerPoolSettings)}
    return WorkerPoolSettings(**settings.model_dump(include=names))


ProducerListener = Callable[[MediaRoom, ParticipantMedia, Producer], Awaitable[None]]
RoomClosingListener = Callable[[MediaRoom], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StartedRoom:
    """What `POST .../start` answers: the router's capabilities, wherever it runs."""

    rtp_capabilities: dict[str, Any]
    # Whether this call moved the conference to in progress (it then announces it).
    newly_started: bool


class ConferenceMedia:
    def __init__(
        self,
        settings: MediasoupSettings,
        dispatcher: Dispatcher,
        sessions: async_sessionmaker[AsyncSession],
        *,
        placement: RoomPlacement | None = None,
        pool_options: dict[str, Any] | None = None,
        rejoin_grace_secs: float = 30.0,
    ) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.sessions = sessions
        self.placement = placement
        self.rejoin_grace_secs = rejoin_grace_secs
        self.rooms = RoomManager()
        self.notices = RoomNotices(self.rooms, dispatcher)
        # Who is speaking, relayed to each room (conference/speakers.py).
        self.speakers = SpeakerNotices(self.rooms, dispatcher)
        self._tasks = BackgroundTasks(logger, "a conference announcement failed")
        self.grace = RejoinGrace(self.notices, self._tasks, rejoin_grace_secs)
        self.spreading = RoomSpreading(settings.room_spread_consumers, self.speakers)
        self._worker_loss = WorkerLoss(self.rooms, self.notices, self._tasks, self._released)
        # Extra `WorkerPool` arguments (`handler=...` in tests); read when the pool starts.
        self.pool_options: dict[str, Any] = dict(pool_options or {})
        self._pool: WorkerPool | None = None
        self._pool_lock = asyncio.Lock()
        self._closed = False
        # Shutting down: no room is placed here any more (`drain`).
        self._draining = False
        # Counts revocations carried out here: a join that overlapped one checks again.
        self.revocations = 0
        # Told of each producer made in a room here, and of each room about to close
        # (conference/recording.py records them); none may raise.
        self.producer_listeners: list[ProducerListener] = []
        self.closing_listeners: list[RoomClosingListener] = []

    async def producer_added(
        self, room: MediaRoom, owner: ParticipantMedia, producer: Producer
    ) -> None:
        for listener in self.producer_listeners:
            await listener(room, owner, producer)

    def spread_over_nodes(self, node_workers: NodeWorkers) -> None:
        """Place each participant on a router of the node their connection is on."""
        self.spreading.node_workers = node_workers

    @property
    def draining(self) -> bool:
        """Shutting down: the rooms here are closed and no new one is placed here."""
        return self._draining

    @property
    def pool_started(self) -> bool:
        return self._pool is not None

    @property
    def started_pool(self) -> WorkerPool | None:
        """The worker pool if it has started (a scrape does not start it)."""
        return self._pool

    @property
    def live_workers(self) -> int:
        """SFU worker processes alive now (0 before the pool starts)."""
        return len(self._pool.workers) if self._pool is not None else 0

    async def pool(self) -> WorkerPool:
        """The running worker pool, started on the first call."""
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._closed:
                raise RuntimeError("the media service has shut down")
            if self._pool is None:
                pool = WorkerPool.from_settings(pool_settings(self.settings), **self.pool_options)
                pool.on_worker_died(self._worker_loss.died)
                await pool.start()
                self._pool = pool
        return self._pool

    async def close(self) -> None:
        """Stop the workers (on server shutdown); every room goes with them."""
        async with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        self.grace.cancel_all()
        self._tasks.cancel_all()
        for conference_id in list(self.rooms.rooms):
            self.rooms.remove_room(conference_id)
            self._released(conference_id)
        if pool is not None:
            await pool.close()

    async def drain(self, reason: str = ROOM_SERVER_SHUTDOWN) -> list[str]:
        """The server is shutting down: close every room this node hosts, telling its
        participants `media:room_closed {reason}`, and place no new one here.

        The conferences stay in progress and their participant records open: the
        participants join again (on another node, with several), which places a new
        router, and the records close only for those who do not come back (attendance).
        With several nodes each room's claim is released before its participants are
        told, so their next `media:join` is placed on a live node. Returns the ids.
        """
        self._draining = True
        self.grace.cancel_all()
        closed = []
        for conference_id in list(self.rooms.rooms):
            async with self.rooms.lock(conference_id):
                if await self.close_room(conference_id, reason) is not None:
                    closed.append(conference_id)
        if closed:
            logger.info("shutting down: closed conferences %s here (%s)", ", ".join(closed), reason)
        return closed

    # --- the conference's lifecycle --------------------------------------------------------------

    async def start_conference(self, conference_id: str) -> StartedRoom:
        """Place the room (`POST .../start`) and mark the conference in progress.

        A conference that runs already answers the same; one that ended raises
        `ConferenceEnded`. The caller has checked that the user may see it.
        """
        async with self.rooms.lock(conference_id):
            async with self.sessions() as session:
                conference = await session.get(Conference, conference_id)
                if conference is None or conference.status == ENDED:
                    raise ConferenceEnded("The conference has ended")
                try:
                    room = await self.place_room(conference_id)
                    rtp_capabilities = room.router.rtp_capabilities
                except RoomElsewhere as elsewhere:  # another node hosts it (several nodes)
                    rtp_capabilities = elsewhere.rtp_capabilities
                newly_started = conference.status != IN_PROGRESS
                if newly_started:
                    conference.status = IN_PROGRESS
                    conference.started_at = utcnow()
                    await session.commit()
        return StartedRoom(rtp_capabilities, newly_started)

    async def end_conference(self, conference_id: str, reason: str = ROOM_ENDED) -> bool:
        """Close the room and mark the conference ended; False if it had ended already.

        `reason` is what the participants are told (`media:room_closed`).
        """
        async with self.rooms.lock(conference_id):
            async with self.sessions() as session:
                conference = await session.get(Conference, conference_id)
                if conference is None or conference.status == ENDED:
                    return False
                await self.close_room(conference_id, reason)
                conference.status = ENDED
                conference.ended_at = utcnow()
                await close_participation(session, conference_id)
                await session.commit()
        return True

    async def join(
        self,
        conference_id: str,
        user_id: str,
        connection_id: str,
        previous_connection_id: str | None = None,
    ) -> tuple[MediaRoom, ParticipantMedia, bool]:
        """Make the connection a participant (`media:join`), placing the room if needed.

        A conference in progress has no room after its worker died or the server
        restarted: the first join places a new router, as `POST .../start` would.
        `previous_connection_id` names the user's connection that was in the room before
        a reconnect; the third value says whether the new connection took its place (the
        same participant to the others), which it does while that one is within its grace
        period or still open (a connection that died without the server noticing yet).
        """
        revocations = self.revocations
        display_name = await self._joinable(user_id, conference_id)
        async with self.rooms.lock(conference_id):
            if self.rooms.get_room(conference_id) is None:
                await self._joinable(user_id, conference_id)  # it may have ended meanwhile
                await self.place_room(conference_id)
            router = await self._router_for_joiner(conference_id, connection_id)
        room, participant = await self.rooms.create_transports(
            conference_id, user_id, connection_id, display_name, router
        )
        if self.revocations != revocations:
            await self._still_joinable(conference_id, user_id, connection_id)
        if user_id in room.removed:  # conference/in_call.py: until the organizer readmits
            await self.rooms.close_participant(conference_id, connection_id)
            raise RoomError(f"you were removed from conference {conference_id} by its organizer")
        replaced = False
        if previous_connection_id is not None and previous_connection_id != connection_id:
            replaced = await self._take_place_of(room, participant, previous_connection_id)
        return room, participant, replaced

    async def _still_joinable(self, conference_id: str, user_id: str, connection_id: str) -> None:
        """Access was revoked while the transports were made: ask the database again, so
        that a join checked just before a revocation does not outlive it."""
        try:
            await self._joinable(user_id, conference_id)
        except RoomError:
            await self.rooms.close_participant(conference_id, connection_id)
            raise

    async def _take_place_of(
        self, room: MediaRoom, participant: ParticipantMedia, previous_connection_id: str
    ) -> bool:
        """The rejoining connection replaces its user's previous one; False if none to replace."""
        if self.grace.take(room, previous_connection_id, participant.user_id):
            return True
        previous = room.participants.get(previous_connection_id)
        if previous is None or previous.user_id != participant.user_id:
            return False
        # Still open here (a half-open TCP connection): it goes without a peer_left.
        departure = await self.rooms.close_participant(room.conference_id, previous_connection_id)
        if departure is not None:
            await self.notices.producers_closed(
                room.conference_id, [departure], exclude_connection=previous_connection_id
            )
        return True

    async def _joinable(self, user_id: str, conference_id: str) -> str:
        """The user's display name, if they may join the conference now."""
        async with self.sessions() as session:
            conference = await member_conference(session, conference_id, user_id)
            display_name = await session.scalar(select(User.display_name).where(User.id == user_id))
        if conference is None:
            raise RoomError(f"unknown conference {conference_id}")
        if conference.status != IN_PROGRESS:
            raise RoomError(f"conference {conference_id} is {conference.status}, not in progress")
        return display_name or ""

    # --- rooms -----------------------------------------------------------------------------

    async def place_room(self, conference_id: str) -> MediaRoom:
        """The conference's room; a router is placed on a worker if it has none.

        Callers hold the conference's lock. Raises `RoomElsewhere` when another node
        hosts it, `MediaUnavailable` when no worker can take it.
        """
        if self._draining and self.rooms.get_room(conference_id) is None:
            raise MediaUnavailable("this server is shutting down; join again in a moment")
        placement = self.placement
        if placement is None:
            return await self._open_room(conference_id)
        if self.rooms.get_room(conference_id) is None:
            await placement.claim(conference_id)  # RoomElsewhere: another node has it
        try:
            room = await self._open_room(conference_id)
        except BaseException:
            if self.rooms.get_room(conference_id) is None:
                placement.released(conference_id)
            raise
        placement.hosted(conference_id, room.router.rtp_capabilities)
        return room

    async def _open_room(self, conference_id: str) -> MediaRoom:
        try:
            return await self.rooms.open_room(
                conference_id, lambda: self._create_router(conference_id)
            )
        except (RuntimeError, *SFU_ERRORS) as exc:  # no live worker, or it failed
            logger.error("placing the room of conference %s failed: %s", conference_id, exc)
            raise MediaUnavailable(f"the media server is not available: {exc}") from None

    def hosts(self, conference_id: str) -> bool:
        """Whether this node runs the conference's room."""
        return self.rooms.get_room(conference_id) is not None

    def hosted_rooms(self) -> dict[str, dict[str, Any]]:
        """conference id -> router capabilities, for every room on this node."""
        return {
            conference_id: room.router.rtp_capabilities
            for conference_id, room in self.rooms.rooms.items()
        }

    def room(self, conference_id: str) -> MediaRoom | None:
        return self.rooms.get_room(conference_id)

    def participant(self, conference_id: str, connection_id: str) -> ParticipantMedia:
        """The connection's media in the room; `RoomError` if it has not joined."""
        return self.rooms.participant(conference_id, connection_id)

    def conference_of(self, connection_id: str) -> str | None:
        """The conference the connection takes part in here, if any."""
        return self.rooms.connection_rooms.get(connection_id)

    def _released(self, conference_id: str) -> None:
        if self.placement is not None:
            self.placement.released(conference_id)

    async def _router_for_joiner(self, conference_id: str, connection_id: str) -> Router | None:
        """The room's router a new participant goes to (conference/spreading.py). Callers
        hold the conference's lock. None: the room's first router (no room here yet)."""
        room = self.rooms.get_room(conference_id)
        if room is None or self._pool is None:
            return None
        return await self.spreading.router_for_joiner(room, self._pool, connection_id)

    def worker_lost(self, worker: Worker, reason: str, router_ids: list[str]) -> Any:
        """Another node's worker the rooms here used died, or its node did: as for ours."""
        return self._worker_loss.died(worker, reason, router_ids)

    async def make_consumable(
        self, room: MediaRoom, producer: Producer, participant: ParticipantMedia
    ) -> None:
        """Pipe `producer` to the participant's router if it lives on another one."""
        source = producer.transport.router
        await room.pipes.ensure(producer, source, participant.router)

    async def _create_router(self, conference_id: str) -> Router:
        pool = await self.pool()
        router = await pool.create_router()
        await self.speakers.listen(conference_id, router)
        return router

    async def close_room_here(self, conference_id: str, reason: str = ROOM_ENDED) -> None:
        """Close the room if this node hosts it (another node asked us to)."""
        async with self.rooms.lock(conference_id):
            if self.hosts(conference_id):
                await self.close_room(conference_id, reason)

    async def close_room(self, conference_id: str, reason: str = ROOM_ENDED) -> MediaRoom | None:
        """Tell every participant connection the room closed, then close its router."""
        room = self.rooms.remove_room(conference_id)
        if room is None:
            if self.placement is not None:
                await self.placement.end_elsewhere(conference_id, reason)
            return None
        self._released(conference_id)
        for listener in self.closing_listeners:
            await listener(room)
        await self.notices.room_gone([room], reason)
        for router in room.routers:
            try:
                await router.close()
            except Exception:
                logger.exception("closing %r of conference %s failed", router, conference_id)
        return room

    # --- participants leaving --------------------------------------------------------------

    async def leave_connection(self, conference_id: str, connection_id: str) -> Departure | None:
        """One connection leaves (`media:leave`)."""
        departure = await self.rooms.close_participant(conference_id, connection_id)
        if departure is not None:
            await self.notices.departures(
                conference_id, [departure], exclude_connection=connection_id
            )
        return departure

    async def connection_lost(self, conference_id: str, connection_id: str) -> Departure | None:
        """The connection's WebSocket closed or died: its media goes at once, but the
        others hear `media:peer_left` only if no rejoin replaces it within the grace period.
        """
        departure = await self.rooms.close_participant(conference_id, connection_id)
        room = self.rooms.get_room(conference_id)
        if departure is None or room is None:
            return departure
        await self.notices.producers_closed(
            conference_id, [departure], exclude_connection=connection_id
        )
        self.grace.hold(room, departure)
        return departure

    async def leave_user(self, conference_id: str, user_id: str) -> list[Departure]:
        """Every connection of the user leaves (the HTTP leave, which knows no connection)."""
        if self.placement is not None and self.rooms.get_room(conference_id) is None:
            await self.placement.leave_elsewhere(conference_id, user_id)
            return []
        departures = await self.rooms.close_participant_by_user(conference_id, user_id)
        if departures:
            await self.notices.departures(conference_id, departures)
        elif self._forget_reconnecting(conference_id, user_id):
            room = self.rooms.get_room(conference_id)
            if room is not None and room.user_ids():
                data = {"user_id": user_id, "conference_id": conference_id}
                await self.notices.publish(room.user_ids(), "media:peer_left", data)
        self._forget_reconnecting(conference_id, user_id)
        return departures

    async def revoke(self, conference_id: str, user_id: str | None, reason: str) -> list[Departure]:
        """The user may no longer take part (`conference/access.py`): all their
        connections leave the room, wherever it is hosted. `user_id` None: everyone in
        the room who may no longer join it (the database says who) leaves."""
        if self.placement is not None and self.rooms.get_room(conference_id) is None:
            await self.placement.revoke_elsewhere(conference_id, user_id, reason)
            return []
        if user_id is not None:
            return await self.revoke_here(conference_id, user_id, reason)
        return await self.revoke_lost_here(conference_id, reason)

    async def revoke_lost_here(self, conference_id: str, reason: str) -> list[Departure]:
        """Every user in the room here who may no longer join it leaves."""
        self.revocations += 1  # before reading the database: a join under way checks again
        room = self.rooms.get_room(conference_id)
        departures: list[Departure] = []
        for user_id in sorted(room.user_ids() if room is not None else ()):
            async with self.sessions() as session:
                allowed = await member_conference(session, conference_id, user_id)
            if allowed is None:
                departures += await self.revoke_here(conference_id, user_id, reason)
        return departures

    async def revoke_here(self, conference_id: str, user_id: str, reason: str) -> list[Departure]:
        """`media:room_closed {reason}` to the user's participant connections, which leave;
        the others hear `media:producer_closed` and `media:peer_left`."""
        self.revocations += 1
        departures = await self.rooms.close_participant_by_user(conference_id, user_id)
        await self.notices.room_closed(
            conference_id, [departure.connection_id for departure in departures], reason
        )
        if departures:
            logger.info(
                "user %s lost access to conference %s (%s): %d connection(s) left its room",
                user_id,
                conference_id,
                reason,
                len(departures),
            )
            await self.notices.departures(conference_id, departures)
        self._forget_reconnecting(conference_id, user_id)
        return departures

    def _forget_reconnecting(self, conference_id: str, user_id: str) -> bool:
        """Drop the user's lost connections still in their grace period; True if any."""
        return self.grace.forget_user(self.rooms.get_room(conference_id), user_id)
