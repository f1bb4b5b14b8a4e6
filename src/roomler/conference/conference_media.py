"""`ConferenceMedia`: starting, joining, leaving and ending a conference's media room.

Everything that changes who is in a room goes through this object, from the REST API
and the WebSocket signaling alike: it checks the conference's status in the database,
places the room's router on a worker under the conference's lock, turns every SFU
failure into `RoomError` (conference/errors.py), and sends the peer notifications:

- `media:producer_closed` for each producer a leaving participant had, then
  `media:peer_left` (with the `connection_id` when one connection left), to the users
  still in the room (user-level);
- `media:room_closed {conference_id, reason}` to every participant connection when a
  room goes away: `"ended"` (the conference ended) or `"worker_died"`, and to a user's
  participant connections when they lose access to it (`conference/access.py`):
  `"access_revoked"`, or `"channel_deleted"` for everyone when its channel goes.

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
from collections.abc import Iterable
from dataclasses import dataclass
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
from roomler.conference.placement import NEW_ROUTER, Candidate, choose_router, worker_consumers
from roomler.conference.queries import ENDED, IN_PROGRESS, close_participation, member_conference
from roomler.conference.rooms import (
    Departure,
    MediaRoom,
    ParticipantMedia,
    Reconnecting,
    RoomManager,
)
from roomler.conference.speakers import SpeakerNotices
from roomler.config import MediasoupSettings
from roomler.db.models import Conference, User, utcnow
from roomler.realtime.dispatcher import Dispatcher
from roomler.realtime.wire import encode
from roomler.sfu import Producer, Router, Worker, WorkerPool, WorkerPoolSettings
from roomler.tasks import BackgroundTasks

logger = logging.getLogger(__name__)

ROOM_ENDED = "ended"
ROOM_WORKER_DIED = "worker_died"
# The hosting server is shutting down (SIGTERM): the conference goes on; join it again.
ROOM_SERVER_SHUTDOWN = "server_shutdown"
ROOM_CLOSED = "media:room_closed"


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


class NodeWorkers(Protocol):
    """Workers of other nodes, for a room over nodes (`roomler.cluster.remote_workers`)."""

    def node_of(self, connection_id: str) -> str | None:
        """The other node the connection's WebSocket is on; None for this node."""
        ...

    async def worker_on(self, node_id: str) -> Worker:
        """A worker of `node_id`, driven from here."""
        ...


def pool_settings(settings: MediasoupSettings) -> WorkerPoolSettings:
    """The pool's settings from ``ROOMLER__MEDIASOUP__*`` (`roomler.sfu` reads no config)."""
    return WorkerPoolSettings(
        num_workers=settings.num_workers,
        listen_ip=settings.listen_ip,
        announced_ip=settings.announced_ip,
        rtc_min_port=settings.rtc_min_port,
        rtc_max_port=settings.rtc_max_port,
        pipe_listen_ip=settings.pipe_listen_ip,
        pipe_announced_ip=settings.pipe_announced_ip,
    )


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
        # Who is speaking, relayed to each room (conference/speakers.py).
        self.speakers = SpeakerNotices(self.rooms, dispatcher)
        # Lost connections waiting for a rejoin: connection id -> the timer that ends it.
        self._grace_timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks = BackgroundTasks(logger, "a conference announcement failed")
        # Extra `WorkerPool` arguments (`handler=...` in tests); read when the pool starts.
        self.pool_options: dict[str, Any] = dict(pool_options or {})
        self._pool: WorkerPool | None = None
        self._pool_lock = asyncio.Lock()
        self._closed = False
        # Shutting down: no room is placed here any more (`drain`).
        self._draining = False
        # Counts revocations carried out here: a join that overlapped one checks again.
        self.revocations = 0
        # Cluster mode: participants' transports on their own node (`spread_over_nodes`).
        self.node_workers: NodeWorkers | None = None

    def spread_over_nodes(self, node_workers: NodeWorkers) -> None:
        """Place each participant on a router of the node their connection is on."""
        self.node_workers = node_workers

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
                pool.on_worker_died(self._worker_died)
                await pool.start()
                self._pool = pool
        return self._pool

    async def close(self) -> None:
        """Stop the workers (on server shutdown); every room goes with them."""
        async with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        for timer in self._grace_timers.values():
            timer.cancel()
        self._grace_timers.clear()
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
        for timer in self._grace_timers.values():
            timer.cancel()
        self._grace_timers.clear()
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
        absent = room.reconnecting.get(previous_connection_id)
        if absent is not None and absent.user_id == participant.user_id:
            del room.reconnecting[previous_connection_id]
            self._cancel_grace(previous_connection_id)
            return True
        previous = room.participants.get(previous_connection_id)
        if previous is None or previous.user_id != participant.user_id:
            return False
        # Still open here (a half-open TCP connection): it goes without a peer_left.
        departure = await self.rooms.close_participant(room.conference_id, previous_connection_id)
        if departure is not None:
            await self._announce_producers_closed(
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
        """The room's router a new participant goes to (placement.py), made if needed:
        with rooms over nodes, one on the node of the participant's connection.

        Callers hold the conference's lock. None: the room's first router (no room here).
        """
        room = self.rooms.get_room(conference_id)
        pool = self._pool
        if room is None or pool is None:
            return None
        node = self.node_workers.node_of(connection_id) if self.node_workers else None
        if node is not None:
            return await self._router_on_node(room, node)
        routers = [router for router in room.live_routers() if not router.worker.host]
        on_worker = {router.worker.slot: index for index, router in enumerate(routers)}
        candidates = [
            Candidate(worker.slot, worker_consumers(worker), on_worker.get(worker.slot))
            for worker in pool.workers
        ]
        if not candidates:
            return room.router
        index, chosen = choose_router(candidates, self.settings.room_spread_consumers)
        if index != NEW_ROUTER:
            return routers[index]
        worker = next(w for w in pool.workers if w.slot == chosen.worker_slot)
        try:
            router = await worker.create_router()
        except SFU_ERRORS as exc:  # that worker is going: the room's first router will do
            logger.warning("spreading conference %s failed: %s", conference_id, exc)
            return room.router
        await self.speakers.listen(conference_id, router)
        room.routers.append(router)
        logger.info(
            "conference %s spreads to worker %d (its routers' workers carry %s consumers)",
            conference_id,
            worker.pid,
            ", ".join(str(c.consumers) for c in candidates if c.router_index is not None),
        )
        return router

    async def _router_on_node(self, room: MediaRoom, node: str) -> Router:
        """The room's router on another node (one per node), made there if it has none;
        the room's first router if that node cannot make one."""
        for router in room.live_routers():
            if router.worker.host == node:
                return router
        assert self.node_workers is not None
        try:
            worker = await self.node_workers.worker_on(node)
            router = await worker.create_router()
        except (RuntimeError, *SFU_ERRORS) as exc:
            logger.warning(
                "conference %s: no router on node %s (%s); its participant uses ours",
                room.conference_id,
                node,
                exc,
            )
            return room.router
        await self.speakers.listen(room.conference_id, router)
        room.routers.append(router)
        logger.info("conference %s spreads to node %s", room.conference_id, node)
        return router

    def worker_lost(self, worker: Worker, reason: str, router_ids: list[str]) -> Any:
        """Another node's worker the rooms here used died, or its node did: as for ours."""
        return self._worker_died(worker, reason, router_ids)

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
        await self._announce_closed(room, reason)
        for router in room.routers:
            try:
                await router.close()
            except Exception:
                logger.exception("closing %r of conference %s failed", router, conference_id)
        return room

    def _worker_died(self, worker: Worker, reason: str, router_ids: list[str]) -> Any:
        # Called by the pool; the rooms are forgotten at once, so no join lands in them.
        # A room spread over several workers loses only the participants on the dead one.
        affected = self.rooms.rooms_of_routers(router_ids)
        shrunk = [room for room in affected if self._drop_dead_routers(room)]
        rooms = [
            self.rooms.remove_room(room.conference_id) for room in affected if room not in shrunk
        ]
        closed = [room for room in rooms if room is not None]
        if shrunk:
            self._tasks.spawn(self._lose_participants_on_dead_routers(shrunk, reason))
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

    def _drop_dead_routers(self, room: MediaRoom) -> bool:
        """Forget the room's closed routers; False when none is left (the room goes)."""
        alive = room.live_routers()
        if not alive:
            return False
        room.routers = alive
        room.router = alive[0]
        return True

    async def _lose_participants_on_dead_routers(self, rooms: list[MediaRoom], reason: str) -> None:
        """The participants whose router died are told `media:room_closed {reason}` and
        leave; the others hear `media:producer_closed` and `media:peer_left` and go on."""
        for room in rooms:
            lost = [p for p in room.participants.values() if p.router.closed]
            frame = encode(ROOM_CLOSED, {"conference_id": room.conference_id, "reason": reason})
            departures: list[Departure] = []
            for participant in lost:
                await self.dispatcher.send_to_connection(participant.connection_id, frame)
                departure = await self.rooms.close_participant(
                    room.conference_id, participant.connection_id
                )
                if departure is not None:
                    # Its producers closed with the worker: the others are told of them.
                    closed = departure.producer_ids or list(participant.lost_producers)
                    departures.append(Departure(participant, closed))
            logger.warning(
                "conference %s lost %d participant(s) with a worker (%s); %d go on",
                room.conference_id,
                len(departures),
                reason,
                len(room.participants),
            )
            if departures:
                await self._announce_departures(room.conference_id, departures)

    async def _announce_closed_all(self, rooms: list[MediaRoom], reason: str) -> None:
        for room in rooms:
            await self._announce_closed(room, reason)

    async def _announce_closed(self, room: MediaRoom, reason: str) -> None:
        frame = encode(ROOM_CLOSED, {"conference_id": room.conference_id, "reason": reason})
        for connection_id in room.connection_ids():
            await self.dispatcher.send_to_connection(connection_id, frame)

    # --- participants leaving --------------------------------------------------------------

    async def leave_connection(self, conference_id: str, connection_id: str) -> Departure | None:
        """One connection leaves (`media:leave`)."""
        departure = await self.rooms.close_participant(conference_id, connection_id)
        if departure is not None:
            await self._announce_departures(
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
        await self._announce_producers_closed(
            conference_id, [departure], exclude_connection=connection_id
        )
        loop = asyncio.get_running_loop()
        grace = self.rejoin_grace_secs
        name = departure.participant.display_name
        room.reconnecting[connection_id] = Reconnecting(
            departure.user_id, connection_id, name, loop.time() + grace
        )
        self._grace_timers[connection_id] = loop.call_later(
            grace, self._grace_over, room, connection_id
        )
        return departure

    def _grace_over(self, room: MediaRoom, connection_id: str) -> None:
        self._grace_timers.pop(connection_id, None)
        absent = room.reconnecting.pop(connection_id, None)
        if absent is None or room.closed:
            return
        room.forget_hands_of_absent()
        data = {
            "user_id": absent.user_id,
            "conference_id": room.conference_id,
            "connection_id": connection_id,
        }
        self._tasks.spawn(self.publish(room.user_ids(), "media:peer_left", data))

    def _cancel_grace(self, connection_id: str) -> None:
        timer = self._grace_timers.pop(connection_id, None)
        if timer is not None:
            timer.cancel()

    async def leave_user(self, conference_id: str, user_id: str) -> list[Departure]:
        """Every connection of the user leaves (the HTTP leave, which knows no connection)."""
        if self.placement is not None and self.rooms.get_room(conference_id) is None:
            await self.placement.leave_elsewhere(conference_id, user_id)
            return []
        departures = await self.rooms.close_participant_by_user(conference_id, user_id)
        if departures:
            await self._announce_departures(conference_id, departures)
        elif self._forget_reconnecting(conference_id, user_id):
            room = self.rooms.get_room(conference_id)
            if room is not None and room.user_ids():
                data = {"user_id": user_id, "conference_id": conference_id}
                await self.publish(room.user_ids(), "media:peer_left", data)
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
        frame = encode(ROOM_CLOSED, {"conference_id": conference_id, "reason": reason})
        for departure in departures:
            await self.dispatcher.send_to_connection(departure.connection_id, frame)
        if departures:
            logger.info(
                "user %s lost access to conference %s (%s): %d connection(s) left its room",
                user_id,
                conference_id,
                reason,
                len(departures),
            )
            await self._announce_departures(conference_id, departures)
        self._forget_reconnecting(conference_id, user_id)
        return departures

    def _forget_reconnecting(self, conference_id: str, user_id: str) -> bool:
        """Drop the user's lost connections still in their grace period; True if any."""
        room = self.rooms.get_room(conference_id)
        if room is None:
            return False
        lost = [c for c, absent in room.reconnecting.items() if absent.user_id == user_id]
        for connection_id in lost:
            del room.reconnecting[connection_id]
            self._cancel_grace(connection_id)
        room.forget_hands_of_absent()
        return bool(lost)

    async def _announce_departures(
        self,
        conference_id: str,
        departures: Iterable[Departure],
        *,
        exclude_connection: str | None = None,
    ) -> None:
        departures = list(departures)
        room = self.rooms.get_room(conference_id)
        if room is not None:
            room.forget_hands_of_absent()
        remaining = await self._announce_producers_closed(
            conference_id, departures, exclude_connection=exclude_connection
        )
        if not remaining:
            return
        # user id -> the connections of theirs that left, in order of departure
        left: dict[str, list[str]] = {}
        for departure in departures:
            left.setdefault(departure.user_id, []).append(departure.connection_id)
        for user_id, connection_ids in left.items():
            data = {"user_id": user_id, "conference_id": conference_id}
            if len(connection_ids) == 1:
                # One connection left; without the field, all of the user's connections did.
                data["connection_id"] = connection_ids[0]
            await self.publish(
                remaining, "media:peer_left", data, exclude_connection=exclude_connection
            )

    async def _announce_producers_closed(
        self,
        conference_id: str,
        departures: Iterable[Departure],
        *,
        exclude_connection: str | None = None,
    ) -> set[str]:
        """`media:producer_closed` for each producer the departed had; returns the users
        still in the room, who were told."""
        room = self.rooms.get_room(conference_id)
        remaining = room.user_ids() if room is not None else set()
        if not remaining:
            return remaining
        for departure in departures:
            for producer_id in departure.producer_ids:
                await self.publish(
                    remaining,
                    "media:producer_closed",
                    {"producer_id": producer_id, "user_id": departure.user_id},
                    exclude_connection=exclude_connection,
                )
        return remaining

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
