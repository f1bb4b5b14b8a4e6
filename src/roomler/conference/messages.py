"""The client → server `media:*` messages as dataclasses, each with `parse(data)`.

`parse` takes the frame's `data` object and raises `ValueError` naming the first field
that is missing or wrong. The SFU's own objects (`rtp_parameters`, `rtp_capabilities`,
`dtls_parameters`) are passed on as given, in mediasoup-client's camelCase; the worker
checks their contents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from roomler.realtime.protocol import require_choice, require_id

MEDIA_KINDS = ("audio", "video")
# Transports, producers and consumers have uuid4 ids; anything longer is not ours.
MAX_OBJECT_ID_LENGTH = 64
# A producer's `app_data` is relayed to every peer (`media:new_producer`): kept small.
MAX_APP_DATA_BYTES = 4096


def require_object_id(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if value is None:
        raise ValueError(f"data.{field} is required")
    if not isinstance(value, str) or not value or len(value) > MAX_OBJECT_ID_LENGTH:
        raise ValueError(
            f"data.{field} must be a non-empty string of at most {MAX_OBJECT_ID_LENGTH} characters"
        )
    return value


def require_object(data: dict[str, Any], field: str) -> dict[str, Any]:
    value = data.get(field)
    if value is None:
        raise ValueError(f"data.{field} is required")
    if not isinstance(value, dict):
        raise ValueError(f"data.{field} must be an object")
    return value


def optional_object(data: dict[str, Any], field: str) -> dict[str, Any] | None:
    if data.get(field) is None:
        return None
    return require_object(data, field)


def optional_app_data(data: dict[str, Any]) -> dict[str, Any] | None:
    """`data.app_data`: a JSON object of at most `MAX_APP_DATA_BYTES` once serialized."""
    value = optional_object(data, "app_data")
    if value is None:
        return None
    try:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800") cannot be sent on as UTF-8
        raise ValueError("data.app_data must not contain lone surrogates") from None
    if size > MAX_APP_DATA_BYTES:
        raise ValueError(
            f"data.app_data must be at most {MAX_APP_DATA_BYTES} bytes as JSON, got {size}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Join:
    """`media:join`: the conference, and the connection this one replaces after a reconnect."""

    conference_id: str
    previous_connection_id: str | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Join:
        previous = None
        if data.get("previous_connection_id") is not None:
            previous = require_object_id(data, "previous_connection_id")
        return cls(require_id(data, "conference_id"), previous)


@dataclass(frozen=True, slots=True)
class Leave:
    """`media:leave`: just the conference."""

    conference_id: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Leave:
        return cls(require_id(data, "conference_id"))


@dataclass(frozen=True, slots=True)
class RestartIce:
    """`media:restart_ice`: new ICE credentials for one of the connection's transports."""

    conference_id: str
    transport_id: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> RestartIce:
        return cls(require_id(data, "conference_id"), require_object_id(data, "transport_id"))


@dataclass(frozen=True, slots=True)
class ConnectTransport:
    conference_id: str
    transport_id: str
    dtls_parameters: dict[str, Any]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ConnectTransport:
        return cls(
            require_id(data, "conference_id"),
            require_object_id(data, "transport_id"),
            require_object(data, "dtls_parameters"),
        )


@dataclass(frozen=True, slots=True)
class Produce:
    conference_id: str
    kind: str
    rtp_parameters: dict[str, Any]
    app_data: dict[str, Any] | None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Produce:
        return cls(
            require_id(data, "conference_id"),
            require_choice(data, "kind", MEDIA_KINDS),
            require_object(data, "rtp_parameters"),
            optional_app_data(data),
        )


@dataclass(frozen=True, slots=True)
class Consume:
    conference_id: str
    producer_id: str
    rtp_capabilities: dict[str, Any]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Consume:
        return cls(
            require_id(data, "conference_id"),
            require_object_id(data, "producer_id"),
            require_object(data, "rtp_capabilities"),
        )


@dataclass(frozen=True, slots=True)
class ProducerAction:
    """`media:producer_close|pause|resume`."""

    conference_id: str
    producer_id: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ProducerAction:
        return cls(require_id(data, "conference_id"), require_object_id(data, "producer_id"))


@dataclass(frozen=True, slots=True)
class ConsumerAction:
    """`media:consumer_pause|resume`."""

    conference_id: str
    consumer_id: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> ConsumerAction:
        return cls(require_id(data, "conference_id"), require_object_id(data, "consumer_id"))


def require_int(data: dict[str, Any], field: str, low: int, high: int) -> int:
    value = data.get(field)
    if value is None:
        raise ValueError(f"data.{field} is required")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"data.{field} must be an integer from {low} to {high}")
    return value


# More layers than any encoder makes; the SFU clamps to what the producer has.
MAX_LAYER = 15


@dataclass(frozen=True, slots=True)
class SetPreferredLayers:
    """`media:set_preferred_layers`: the most a simulcast consumer should receive."""

    conference_id: str
    consumer_id: str
    spatial_layer: int
    temporal_layer: int | None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> SetPreferredLayers:
        temporal = None
        if data.get("temporal_layer") is not None:
            temporal = require_int(data, "temporal_layer", 0, MAX_LAYER)
        return cls(
            require_id(data, "conference_id"),
            require_object_id(data, "consumer_id"),
            require_int(data, "spatial_layer", 0, MAX_LAYER),
            temporal,
        )


@dataclass(frozen=True, slots=True)
class SetConsumerPriority:
    """`media:set_consumer_priority`: mediasoup's consumer priority, 1..255."""

    conference_id: str
    consumer_id: str
    priority: int

    @classmethod
    def parse(cls, data: dict[str, Any]) -> SetConsumerPriority:
        return cls(
            require_id(data, "conference_id"),
            require_object_id(data, "consumer_id"),
            require_int(data, "priority", 1, 255),
        )
