"""`Realtime`: the real-time layer of one server, and the `EventPublisher` the REST API uses.

It owns the connection storage, the dispatcher, presence, typing indicators and the
handler registry; `endpoint.py` runs each WebSocket against it. Other features plug in
through `registry.register(...)` (message handlers) and `on_disconnect(...)` (cleanup
when any connection goes away).

With `ROOMLER__REDIS__URL` set, the dispatcher and presence are the cluster's
(`roomler.cluster`): the same interfaces, shared with the other nodes through Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.auth.tokens import TokenIssuer
from roomler.config import Settings
from roomler.context import ServerContext
from roomler.realtime.connection import CloseHook, Connection, Peer
from roomler.realtime.counters import WsCounters
from roomler.realtime.dispatcher import Dispatcher, LocalDispatcher
from roomler.realtime.handlers import register_builtin_handlers
from roomler.realtime.membership import channel_members, store_presence, tenant_peer_ids
from roomler.realtime.presence import Presence, PresenceService
from roomler.realtime.protocol import CLOSE_GOING_AWAY, encode
from roomler.realtime.registry import HandlerRegistry
from roomler.realtime.storage import WsStorage
from roomler.realtime.typing_indicator import TypingIndicators

if TYPE_CHECKING:
    from roomler.cluster.node import ClusterNode

logger = logging.getLogger(__name__)

# How long a shutdown waits for closed connections to be cleaned up before leaving.
SHUTDOWN_DRAIN_SECS = 3.0

# Where the server context keeps the layer (`ServerContext.extras`).
REALTIME_KEY = "realtime"


def realtime_of(ctx: ServerContext) -> Realtime:
    hub: Realtime = ctx.extras[REALTIME_KEY]
    return hub


class Realtime:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        tokens: TokenIssuer,
        *,
        storage: WsStorage | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.tokens = tokens
        self.storage = storage or WsStorage()
        self.cluster: ClusterNode | None = None
        self.dispatcher: Dispatcher
        self.presence: Presence
        if dispatcher is None and settings.redis.url:
            from roomler.cluster.node import ClusterNode

            self.cluster = ClusterNode(
                settings.redis,
                self.storage,
                sessions,
                peers_of=self._peers_of,
                store_presence=self._store_presence,
            )
            self.dispatcher = self.cluster.dispatcher
            self.presence = self.cluster.presence
        else:
            self.dispatcher = dispatcher or LocalDispatcher(self.storage)
            self.presence = PresenceService(self.dispatcher, self._peers_of, self._store_presence)
        self.typing = TypingIndicators(
            self.dispatcher,
            settings.typing.timeout_secs,
            ledger=self.cluster,
            members=partial(channel_members, sessions),
        )
        self.registry = HandlerRegistry()
        self.close_hooks: list[CloseHook] = []
        # Connections accepted and not yet fully cleaned up (presence, typing, hooks).
        self.live_sessions = 0
        # Frames in/out and deliveries, plain integers read by /metrics (counters.py).
        self.counters = WsCounters()
        # Told of each connection's end with its close code (the server's, else the peer's;
        # None if there was none). The metrics count closes by code (roomler.metrics).
        self.close_observers: list[Callable[[int | None], None]] = []
        register_builtin_handlers(self.registry)

    # --- EventPublisher --------------------------------------------------------------------

    async def publish(
        self,
        user_ids: Iterable[str],
        event_type: str,
        data: dict[str, Any],
        *,
        exclude_user: str | None = None,
        exclude_connection: str | None = None,
    ) -> None:
        await self.dispatcher.broadcast(
            user_ids,
            encode(event_type, data),
            exclude_user=exclude_user,
            exclude_connection=exclude_connection,
        )

    async def message_posted(self, channel_id: str, author_id: str) -> None:
        await self.typing.message_posted(channel_id, author_id)
        if self.cluster is not None:
            self.cluster.message_posted(channel_id, author_id)

    # --- connection lifecycle --------------------------------------------------------------

    def on_disconnect(self, hook: CloseHook) -> None:
        """Run `hook(connection)` whenever any connection goes away."""
        self.close_hooks.append(hook)

    def open(self, connection: Connection) -> None:
        self.storage.add(connection.user_id, connection.connection_id, connection)
        self.live_sessions += 1

    async def arrived(self, connection: Connection, stored_presence: str) -> None:
        """Announce an opened connection (presence), before its first message is handled."""
        await self.presence.connected(connection.user_id, stored_presence, connection.connection_id)

    async def closed(self, connection: Connection) -> None:
        """Forget a connection that has gone: delivery, typing, hooks, then presence."""
        self.storage.remove(connection.user_id, connection.connection_id, connection)
        try:
            await self._run_cleanup(connection)
        finally:
            self.live_sessions -= 1

    async def _run_cleanup(self, connection: Connection) -> None:
        await self._attempt(
            connection, partial(self.typing.connection_closed, connection.connection_id)
        )
        await self.run_close_hooks(connection)
        await self._attempt(
            connection,
            partial(self.presence.disconnected, connection.user_id, connection.connection_id),
        )

    async def run_close_hooks(self, peer: Peer) -> None:
        """The connection's own hooks, then every `on_disconnect` hook; each one runs."""
        for hook in (*peer.close_hooks, *self.close_hooks):
            await self._attempt(peer, partial(hook, peer))

    async def _attempt(self, connection: Peer, step: Callable[[], Awaitable[None]]) -> None:
        """One cleanup step; a failure is logged and the next step still runs."""
        try:
            await step()
        except Exception:
            logger.exception("cleanup after %r failed in %r", connection, step)

    async def start(self) -> None:
        """Join the cluster, when there is one (Redis unreachable: serve alone meanwhile)."""
        if self.cluster is not None:
            await self.cluster.start(self.typing)

    async def shutdown(self) -> None:
        self.typing.close()
        for sender in self.storage:
            if isinstance(sender, Connection):
                sender.close(CLOSE_GOING_AWAY, "server shutting down")
        if self.cluster is not None:
            deadline = time.monotonic() + SHUTDOWN_DRAIN_SECS
            while self.live_sessions and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await self.cluster.stop()

    # --- database access for presence ------------------------------------------------------

    async def _peers_of(self, user_id: str) -> list[str]:
        return await tenant_peer_ids(self.sessions, user_id)

    async def _store_presence(self, user_id: str, presence: str) -> None:
        await store_presence(self.sessions, user_id, presence)
