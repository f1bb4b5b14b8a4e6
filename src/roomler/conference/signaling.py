"""The `media:*` WebSocket messages: a browser's side of a conference, on its connection.

Each handler answers the requesting connection only (connection-level, echoing the
request's `request_id`); peers hear about changes user-level, every connection of the
room's users except the acting connection (`RoomNotices.publish`). Any failure is
answered with `media:error {message, request_type, request_id?}` to the requesting
connection, never with the generic `error` (`reply_media_error`, the one place that
shapes it). When a connection closes, its participant leaves the room as on
`media:leave`. `docs/protocol.md` ("Media signaling") is the reference for clients.

With several nodes, a `RequestForwarder` given at construction (`roomler.cluster`) may
take a request first and send it to the node that hosts the conference.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from roomler.conference.conference_media import ConferenceMedia
from roomler.conference.errors import RoomError, sfu_failures_as_room_errors
from roomler.conference.requests import (
    ConnectTransport,
    Consume,
    ConsumerAction,
    Join,
    Leave,
    Produce,
    ProducerAction,
    RestartIce,
    SetConsumerPriority,
    SetPreferredLayers,
)
from roomler.conference.rooms import ParticipantMedia, Reconnecting, request_key_frame
from roomler.conference.turn import ice_servers
from roomler.config import TurnSettings
from roomler.logs import log_context
from roomler.realtime.connection import Peer
from roomler.realtime.handler_registry import Request
from roomler.realtime.layer import Realtime
from roomler.realtime.wire import encode, encode_coalescable
from roomler.sfu import Consumer, Producer, WebRtcTransport

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


def participant_out(participant: ParticipantMedia | Reconnecting) -> dict[str, Any]:
    """One participant connection, as `media:participants` and `media:peer_joined` name it."""
    out: dict[str, Any] = {
        "user_id": participant.user_id,
        "display_name": participant.display_name,
        "connection_id": participant.connection_id,
    }
    if isinstance(participant, Reconnecting):
        out["reconnecting"] = True  # its connection was lost; it may rejoin
    return out


def reply_media_error(request: Request, message: str) -> None:
    """`media:error {message, request_type, request_id?}` to the requesting connection."""
    data = {"message": message, "request_type": request.type}
    if request.request_id is not None:
        data["request_id"] = request.request_id
    request.reply(MEDIA_ERROR, data)


class RequestForwarder(Protocol):
    """Takes a `media:*` request that another node must handle (`roomler.cluster`)."""

    async def sent_elsewhere(self, request: Request, data: dict[str, Any]) -> bool:
        """True when the request went to another node (or was answered for it)."""
        ...


class MediaSignaling:
    """The `media:*` handlers and the disconnect cleanup, registered on a `Realtime` layer."""

    def __init__(
        self,
        media: ConferenceMedia,
        turn: TurnSettings,
        *,
        forwarder: RequestForwarder | None = None,
        video_last_n: int = 9,
    ) -> None:
        self.media = media
        self.turn = turn
        self.video_last_n = video_last_n
        self.forwarder = forwarder

    def register(self, realtime: Realtime) -> None:
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
            ("media:restart_ice", RestartIce.parse, self.restart_ice),
            ("media:set_preferred_layers", SetPreferredLayers.parse, self.set_preferred_layers),
            ("media:set_consumer_priority", SetConsumerPriority.parse, self.set_priority),
            ("media:leave", Leave.parse, self.leave),
        ]
        for message_type, parse, handle in handlers:
            self.add(realtime, message_type, parse, handle)
        realtime.on_disconnect(self.connection_closed)

    def add(
        self,
        realtime: Realtime,
        message_type: str,
        parse: Callable[[dict[str, Any]], M],
        handle: Callable[[Request, M], Awaitable[None]],
    ) -> None:
        """Register one more `media:*` handler (conference/in_call.py): forwarded to the
        node hosting the room, its failures answered with `media:error`."""
        realtime.registry.register(message_type, self._guarded(parse, handle))

    # --- joining -----------------------------------------------------------------------------

    async def join(self, request: Request, message: Join) -> None:
        room, participant, replaced = await self.media.join(
            message.conference_id,
            request.user_id,
            request.connection_id,
            message.previous_connection_id,
        )
        # No await from here on: the producers and participants listed are exactly those
        # there before this connection became a participant; later ones reach it by broadcast.
        servers = ice_servers(self.turn, request.user_id, time.time())
        request.reply(
            "media:router_capabilities", {"rtp_capabilities": room.router.rtp_capabilities}
        )
        request.reply(
            "media:transport_created",
            {
                "send_transport": transport_out(participant.send_transport),
                "recv_transport": transport_out(participant.recv_transport),
                "ice_servers": servers,
                "video_last_n": self.video_last_n,
            },
        )
        for owner, producer in room.producers(exclude_connection=request.connection_id):
            request.reply("media:new_producer", new_producer_out(owner, producer))
        others: list[ParticipantMedia | Reconnecting] = [
            p for p in room.participants.values() if p is not participant
        ]
        others += room.reconnecting.values()
        request.reply(
            "media:participants",
            {
                "conference_id": message.conference_id,
                "participants": [participant_out(other) for other in others],
                "raised_hands": list(room.hands),
            },
        )
        joined = {"conference_id": message.conference_id, **participant_out(participant)}
        if replaced:
            joined["previous_connection_id"] = message.previous_connection_id
        event = "media:peer_reconnected" if replaced else "media:peer_joined"
        # The others' copy may wait for the batching tick (docs/protocol.md, Batches).
        await self._to_others(request, message.conference_id, event, joined, coalesce=True)
        await self.media.speakers.tell_active_speaker(room, request.connection_id)

    # --- transports, producers, consumers ----------------------------------------------------

    async def connect_transport(self, request: Request, message: ConnectTransport) -> None:
        participant = self._participant(request, message.conference_id)
        transport = participant.transport(message.transport_id)
        await transport.connect(message.dtls_parameters)
        request.reply("media:transport_connected", {"transport_id": transport.id})

    async def restart_ice(self, request: Request, message: RestartIce) -> None:
        participant = self._participant(request, message.conference_id)
        transport = participant.transport(message.transport_id)
        ice_parameters = await transport.restart_ice()
        request.reply(
            "media:ice_restarted", {"transport_id": transport.id, "ice_parameters": ice_parameters}
        )

    async def produce(self, request: Request, message: Produce) -> None:
        participant = self._participant(request, message.conference_id)
        producer = await participant.send_transport.produce(
            message.kind, message.rtp_parameters, message.app_data
        )
        participant.add_producer(producer)
        request.reply("media:produce_result", {"id": producer.id})
        room = self.media.room(message.conference_id)
        if room is not None:
            await self.media.producer_added(room, participant, producer)
        await self._to_others(
            request,
            message.conference_id,
            "media:new_producer",
            new_producer_out(participant, producer),
        )

    async def consume(self, request: Request, message: Consume) -> None:
        participant = self._participant(request, message.conference_id)
        room = self.media.room(message.conference_id)
        producer = room.find_producer(message.producer_id) if room is not None else None
        if room is None or producer is None:
            raise RoomError(f"unknown producer {message.producer_id}")
        if not await producer.transport.router.can_consume(producer.id, message.rtp_capabilities):
            raise RoomError(
                f"cannot consume producer {producer.id}: "
                "the rtp_capabilities support none of its codecs"
            )
        await self.media.make_consumable(room, producer, participant)  # piped if elsewhere
        consumer = await participant.recv_transport.consume(
            producer.id, message.rtp_capabilities, paused=message.paused
        )
        room.pipes.consumer_added(consumer, producer.id, participant.router)
        participant.add_consumer(consumer)
        request.reply(
            "media:consumer_created",
            {
                "id": consumer.id,
                "producer_id": producer.id,
                "kind": consumer.kind,
                "type": consumer.type,
                "rtp_parameters": consumer.rtp_parameters,
                "producer_paused": consumer.producer_paused,
                "paused": consumer.paused,
            },
        )
        self._report_consumer_changes(consumer, request.connection_id)
        if not message.paused:
            await request_key_frame(consumer)

    def _report_consumer_changes(self, consumer: Consumer, connection_id: str) -> None:
        """The SFU's layer and score events of ``consumer``, to the connection consuming."""
        dispatcher = self.media.dispatcher

        def to_connection(event_type: str) -> Callable[[dict[str, Any]], Awaitable[None]]:
            async def send(data: dict[str, Any]) -> None:
                frame = encode(event_type, {"consumer_id": consumer.id, **data})
                await dispatcher.send_to_connection(connection_id, frame)

            return send

        consumer.on("layerschange", to_connection("media:consumer_layers_changed"))
        consumer.on("score", to_connection("media:consumer_score"))

    async def set_preferred_layers(self, request: Request, message: SetPreferredLayers) -> None:
        participant = self._participant(request, message.conference_id)
        consumer = participant.consumer(message.consumer_id)
        if consumer.type not in ("simulcast", "svc"):
            raise RoomError(f"consumer {consumer.id} is {consumer.type}: it has no layers")
        layers = await consumer.set_preferred_layers(message.spatial_layer, message.temporal_layer)
        preferred = layers["preferredLayers"]
        request.reply(
            "media:preferred_layers_set",
            {
                "consumer_id": consumer.id,
                "spatial_layer": preferred["spatialLayer"],
                "temporal_layer": preferred["temporalLayer"],
            },
        )

    async def set_priority(self, request: Request, message: SetConsumerPriority) -> None:
        participant = self._participant(request, message.conference_id)
        consumer = participant.consumer(message.consumer_id)
        await consumer.set_priority(message.priority)
        request.reply(
            "media:consumer_priority_set",
            {"consumer_id": consumer.id, "priority": consumer.priority},
        )

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
        await request_key_frame(consumer)

    # --- leaving -----------------------------------------------------------------------------

    async def leave(self, request: Request, message: Leave) -> None:
        self._participant(request, message.conference_id)
        await self.media.leave_connection(message.conference_id, request.connection_id)
        request.reply(
            "media:peer_left", {"user_id": request.user_id, "conference_id": message.conference_id}
        )

    async def connection_closed(self, connection: Peer) -> None:
        conference_id = self.media.conference_of(connection.connection_id)
        if conference_id is not None:
            await self.media.connection_lost(conference_id, connection.connection_id)

    # --- helpers -----------------------------------------------------------------------------

    def _participant(self, request: Request, conference_id: str) -> ParticipantMedia:
        return self.media.participant(conference_id, request.connection_id)

    async def _to_others(
        self,
        request: Request,
        conference_id: str,
        event_type: str,
        data: dict[str, Any],
        *,
        coalesce: bool = False,
    ) -> None:
        room = self.media.room(conference_id)
        if room is None:
            return
        if coalesce:
            await self.media.dispatcher.broadcast(
                room.user_ids(),
                encode_coalescable(event_type, data),
                exclude_connection=request.connection_id,
            )
            return
        await self.media.notices.publish(
            room.user_ids(), event_type, data, exclude_connection=request.connection_id
        )

    def _guarded(
        self,
        parse: Callable[[dict[str, Any]], M],
        handle: Callable[[Request, M], Awaitable[None]],
    ) -> Callable[[Request, dict[str, Any]], Awaitable[None]]:
        """Forward, or parse and handle, one message, answering any failure with `media:error`."""

        async def run(request: Request, data: dict[str, Any]) -> None:
            conference_id = data.get("conference_id")
            known = conference_id if isinstance(conference_id, str) else None
            with log_context(conference_id=known):
                try:
                    if self.forwarder is not None and await self.forwarder.sent_elsewhere(
                        request, data
                    ):
                        return
                    with sfu_failures_as_room_errors():
                        await handle(request, parse(data))
                except (RoomError, ValueError) as exc:
                    reply_media_error(request, str(exc))
                except Exception:
                    logger.exception("%r: %s failed", request.connection, request.type)
                    reply_media_error(request, "the server failed to handle this message")

        return run
