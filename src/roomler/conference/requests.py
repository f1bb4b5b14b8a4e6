"""The client → server `media:*` messages as `RequestData` models, each with `parse(data)`.

`parse` takes the frame's `data` object and raises `ValueError` naming the first field
that is missing or wrong (`roomler.realtime.request_data`). The SFU's own objects
(`rtp_parameters`, `rtp_capabilities`, `dtls_parameters`) are passed on as given, in
mediasoup-client's camelCase; the worker checks their contents.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from roomler.realtime.request_data import Id, RequestData

MEDIA_KINDS = ("audio", "video")
# Transports, producers and consumers have uuid4 ids; anything longer is not ours.
MAX_OBJECT_ID_LENGTH = 64
# A producer's `app_data` is relayed to every peer (`media:new_producer`): kept small.
MAX_APP_DATA_BYTES = 4096

ObjectId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_OBJECT_ID_LENGTH,
        description=f"a non-empty string of at most {MAX_OBJECT_ID_LENGTH} characters",
    ),
]
SfuObject = Annotated[dict[str, Any], Field(description="an object")]


def _small_app_data(value: dict[str, Any]) -> dict[str, Any]:
    """At most `MAX_APP_DATA_BYTES` once serialized, and sendable as UTF-8."""
    try:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800") cannot be sent on as UTF-8
        raise ValueError("must not contain lone surrogates") from None
    if size > MAX_APP_DATA_BYTES:
        raise ValueError(f"must be at most {MAX_APP_DATA_BYTES} bytes as JSON, got {size}")
    return value


AppData = Annotated[dict[str, Any], Field(description="an object"), AfterValidator(_small_app_data)]


class Join(RequestData):
    """`media:join`: the conference, and the connection this one replaces after a reconnect."""

    conference_id: Id
    previous_connection_id: ObjectId | None = Field(
        default=None,
        description=f"a non-empty string of at most {MAX_OBJECT_ID_LENGTH} characters",
    )


class Leave(RequestData):
    """`media:leave`: just the conference."""

    conference_id: Id


class RestartIce(RequestData):
    """`media:restart_ice`: new ICE credentials for one of the connection's transports."""

    conference_id: Id
    transport_id: ObjectId


class ConnectTransport(RequestData):
    conference_id: Id
    transport_id: ObjectId
    dtls_parameters: SfuObject


class Produce(RequestData):
    conference_id: Id
    kind: Literal["audio", "video"] = Field(description="one of " + "|".join(MEDIA_KINDS))
    rtp_parameters: SfuObject
    app_data: AppData | None = Field(default=None, description="an object")


class Consume(RequestData):
    conference_id: Id
    producer_id: ObjectId
    rtp_capabilities: SfuObject
    # Created paused (mediasoup's advice for video): nothing is sent until
    # `media:consumer_resume`, which the client sends only for a video it shows (last N).
    paused: bool = False


class ProducerAction(RequestData):
    """`media:producer_close|pause|resume`."""

    conference_id: Id
    producer_id: ObjectId


class ConsumerAction(RequestData):
    """`media:consumer_pause|resume`."""

    conference_id: Id
    consumer_id: ObjectId


# More layers than any encoder makes; the SFU clamps to what the producer has.
MAX_LAYER = 15
Layer = Annotated[int, Field(ge=0, le=MAX_LAYER, description=f"an integer from 0 to {MAX_LAYER}")]


class SetPreferredLayers(RequestData):
    """`media:set_preferred_layers`: the most a simulcast consumer should receive."""

    conference_id: Id
    consumer_id: ObjectId
    spatial_layer: Layer
    temporal_layer: Layer | None = Field(
        default=None, description=f"an integer from 0 to {MAX_LAYER}"
    )


class SetConsumerPriority(RequestData):
    """`media:set_consumer_priority`: mediasoup's consumer priority, 1..255."""

    conference_id: Id
    consumer_id: ObjectId
    priority: int = Field(ge=1, le=255, description="an integer from 1 to 255")


class Hand(RequestData):
    """`media:raise_hand` / `media:lower_hand`: one's own hand, or (lowering, by the
    organizer) someone else's."""

    conference_id: Id
    user_id: Id | None = Field(default=None, description="a 24-character lowercase hex id")


class Moderate(RequestData):
    """`media:mute_participant` / `media:remove_participant` / `media:readmit_participant`:
    the organizer acting on another user."""

    conference_id: Id
    user_id: Id
    kind: Literal["audio", "video"] = Field(
        default="audio", description="one of " + "|".join(MEDIA_KINDS)
    )
