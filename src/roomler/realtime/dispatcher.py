"""Delivery of encoded frames to connections: to a user, to one connection, to many users.

Everything above this layer (the REST publisher, presence, typing, media handlers) hands
frames to a `Dispatcher`. `LocalDispatcher` delivers to this node's `OpenConnections`; a cluster
dispatcher can implement the same four methods by routing over a bus to the node that
holds the connection. A frame is a `str` encoded once (`protocol.encode`) and shared by
every recipient; no send ever waits on a socket (`WsSender.send` only queues).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from roomler.realtime.open_connections import OpenConnections


class Dispatcher(Protocol):
    async def send_to_user(self, user_id: str, frame: str) -> int:
        """Queue `frame` on every connection of the user; returns how many took it."""
        ...

    async def send_to_connection(self, connection_id: str, frame: str) -> bool:
        """Queue `frame` on one connection; False when it is unknown or closing."""
        ...

    async def broadcast(
        self,
        user_ids: Iterable[str],
        frame: str,
        *,
        exclude_user: str | None = None,
        exclude_connection: str | None = None,
    ) -> int:
        """Queue `frame` on every connection of `user_ids` (each user once).

        `exclude_user` skips all of that user's connections, unless `exclude_connection`
        is one of that user's own: then only that connection is skipped. Without
        `exclude_user`, `exclude_connection` skips just that connection.
        """
        ...

    def is_connected(self, user_id: str) -> bool:
        """Whether the user has at least one open connection."""
        ...


class LocalDispatcher:
    """Delivers to the connections held by this process."""

    def __init__(self, storage: OpenConnections) -> None:
        self.storage = storage

    async def send_to_user(self, user_id: str, frame: str) -> int:
        delivered = 0
        for sender in self.storage.get_senders(user_id):
            delivered += sender.send(frame)
        return delivered

    async def send_to_connection(self, connection_id: str, frame: str) -> bool:
        return self.deliver_to_connection(connection_id, frame)

    async def broadcast(
        self,
        user_ids: Iterable[str],
        frame: str,
        *,
        exclude_user: str | None = None,
        exclude_connection: str | None = None,
    ) -> int:
        skip_user, skip_connection = self.exclusions(exclude_user, exclude_connection)
        return self.deliver(set(user_ids), frame, skip_user, skip_connection)

    def deliver(
        self,
        user_ids: Iterable[str],
        frame: str,
        skip_user: str | None = None,
        skip_connection: str | None = None,
    ) -> int:
        """Queue `frame` on the connections here of `user_ids` (each listed once)."""
        connections = self.storage.connections
        delivered = 0
        for user_id in user_ids:
            if user_id == skip_user:
                continue
            for sender in connections.get(user_id, ()):
                if sender.connection_id != skip_connection:
                    delivered += sender.send(frame)
        return delivered

    def deliver_to_connection(self, connection_id: str, frame: str) -> bool:
        sender = self.storage.get_sender_by_connection(connection_id)
        return sender is not None and sender.send(frame)

    def exclusions(
        self, exclude_user: str | None, exclude_connection: str | None
    ) -> tuple[str | None, str | None]:
        """Resolve the exclusion rule to (user to skip wholly, connection to skip)."""
        if exclude_user is None:
            return None, exclude_connection
        if (
            exclude_connection is not None
            and self.storage.user_of_connection(exclude_connection) == exclude_user
        ):
            return None, exclude_connection
        return exclude_user, None

    def is_connected(self, user_id: str) -> bool:
        return self.storage.is_connected(user_id)
