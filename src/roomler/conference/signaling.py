"""The `media:*` WebSocket messages: a browser's side of a conference, on its connection.

Each handler answers the requesting connection only (connection-level, echoing the
request's `request_id`); peers hear about changes user-level, every connection of the
room's users except the acting connection (`ConferenceMedia.publish`). Any failure is
answered with `media:error {message, request_type, request_id?}` to the requesting
connection, never with the generic `error`. When a connection closes, its participant
leaves the room as on `media:leave`. `docs/protocol.md` ("Media signaling") is the
reference for clients.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import select

from roomler.conference.media import ConferenceMedia
from roomler.conference.messages import (
    ConnectTransport,
    Consume,
    ConsumerAction,
    Join,
    Produce,
    ProducerAction,
)
from roomler.conference.records import IN_PROGRESS, member_conference
from roomler.conference.rooms import ParticipantMedia, RoomError
from roomler.conference.turn import ice_servers
from roomler.db.models import User
from roomler.realtime.connection import Connection
from roomler.realtime.hub import Realtime
from roomler.realtime.registry import Request
from roomler.sfu.channel import ChannelError, RequestFailedError
from roomler.sfu.proxies import InvalidStateError, Producer, WebRtcTransport

logger = logging.getLogger(__name__)

MEDIA_ERROR = "media:error"

M = TypeVar("M")


def transport_out(transport: WebRtcTransport) -> dict[str, Any]:
    """What mediasoup-client's `createSendTransport`/`createRecvTransport` need."""
    return {
        "id": transport.id,
        "ice_parameters": transport.ice_parameters,
        "ice_candidates": transport.ice_candidates,
        "dtls_parameters": transport.dtls_parameters,
    }


def new_producer_out(owner: ParticipantMedia, producer: Producer) -> dict[str, Any]:
    """`media:new_producer`: the producer, its owner, and its `app_data` as given (or {})."""
    return {
        "producer_id": producer.id,
        "user_id": owner.user_id,
        "kind": producer.kind,
        "app_data": producer.app_data if isinstance(producer.app_data, dict) else {},
    }


def participant_out(participant: ParticipantMedia) -> dict[str, Any]:
    """One participant connection, as `media:participants` and `media:peer_joined` name it."""
    return {
        "user_id": participant.user_id,
        "display_name": participant.display_name,
        "connection_id": participant.connection_id,
    }


def reply_error(request: Request, message: str) -> None:
    data = {"message": message, "request_type": request.type}
    if request.request_id is not None:
        data["request_id"] = request.request_id
    request.reply(MEDIA_ERROR, data)


def describe_failure(exc: Exception) -> str:
    """The client-facing message of a failed media request."""
    if isinstance(exc, RequestFailedError):
        return exc.error  # the worker's own message, without the method prefix
    return str(exc)


class MediaSignaling:
    """Registers the `media:*` handlers and the disconnect cleanup on a `Realtime` hub."""

    def __init__(self, hub: Realtime, media: ConferenceMedia) -> None:
        self.hub = hub
        self.media = media
        self.rooms = media.rooms

    def register(self) -> None:
        handlers: list[tuple[str, Callable[[dict[str, Any]], Any], Any]] = [
            ("media:join", Join.parse, self.join),
            ("media:connect_transport", ConnectTransport.parse, self.connect_transport),
            ("media:produce", Produce.parse, self.produce),
            ("media:consume", Consume.parse, self.consume),
            ("media:producer_close", ProducerAction.parse, self.producer_close),
            ("media:producer_pause", ProducerAction.parse, self.producer_pause),
            ("media:producer_resume", ProducerAction.parse, self.producer_resume),
            ("media:consumer_pause", ConsumerAction.parse, self.consumer_pause),
            ("media:consumer_resume", ConsumerAction.parse, self.consumer_resume),
            ("media:leave", Join.parse, self.leave),
        ]
        for message_type, parse, handle in handlers:
            self.hub.registry.register(message_type, _guarded(parse, handle))
        self.hub.on_disconnect(self.connection_closed)

    # --- joining -----------------------------------------------------------------------------

    async def join(self, request: Request, message: Join) -> None:
        display_name = await self._ensure_room(request.user_id, message.conference_id)
        room, participant = await self.rooms.create_transports(
            message.conference_id, request.user_id, request.connection_id, display_name
        )
        # No await from here on: the producers and participants listed are exactly those
        # there before this connection became a participant; later ones reach it by broadcast.
        servers = ice_servers(self.hub.settings.turn, request.user_id, time.time())
        request.reply(
            "media:router_capabilities", {"rtp_capabilities": room.router.rtp_capabilities}
        )
        request.reply(
            "media:transport_created",
            {
                "send_transport": transport_out(participant.send_transport),
                "recv_transport": transport_out(participant.recv_transport),
                "ice_servers": servers,
            },
        )
        for owner, producer in room.producers(exclude_connection=request.connection_id):
            request.reply("media:new_producer", new_producer_out(owner, producer))
        others = [p for p in room.participants.values() if p is not participant]
        request.reply(
            "media:participants",
            {
                "conference_id": message.conference_id,
                "participants": [participant_out(other) for other in others],
            },
        )
        await self._to_others(
            request,
            message.conference_id,
            "media:peer_joined",
            {"conference_id": message.conference_id, **participant_out(participant)},
        )

    async def _ensure_room(self, user_id: str, conference_id: str) -> str:
        """Check the conference may be joined; give it a router if it has none.

        A conference in progress has no room after its worker died or the server
        restarted: the first join places a new router, as `POST .../start` would.
        Returns the user's display name, which the other participants are told.
        """
        display_name = await self._joinable(user_id, conference_id)
        if self.rooms.get_room(conference_id) is not None:
            return display_name
        async with self.rooms.lock(conference_id):
            await self._joinable(user_id, conference_id)  # it may have ended meanwhile
            try:
                await self.media.start(conference_id)
            except RuntimeError as exc:  # no live worker
                raise RoomError(f"the media server is not available: {exc}") from None
        return display_name

    async def _joinable(self, user_id: str, conference_id: str) -> str:
        """The user's display name, if they may join the conference now."""
        async with self.hub.sessions() as session:
            conference = await member_conference(session, conference_id, user_id)
            display_name = await session.scalar(select(User.display_name).where(User.id == user_id))
        if conference is None:
            raise RoomError(f"unknown conference {conference_id}")
        if conference.status != IN_PROGRESS:
            raise RoomError(f"conference {conference_id} is {conference.status}, not in progress")
        return display_name or ""

    # --- transports, producers, consumers ----------------------------------------------------

    async def connect_transport(self, request: Request, message: ConnectTransport) -> None:
        participant = self._participant(request, message.conference_id)
        transport = participant.transport(message.transport_id)
        await transport.connect(message.dtls_parameters)
        request.reply("media:transport_connected", {"transport_id": transport.id})

    async def produce(self, request: Request, message: Produce) -> None:
        participant = self._participant(request, message.conference_id)
        producer = await participant.send_transport.produce(
            message.kind, message.rtp_parameters, message.app_data
        )
        participant.add_producer(producer)
        request.reply("media:produce_result", {"id": producer.id})
        await self._to_others(
            request,
            message.conference_id,
            "media:new_producer",
            new_producer_out(participant, producer),
        )

    async def consume(self, request: Request, message: Consume) -> None:
        participant = self._participant(request, message.conference_id)
        room = self.rooms.get_room(message.conference_id)
        producer = room.find_producer(message.producer_id) if room is not None else None
        if room is None or producer is None:
            raise RoomError(f"unknown producer {message.producer_id}")
        if not await room.router.can_consume(producer.id, message.rtp_capabilities):
            raise RoomError(
                f"cannot consume producer {producer.id}: "
                "the rtp_capabilities support none of its codecs"
            )
        consumer = await participant.recv_transport.consume(producer.id, message.rtp_capabilities)
        participant.add_consumer(consumer)
        request.reply(
            "media:consumer_created",
            {
                "id": consumer.id,
                "producer_id": producer.id,
                "kind": consumer.kind,
                "rtp_parameters": consumer.rtp_parameters,
                "producer_paused": consumer.producer_paused,
            },
        )
        if consumer.kind == "video":
            # A new receiver cannot decode until the next keyframe: ask for one now.
            try:
                await consumer.request_key_frame()
            except (ChannelError, InvalidStateError) as exc:
                logger.info("keyframe request for %r failed: %s", consumer, exc)

    async def producer_close(self, request: Request, message: ProducerAction) -> None:
        participant = self._participant(request, message.conference_id)
        producer = participant.producer(message.producer_id)
        await producer.close()
        await self._producer_changed(request, message, "media:producer_closed")

    async def producer_pause(self, request: Request, message: ProducerAction) -> None:
        participant = self._participant(request, message.conference_id)
        await participant.producer(message.producer_id).pause()
        await self._producer_changed(request, message, "media:producer_paused")

    async def producer_resume(self, request: Request, message: ProducerAction) -> None:
        participant = self._participant(request, message.conference_id)
        await participant.producer(message.producer_id).resume()
        await self._producer_changed(request, message, "media:producer_resumed")

    async def _producer_changed(
        self, request: Request, message: ProducerAction, event_type: str
    ) -> None:
        data = {"producer_id": message.producer_id, "user_id": request.user_id}
        request.reply(event_type, data)
        await self._to_others(request, message.conference_id, event_type, data)

    async def consumer_pause(self, request: Request, message: ConsumerAction) -> None:
        participant = self._participant(request, message.conference_id)
        await participant.consumer(message.consumer_id).pause()
        request.reply("media:consumer_paused", {"consumer_id": message.consumer_id})

    async def consumer_resume(self, request: Request, message: ConsumerAction) -> None:
        participant = self._participant(request, message.conference_id)
        consumer = participant.consumer(message.consumer_id)
        await consumer.resume()
        request.reply("media:consumer_resumed", {"consumer_id": message.consumer_id})
        if consumer.kind == "video":
            try:
                await consumer.request_key_frame()
            except (ChannelError, InvalidStateError) as exc:
                logger.info("keyframe request for %r failed: %s", consumer, exc)

    # --- leaving -----------------------------------------------------------------------------

    async def leave(self, request: Request, message: Join) -> None:
        self._participant(request, message.conference_id)
        await self.media.leave_connection(message.conference_id, request.connection_id)
        request.reply(
            "media:peer_left", {"user_id": request.user_id, "conference_id": message.conference_id}
        )

    async def connection_closed(self, connection: Connection) -> None:
        conference_id = self.rooms.connection_rooms.get(connection.connection_id)
        if conference_id is not None:
            await self.media.leave_connection(conference_id, connection.connection_id)

    # --- helpers -----------------------------------------------------------------------------

    def _participant(self, request: Request, conference_id: str) -> ParticipantMedia:
        return self.rooms.participant(conference_id, request.connection_id)

    async def _to_others(
        self, request: Request, conference_id: str, event_type: str, data: dict[str, Any]
    ) -> None:
        room = self.rooms.get_room(conference_id)
        if room is not None:
            await self.media.publish(
                room.user_ids(), event_type, data, exclude_connection=request.connection_id
            )


def _guarded(
    parse: Callable[[dict[str, Any]], M], handle: Callable[[Request, M], Awaitable[None]]
) -> Callable[[Request, dict[str, Any]], Awaitable[None]]:
    """Parse and handle one message, answering every failure with `media:error`."""

    async def run(request: Request, data: dict[str, Any]) -> None:
        try:
            await handle(request, parse(data))
        except (RoomError, ValueError, ChannelError, InvalidStateError) as exc:
            reply_error(request, describe_failure(exc))
        except Exception:
            logger.exception("%r: %s failed", request.connection, request.type)
            reply_error(request, "the server failed to handle this message")

    return run


def register_media_signaling(hub: Realtime, media: ConferenceMedia) -> MediaSignaling:
    signaling = MediaSignaling(hub, media)
    signaling.register()
    return signaling
