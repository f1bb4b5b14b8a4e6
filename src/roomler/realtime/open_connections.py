"""`OpenConnections`: the open WebSocket connections of this node, by user and by connection id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class WsSender(Protocol):
    """One open connection as the delivery side sees it: a non-blocking frame sink."""

    @property
    def user_id(self) -> str: ...

    @property
    def connection_id(self) -> str: ...

    def send(self, frame: str) -> bool:
        """Queue `frame` without waiting; False when the connection is closing or full."""
        ...


class OpenConnections:
    """Two indexes over the same senders.

    `connections` maps a user to their senders (user-level delivery); `connection_map`
    maps a connection id to `(user_id, sender)` (connection-level replies). A user's
    senders are kept as a tuple that is replaced on change, so a broadcast can iterate
    it while a send on it closes (and later removes) a connection.
    """

    def __init__(self) -> None:
        self.connections: dict[str, tuple[WsSender, ...]] = {}
        self.connection_map: dict[str, tuple[str, WsSender]] = {}

    def add(self, user_id: str, connection_id: str, sender: WsSender) -> None:
        if connection_id in self.connection_map:
            raise ValueError(f"connection {connection_id} is already registered")
        self.connection_map[connection_id] = (user_id, sender)
        self.connections[user_id] = self.connections.get(user_id, ()) + (sender,)

    def remove(self, user_id: str, connection_id: str, sender: WsSender) -> bool:
        """Unregister exactly this sender; another tab of the same user stays registered."""
        entry = self.connection_map.get(connection_id)
        if entry is None or entry[1] is not sender:
            return False
        del self.connection_map[connection_id]
        remaining = tuple(s for s in self.connections.get(user_id, ()) if s is not sender)
        if remaining:
            self.connections[user_id] = remaining
        else:
            self.connections.pop(user_id, None)
        return True

    def get_senders(self, user_id: str) -> tuple[WsSender, ...]:
        return self.connections.get(user_id, ())

    def get_sender_by_connection(self, connection_id: str) -> WsSender | None:
        entry = self.connection_map.get(connection_id)
        return entry[1] if entry is not None else None

    def user_of_connection(self, connection_id: str) -> str | None:
        entry = self.connection_map.get(connection_id)
        return entry[0] if entry is not None else None

    def is_connected(self, user_id: str) -> bool:
        return user_id in self.connections

    def all_user_ids(self) -> list[str]:
        return list(self.connections)

    def connection_count(self) -> int:
        return len(self.connection_map)

    def __iter__(self) -> Iterator[WsSender]:
        return iter([sender for _user, sender in self.connection_map.values()])
