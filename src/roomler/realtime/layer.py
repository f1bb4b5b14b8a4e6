"""`Realtime`: the real-time layer of one server, and the `EventPublisher` the REST API uses.

It owns the connection storage, the handler registry and typing indicators, and is given
its dispatcher and presence: one node's (`LocalDispatcher`, `PresenceService`) or the
cluster's (`roomler.cluster`), the same interfaces either way. `roomler.app` decides
which and composes them; this layer imports nothing of the cluster, the conferences or
the REST API. `endpoint.py` runs each WebSocket against it. Other features plug in
through `registry.register(...)` (message handlers) and `on_disconnect(...)` (cleanup
when any connection goes away).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.auth.tokens import TokenIssuer
from roomler.config import Settings
from roomler.db.queries import channel_member_ids, channel_writers, with_session
from roomler.realtime.builtin_handlers import BuiltinHandlers
from roomler.realtime.connection import Batcher, CloseHook, Connection, Peer
from roomler.realtime.counters import WsCounters
from roomler.realtime.dispatcher import Dispatcher
from roomler.realtime.handler_registry import HandlerRegistry
from roomler.realtime.open_connections import OpenConnections
from roomler.realtime.presence import Presence
from roomler.realtime.typing_indicator import TypingIndicators, TypingLedger
from roomler.realtime.wire import CLOSE_GOING_AWAY, encode

logger = logging.getLogger(__name__)

# The close reason of the 1001 a server shutdown sends (docs/protocol.md).
SHUTDOWN_REASON = "server shutting down"
# Told when a message is posted (the cluster ends the author's typing on other nodes).
PostedHook = Callable[[str, str], None]


class Realtime:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        tokens: TokenIssuer,
        *,
        storage: OpenConnections,
        dispatcher: Dispatcher,
        presence: Presence,
        typing_ledger: TypingLedger | None = None,
        on_message_posted: PostedHook | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.tokens = tokens
        self.storage = storage
        self.dispatcher = dispatcher
        self.presence = presence
        self.typing = TypingIndicators(
            dispatcher,
            settings.typing.timeout_secs,
            ledger=typing_ledger,
            members=with_session(sessions, channel_member_ids),
        )
        self._on_message_posted = on_message_posted
        self.registry = HandlerRegistry()
        self.close_hooks: list[CloseHook] = []
        # Connections accepted and not yet fully cleaned up (presence, typing, hooks).
        self.live_sessions = 0
        # WebSockets accepted whose endpoint has not returned yet (its close frame sent).
        self.open_sockets = 0
        # Shutting down: new WebSocket upgrades are refused (503), see `drain`.
        self.draining = False
        # Frames in/out and deliveries, plain integers read by /metrics (counters.py).
        self.counters = WsCounters()
        # Ends the tick for which presence and call-participant events wait (wire.py's
        # Coalescable); None when ROOMLER__WS__BATCH_MS is 0: every event written at once.
        batch_ms = settings.ws.batch_ms
        self.batcher = Batcher(batch_ms / 1000) if batch_ms > 0 else None
        # Told of each connection's end with its close code (the server's, else the peer's;
        # None if there was none). The metrics count closes by code (roomler.metrics).
        self.close_observers: list[Callable[[int | None], None]] = []
        BuiltinHandlers(
            with_session(sessions, channel_member_ids),
            with_session(sessions, channel_writers),
            self.typing,
            presence,
        ).register(self.registry)

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
        if self._on_message_posted is not None:
            self._on_message_posted(channel_id, author_id)

    # --- connection lifecycle --------------------------------------------------------------

    def on_disconnect(self, hook: CloseHook) -> None:
        """Run `hook(connection)` whenever any connection goes away."""
        self.close_hooks.append(hook)

    def open(self, connection: Connection) -> None:
        self.storage.add(connection.user_id, connection.connection_id, connection)
        self.live_sessions += 1
        self.counters.opened += 1

    async def arrived(
        self, connection: Connection, stored_presence: str, tenant_ids: Collection[str]
    ) -> None:
        """Announce an opened connection (presence), before its first message is handled."""
        await self.presence.connected(
            connection.user_id, stored_presence, connection.connection_id, tenant_ids
        )

    async def closed(self, connection: Connection) -> None:
        """Forget a connection that has gone: delivery, typing, hooks, then presence."""
        self.storage.remove(connection.user_id, connection.connection_id, connection)
        try:
            await self._run_cleanup(connection)
        finally:
            self.live_sessions -= 1
            self.counters.closed += 1

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

    def refuse_new(self) -> None:
        """From now on refuse WebSocket upgrades (503): the node is draining."""
        self.draining = True

    async def shutdown(self) -> None:
        """Drop typing indicators and ask every connection to close with 1001 (going
        away: reconnect), once what is queued for it has been written."""
        self.draining = True
        self.typing.close()
        for sender in self.storage:
            if isinstance(sender, Connection):
                sender.close_after_queued(CLOSE_GOING_AWAY, SHUTDOWN_REASON)

    def close_all_now(self) -> None:
        """Close every connection at once, whatever is still queued (time is up)."""
        for sender in self.storage:
            if isinstance(sender, Connection):
                sender.close(CLOSE_GOING_AWAY, SHUTDOWN_REASON)

    async def drained(self, timeout_secs: float) -> None:
        """Wait, at most `timeout_secs`, until closed connections are cleaned up."""
        deadline = time.monotonic() + timeout_secs
        while self.live_sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def sockets_closed(self, timeout_secs: float) -> bool:
        """Wait, at most `timeout_secs`, until every WebSocket has sent its close frame."""
        deadline = time.monotonic() + timeout_secs
        while self.open_sockets and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return not self.open_sockets
