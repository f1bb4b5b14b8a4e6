"""`RoomManager`: the media state of every running conference on this node.

    RoomManager
      ├── rooms: conference id → MediaRoom
      │     └── MediaRoom {routers (the first: `router`), pipes between them,
      │                    participants: connection id → ParticipantMedia}
      │           └── ParticipantMedia {user_id, send/recv transport, producers, consumers}
      └── connection_rooms: connection id → conference id

Participants are keyed by WebSocket connection id, not by user: the same user in two
tabs is two participants with their own transports. A connection is in at most one
room. Only the SFU's proxies live here (`roomler.sfu`); closing one frees its objects, ports
included, in the worker. Producers and consumers that close for any reason (their
transport or producer closed, the worker died) drop out of these tables on their own
`close` event.

A room may spread over several routers, one per worker (conference/placement.py): each
participant's transports are on one of them (`ParticipantMedia.router`), and the room's
`pipes` carry producers to the routers whose participants consume them. A router other
than the first closes when its last participant leaves.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from roomler.conference.errors import SFU_ERRORS, RoomError
from roomler.conference.placement import RoomPipes
from roomler.sfu import Consumer, Producer, Router, WebRtcTransport

logger = logging.getLogger(__name__)

__all__ = [
    "Departure",
    "MediaRoom",
    "ParticipantMedia",
    "Reconnecting",
    "RoomError",
    "RoomManager",
    "request_key_frame",
]


async def request_key_frame(consumer: Consumer) -> None:
    """Ask a video consumer's producer for a keyframe; a failure is only logged.

    A new or resumed receiver cannot decode until the next keyframe.
    """
    if consumer.kind != "video":
        return
    try:
        await consumer.request_key_frame()
    except SFU_ERRORS as exc:
        logger.info("keyframe request for %r failed: %s", consumer, exc)


@dataclass(eq=False)
class ParticipantMedia:
    """One connection's media in one room."""

    conference_id: str
    user_id: str
    connection_id: str
    send_transport: WebRtcTransport
    recv_transport: WebRtcTransport
    # The user's display name when the connection joined, told to the other participants.
    display_name: str = ""
    producers: dict[str, Producer] = field(default_factory=dict)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    # Producers that closed with their transport, in order (see add_producer).
    lost_producers: list[str] = field(default_factory=list)

    @property
    def router(self) -> Router:
        """The router this participant's transports (and so its producers) are on."""
        return self.send_transport.router

    def transport(self, transport_id: str) -> WebRtcTransport:
        for transport in (self.send_transport, self.recv_transport):
            if transport.id == transport_id:
                return transport
        raise RoomError(f"unknown transport {transport_id}")

    def producer(self, producer_id: str) -> Producer:
        producer = self.producers.get(producer_id)
        if producer is None:
            raise RoomError(f"unknown producer {producer_id}")
        return producer

    def consumer(self, consumer_id: str) -> Consumer:
        consumer = self.consumers.get(consumer_id)
        if consumer is None:
            raise RoomError(f"unknown consumer {consumer_id}")
        return consumer

    def add_producer(self, producer: Producer) -> None:
        """Track `producer` until it closes, whatever closes it; one that closed with its
        transport (the worker died) is remembered in `lost_producers`, for the others."""
        self.producers[producer.id] = producer

        def closed() -> None:
            self.producers.pop(producer.id, None)
            if producer.transport.closed:
                self.lost_producers.append(producer.id)

        producer.on("close", closed)

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers[consumer.id] = consumer
        consumer.on("close", lambda: self.consumers.pop(consumer.id, None))

    async def close(self) -> list[str]:
        """Close both transports (their producers and consumers close with them).

        Returns the ids of the producers that were open, which the others consumed.
        """
        producer_ids = [p.id for p in self.producers.values() if not p.closed]
        for transport in (self.send_transport, self.recv_transport):
            try:
                await transport.close()
            except Exception:
                logger.exception("closing %r of %s failed", transport, self.connection_id)
        return producer_ids


@dataclass(frozen=True)
class Departure:
    """A participant that left, and the producers that closed with it."""

    participant: ParticipantMedia
    producer_ids: list[str]

    @property
    def user_id(self) -> str:
        return self.participant.user_id

    @property
    def connection_id(self) -> str:
        return self.participant.connection_id


@dataclass(eq=False)
class Reconnecting:
    """A participant whose connection was lost, kept for a rejoin until `deadline`.

    Its media is gone (the transports closed with the connection); the others still
    list it, so a rejoin within the grace period is the same participant to them.
    """

    user_id: str
    connection_id: str
    display_name: str
    # loop.time() after which it has left.
    deadline: float


@dataclass(eq=False)
class MediaRoom:
    """A running conference: its routers and the connections taking part."""

    conference_id: str
    # The first router: the room's capabilities (every router has the same codecs).
    router: Router
    participants: dict[str, ParticipantMedia] = field(default_factory=dict)
    # Lost connections within their grace period, by connection id.
    reconnecting: dict[str, Reconnecting] = field(default_factory=dict)
    # The last `media:active_speaker` data, told to each joiner.
    active_speaker: dict[str, str] | None = None
    # Users with a raised hand, in the order they raised it (conference/in_call.py).
    hands: dict[str, None] = field(default_factory=dict)
    # Users the organizer removed: their `media:join` is refused while the room lives.
    removed: set[str] = field(default_factory=set)
    closed: bool = False
    # Every router of the room, the first one first (placement.py adds others).
    routers: list[Router] = field(default_factory=list)
    pipes: RoomPipes = field(init=False)

    def __post_init__(self) -> None:
        if not self.routers:
            self.routers = [self.router]
        self.pipes = RoomPipes(self.conference_id)

    def live_routers(self) -> list[Router]:
        return [router for router in self.routers if not router.closed]

    def participants_on(self, router: Router) -> list[ParticipantMedia]:
        return [p for p in self.participants.values() if p.router is router]

    def user_ids(self) -> set[str]:
        return {participant.user_id for participant in self.participants.values()}

    def present_user_ids(self) -> set[str]:
        """Users with a connection in the room or one that may still come back."""
        return self.user_ids() | {absent.user_id for absent in self.reconnecting.values()}

    def connection_ids(self) -> list[str]:
        return list(self.participants)

    def connections_of(self, user_id: str) -> list[ParticipantMedia]:
        return [p for p in self.participants.values() if p.user_id == user_id]

    def forget_hands_of_absent(self) -> None:
        """A raised hand goes with its user (left, removed, grace period over)."""
        present = self.present_user_ids()
        for user_id in [u for u in self.hands if u not in present]:
            del self.hands[user_id]

    def producers(
        self, *, exclude_connection: str | None = None
    ) -> list[tuple[ParticipantMedia, Producer]]:
        """Every live producer in the room with its owner, oldest participant first."""
        return [
            (participant, producer)
            for connection_id, participant in self.participants.items()
            if connection_id != exclude_connection
            for producer in list(participant.producers.values())
            if not producer.closed
        ]

    def find_producer(self, producer_id: str) -> Producer | None:
        for participant in self.participants.values():
            producer = participant.producers.get(producer_id)
            if producer is not None:
                return producer
        return None


RouterFactory = Callable[[], Awaitable[Router]]


class RoomManager:
    def __init__(self) -> None:
        self.rooms: dict[str, MediaRoom] = {}
        self.connection_rooms: dict[str, str] = {}
        # A lock lives while someone holds or waits for it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, conference_id: str) -> asyncio.Lock:
        """Serialises starting and ending one conference (two starts make one router)."""
        lock = self._locks.get(conference_id)
        if lock is None:
            lock = self._locks[conference_id] = asyncio.Lock()
        return lock

    def get_room(self, conference_id: str) -> MediaRoom | None:
        return self.rooms.get(conference_id)

    async def open_room(self, conference_id: str, create_router: RouterFactory) -> MediaRoom:
        """The conference's room, creating its router if it has none (or its router died)."""
        room = self.rooms.get(conference_id)
        if room is not None and not room.router.closed:
            return room
        if room is not None:
            self.remove_room(conference_id)
        router = await create_router()
        room = MediaRoom(conference_id, router)
        self.rooms[conference_id] = room
        return room

    def remove_room(self, conference_id: str) -> MediaRoom | None:
        """Forget the room and its participants (their proxies are not closed here)."""
        room = self.rooms.pop(conference_id, None)
        if room is None:
            return None
        room.closed = True
        for connection_id in room.participants:
            if self.connection_rooms.get(connection_id) == conference_id:
                del self.connection_rooms[connection_id]
        return room

    def rooms_of_routers(self, router_ids: list[str]) -> list[MediaRoom]:
        wanted = set(router_ids)
        return [
            room
            for room in self.rooms.values()
            if any(router.id in wanted for router in room.routers)
        ]

    async def create_transports(
        self,
        conference_id: str,
        user_id: str,
        connection_id: str,
        display_name: str = "",
        router: Router | None = None,
    ) -> tuple[MediaRoom, ParticipantMedia]:
        """Make the connection a participant with a send and a receive transport, on
        `router` (one of the room's; its first by default)."""
        room = self.rooms.get(conference_id)
        if room is None:
            raise RoomError(f"conference {conference_id} is not running")
        current = self.connection_rooms.get(connection_id)
        if current is not None:
            raise RoomError(
                f"this connection is already in conference {current}; send media:leave first"
            )
        # Shielded: a connection that goes away mid-request cancels us, and transports
        # the worker made by then must still be closed, not leaked with their ports.
        creating = asyncio.ensure_future(
            _new_participant(room, router or room.router, user_id, connection_id, display_name)
        )
        try:
            participant = await asyncio.shield(creating)
        except asyncio.CancelledError:
            creating.add_done_callback(_close_abandoned)
            raise
        if room.closed or connection_id in self.connection_rooms:
            # The room ended, or the connection joined elsewhere, while we waited.
            await participant.close()
            raise RoomError(f"conference {conference_id} is not running")
        room.participants[connection_id] = participant
        self.connection_rooms[connection_id] = conference_id
        return room, participant

    def participant(self, conference_id: str, connection_id: str) -> ParticipantMedia:
        room = self.rooms.get(conference_id)
        participant = room.participants.get(connection_id) if room is not None else None
        if participant is None:
            raise RoomError(f"not a participant of conference {conference_id}; send media:join")
        return participant

    async def close_participant(self, conference_id: str, connection_id: str) -> Departure | None:
        """Remove one connection from the room and close its transports."""
        room = self.rooms.get(conference_id)
        if room is None:
            return None
        participant = room.participants.pop(connection_id, None)
        if participant is None:
            return None
        if self.connection_rooms.get(connection_id) == conference_id:
            del self.connection_rooms[connection_id]
        departure = Departure(participant, await participant.close())
        await _close_if_unused(room, participant.router)
        return departure

    async def close_participant_by_user(self, conference_id: str, user_id: str) -> list[Departure]:
        """Remove every connection of `user_id` from the room (the HTTP leave)."""
        room = self.rooms.get(conference_id)
        if room is None:
            return []
        connection_ids = [
            connection_id
            for connection_id, participant in room.participants.items()
            if participant.user_id == user_id
        ]
        closed = []
        for connection_id in connection_ids:
            departure = await self.close_participant(conference_id, connection_id)
            if departure is not None:
                closed.append(departure)
        return closed


async def _close_if_unused(room: MediaRoom, router: Router) -> None:
    """A router the room spread to closes with its last participant (its pipes with it)."""
    if router is room.router or router not in room.routers or room.participants_on(router):
        return
    room.routers.remove(router)
    try:
        await router.close()
    except Exception:
        logger.exception("closing %r of conference %s failed", router, room.conference_id)


async def _new_participant(
    room: MediaRoom, router: Router, user_id: str, connection_id: str, display_name: str
) -> ParticipantMedia:
    # Both requests at once: one round trip to the worker instead of two.
    created = await asyncio.gather(
        router.create_webrtc_transport(app_data={"direction": "send"}),
        router.create_webrtc_transport(app_data={"direction": "recv"}),
        return_exceptions=True,
    )
    send, recv = created
    if isinstance(send, WebRtcTransport) and isinstance(recv, WebRtcTransport):
        return ParticipantMedia(
            room.conference_id, user_id, connection_id, send, recv, display_name
        )
    for transport in created:
        if isinstance(transport, WebRtcTransport):
            await transport.close()
    raise next(error for error in created if isinstance(error, BaseException))


_abandoned: set[asyncio.Task[list[str]]] = set()


def _close_abandoned(creating: asyncio.Future[ParticipantMedia]) -> None:
    if creating.cancelled() or creating.exception() is not None:
        return
    task = asyncio.ensure_future(creating.result().close())
    _abandoned.add(task)
    task.add_done_callback(_abandoned.discard)
