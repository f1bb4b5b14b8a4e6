"""`ClusterDispatcher`: the `Dispatcher` of a node that shares its users with other nodes.

A broadcast is delivered in two parts. This node's own connections get the frame at
once, straight from `OpenConnections`, exactly as with `LocalDispatcher`. For the other nodes
one Redis script (`scripts.ROUTE`) looks up which nodes hold connections of the
recipients (the `user:<id>` hashes) and publishes one envelope per such node, on that
node's own channel, naming only the recipients it holds. The publishing node is never
among them, and a node never hears of users it does not hold: every connection gets
the frame exactly once.

While Redis is unreachable only the local part happens; nothing is queued for later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from roomler.cluster.link import RedisLink, RedisUnavailable
from roomler.cluster.scripts import ROUTE, TO_CONNECTION
from roomler.cluster.wire import USERS
from roomler.realtime.dispatcher import LocalDispatcher
from roomler.realtime.open_connections import OpenConnections

logger = logging.getLogger(__name__)

# Recipients per route command: a huge broadcast becomes several commands.
ROUTE_CHUNK = 1000


class ClusterDispatcher:
    def __init__(
        self, storage: OpenConnections, link: RedisLink, prefix: str, node_id: str
    ) -> None:
        self.storage = storage
        self.local = LocalDispatcher(storage)
        self.link = link
        self.prefix = prefix
        self.node_id = node_id

    async def send_to_user(self, user_id: str, frame: str) -> int:
        return await self.broadcast((user_id,), frame)

    async def send_to_connection(self, connection_id: str, frame: str) -> bool:
        """Local connections at once; others through the node holding them.

        For a connection on another node, True means the frame was handed to Redis for
        the node that holds it (Redis knows the connection), not that it was queued there.
        """
        if self.storage.get_sender_by_connection(connection_id) is not None:
            return self.local.deliver_to_connection(connection_id, frame)
        command = TO_CONNECTION.command(self.prefix, self.node_id, connection_id, frame)
        return self.link.send(*command)

    async def broadcast(
        self,
        user_ids: Iterable[str],
        frame: str,
        *,
        exclude_user: str | None = None,
        exclude_connection: str | None = None,
        remote_only: bool = False,
        kind: str = USERS,
    ) -> int:
        """Deliver here, then route to the other nodes; returns the local deliveries.

        `remote_only` skips this node's connections (they already have the frame);
        `kind` is the envelope kind the other nodes get (`wire.PRESENCE` for presence).
        """
        users = set(user_ids)
        skip_user, skip_connection = await self.exclusions(exclude_user, exclude_connection)
        delivered = 0
        if not remote_only:
            delivered = self.local.deliver(users, frame, skip_user, skip_connection)
        if self.link.up:
            if skip_user is not None:
                users.discard(skip_user)
            self.route(kind, sorted(users), frame, skip_user or "", skip_connection or "")
        return delivered

    def route(
        self,
        kind: str,
        users: list[str],
        body: str,
        skip_user: str = "",
        skip_connection: str = "",
    ) -> None:
        """Publish a `kind` envelope to every other node holding connections of `users`."""
        for start in range(0, len(users), ROUTE_CHUNK):
            chunk = users[start : start + ROUTE_CHUNK]
            command = ROUTE.command(
                self.prefix, self.node_id, kind, skip_user, skip_connection, body, *chunk
            )
            self.link.send(*command)

    async def exclusions(
        self, exclude_user: str | None, exclude_connection: str | None
    ) -> tuple[str | None, str | None]:
        """The exclusion rule, where `exclude_connection` may live on another node."""
        if exclude_user is None or exclude_connection is None:
            return self.local.exclusions(exclude_user, exclude_connection)
        owner = self.storage.user_of_connection(exclude_connection)
        if owner is None:
            owner = await self.remote_owner(exclude_connection)
        if owner == exclude_user:
            return None, exclude_connection
        return exclude_user, None

    async def remote_owner(self, connection_id: str) -> str | None:
        """The user of a connection held by another node, if Redis knows it."""
        try:
            where = await self.link.call("HGET", self.prefix + "conns", connection_id)
        except RedisUnavailable:
            return None
        if not isinstance(where, str) or " " not in where:
            return None
        return where.split(" ", 1)[1]

    def is_connected(self, user_id: str) -> bool:
        """Whether the user has a connection on this node (cluster presence asks Redis)."""
        return self.storage.is_connected(user_id)
