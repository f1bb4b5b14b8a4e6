"""The interface through which the REST API hands events to the real-time layer.

The API resolves who should receive an event (it has the database session);
the real-time layer delivers it to their WebSocket connections, locally or
across nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class EventPublisher(Protocol):
    async def publish(
        self,
        user_ids: Iterable[str],
        event_type: str,
        data: dict[str, Any],
        *,
        exclude_user: str | None = None,
        exclude_connection: str | None = None,
    ) -> None:
        """Send `{"type": event_type, "data": data}` to every connection of `user_ids`.

        `exclude_user` skips all connections of that user, unless `exclude_connection`
        names one of that user's own connections: then only that one is skipped,
        so the sender's other tabs still receive the event.
        """

    async def message_posted(self, channel_id: str, author_id: str) -> None:
        """A message was posted: the author's typing indicator in the channel ends."""
