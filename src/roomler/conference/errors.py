"""The one error a conference operation raises, whatever failed: `RoomError`.

Its message is for the client (a `media:error`, or an HTTP error body). SFU failures
(a worker that died or refused, a proxy already closed) become `RoomError` here, at the
boundary of the conference layer, so neither the REST API nor the signaling handlers
know the SFU's exception types.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from roomler.sfu import ChannelError, InvalidStateError, RequestFailedError


class RoomError(Exception):
    """A media request that cannot be carried out; the message says why, for the client."""


class MediaUnavailable(RoomError):
    """No worker can host the room (none alive, or the pool has shut down)."""


class ConferenceEnded(RoomError):
    """The conference has ended: it cannot be started again."""


class RoomElsewhere(RoomError):
    """The conference's room is hosted by another node."""

    def __init__(self, conference_id: str, node_id: str, rtp_capabilities: dict[str, Any]):
        super().__init__(f"conference {conference_id} is hosted by node {node_id}")
        self.node_id = node_id
        self.rtp_capabilities = rtp_capabilities


SFU_ERRORS = (ChannelError, InvalidStateError)


def describe_sfu_failure(exc: Exception) -> str:
    """The client-facing message of a failed SFU call."""
    if isinstance(exc, RequestFailedError):
        return exc.error  # the worker's own message, without the method prefix
    return str(exc)


@contextmanager
def sfu_failures_as_room_errors() -> Iterator[None]:
    """Turn an SFU failure raised inside the block into `RoomError`."""
    try:
        yield
    except SFU_ERRORS as exc:
        raise RoomError(describe_sfu_failure(exc)) from exc
