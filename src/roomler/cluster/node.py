"""`ClusterNode`: this process as one node of a cluster sharing Redis (and PostgreSQL).

It builds the link, the dispatcher and presence for the real-time layer, and runs the
node's housekeeping:

- **heartbeat**: every `HEARTBEAT_SECS` the node refreshes `node:<id>:alive` (expiring
  after `NODE_TTL_SECS`). A node that finds itself unregistered (it was reaped while cut
  off) re-publishes its state;
- **sweep**: on the same tick it reaps every registered node whose heartbeat expired.
  The script is atomic, so one node wins each dead node: it announces its users
  `offline` (those with no connection left anywhere) and sends `typing:stop` for
  whatever they were typing. Then every node ticks its attached services (conferences
  check the nodes they depend on);
- **resync**: whenever the link (re)connects, the node replaces what Redis holds for it
  with its own connections, choices and typing indicators (`scripts.RESYNC`);
- **delivery**: envelopes arriving on the node's channel go to its connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.cluster.dispatcher import ClusterDispatcher
from roomler.cluster.link import RedisLink, RedisUnavailable
from roomler.cluster.presence import ClusterPresence
from roomler.cluster.scripts import ALL, HEARTBEAT, LEAVE, RESYNC, SWEEP
from roomler.cluster.wire import (
    CONNECTION,
    POSTED,
    PRESENCE,
    USERS,
    Envelope,
    node_channel,
)
from roomler.config import RedisSettings
from roomler.db.queries import (
    channel_member_ids,
    in_session,
    stored_presences,
    tenant_peer_pairs,
    with_session,
)
from roomler.realtime.open_connections import OpenConnections
from roomler.realtime.presence import OFFLINE, PeerLookup, PresenceStore
from roomler.realtime.typing_indicator import TypingIndicators
from roomler.realtime.wire import encode
from roomler.tasks import BackgroundTasks

logger = logging.getLogger(__name__)

# How long `start` waits for Redis before serving in single-node mode meanwhile.
START_WAIT_SECS = 3.0
# How long a clean leave waits for its last announcements to reach Redis.
LEAVE_FLUSH_SECS = 2.0
# Malformed envelopes are logged at most this often.
BAD_ENVELOPE_LOG_SECS = 10.0

EnvelopeHandler = Callable[[Envelope], None]


class NodeService(Protocol):
    """A feature that runs on every node beside delivery and presence (conferences).

    Attached once at composition (`ClusterNode.attach`); the node calls it for its
    own envelope kinds, after every heartbeat and resync, and when it stops.
    """

    def envelope_handlers(self) -> dict[str, EnvelopeHandler]:
        """The envelope kinds this service handles (no other handler may have them)."""
        ...

    def connection_frame(self, connection_id: str, frame: str) -> None:
        """Sees every frame another node sends to one of our connections, before delivery."""
        ...

    async def tick(self) -> None:
        """After every heartbeat and sweep (check the nodes it depends on)."""
        ...

    async def resynced(self) -> None:
        """After every (re)connect to Redis and the node's resync."""
        ...

    def stopping(self) -> None:
        """The node stops: before it leaves the cluster (synchronous)."""
        ...


def default_node_id() -> str:
    """Host name, process id and a random suffix: unique across restarts."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "node"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class ClusterNode:
    def __init__(
        self,
        settings: RedisSettings,
        storage: OpenConnections,
        sessions: async_sessionmaker[AsyncSession],
        *,
        peers_of: PeerLookup,
        store_presence: PresenceStore,
    ) -> None:
        if not settings.url:
            raise ValueError("a cluster node needs ROOMLER__REDIS__URL")
        self.settings = settings
        self.node_id = settings.node_id or default_node_id()
        self.prefix = settings.key_prefix
        self.storage = storage
        self.sessions = sessions
        self.link = RedisLink(
            settings.url,
            node_channel(self.prefix, self.node_id),
            scripts=ALL,
            on_message=self._on_message,
            on_up=self._resync,
            max_pending=settings.max_pending,
            name=f"node {self.node_id}",
        )
        self.dispatcher = ClusterDispatcher(storage, self.link, self.prefix, self.node_id)
        self.presence = ClusterPresence(
            self.dispatcher,
            self.link,
            self.prefix,
            self.node_id,
            peers_of,
            store_presence,
            with_session(sessions, tenant_peer_pairs),
        )
        self.typing: TypingIndicators | None = None
        self.envelope_handlers: dict[str, EnvelopeHandler] = {
            USERS: self._deliver_to_users,
            PRESENCE: self._deliver_presence,
            CONNECTION: self._deliver_to_connection,
            POSTED: self._message_posted_elsewhere,
        }
        self.services: list[NodeService] = []
        self._epoch = ""
        self._heartbeat: asyncio.Task[None] | None = None
        self._tasks = BackgroundTasks(logger, f"{self!r}: a task failed")
        self._bad_logged_at = 0.0

    def __repr__(self) -> str:
        return f"ClusterNode({self.node_id})"

    def attach(self, service: NodeService) -> None:
        """Run `service` on this node (before `start`)."""
        handlers = service.envelope_handlers()
        taken = set(handlers) & set(self.envelope_handlers)
        if taken:
            raise ValueError(f"envelope kinds {sorted(taken)} already have a handler")
        self.envelope_handlers.update(handlers)
        self.services.append(service)

    # --- TypingLedger: who types here, so another node can stop it if we die -------------------

    def started(self, channel_id: str, user_id: str) -> None:
        self.link.send("SADD", self._typing_key, f"{channel_id}:{user_id}")

    def ended(self, channel_id: str, user_id: str) -> None:
        self.link.send("SREM", self._typing_key, f"{channel_id}:{user_id}")

    @property
    def _typing_key(self) -> str:
        return f"{self.prefix}node:{self.node_id}:typing"

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self, typing: TypingIndicators) -> None:
        self.typing = typing
        await self.link.start(wait_secs=START_WAIT_SECS)
        self._heartbeat = asyncio.get_running_loop().create_task(self._heartbeat_loop())

    async def stop(self) -> None:
        """Leave cleanly: this node's users go offline at once, not after the TTL."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        for service in self.services:
            service.stopping()
        if self.link.up:
            try:
                changes, typing, _conferences = await self.link.call(
                    *LEAVE.command(self.prefix, self.node_id)
                )
                await self._reaped(changes, typing)
                await self.link.flushed(LEAVE_FLUSH_SECS)
            except RedisUnavailable:
                pass
            except Exception:
                logger.exception("%r: leaving the cluster cleanly failed", self)
        self._tasks.cancel_all()
        await self.link.close()

    # --- heartbeat and sweep -----------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_secs)
            if not self.link.up:
                continue
            try:
                await self.tick()
            except RedisUnavailable:
                continue
            except Exception:
                logger.exception("%r: heartbeat failed", self)

    async def tick(self) -> None:
        """One heartbeat and one sweep of dead nodes."""
        ttl_ms = int(self.settings.node_ttl_secs * 1000)
        rejoined = await self.link.call(*HEARTBEAT.command(self.prefix, self.node_id, ttl_ms))
        if rejoined:
            logger.warning("%r was reaped while cut off from Redis; re-publishing its state", self)
            await self._resync()
        dead, changes, typing, conferences = await self.link.call(
            *SWEEP.command(self.prefix, self.node_id)
        )
        if dead:
            logger.warning(
                "%r: node(s) %s stopped their heartbeat; their conferences %s are gone",
                self,
                ", ".join(dead),
                ", ".join(conferences) or "(none)",
            )
            await self._reaped(changes, typing)
        for service in self.services:
            try:
                await service.tick()
            except RedisUnavailable:
                raise
            except Exception:
                logger.exception("%r: %r failed", self, service)

    async def _reaped(self, changes: list[str], typing: list[str]) -> None:
        """Announce what reaping a node changed: presence, and typing that stopped."""
        for i in range(0, len(changes), 2):
            await self.presence.announce(changes[i], changes[i + 1])
        for entry in typing:
            channel_id, _, user_id = entry.partition(":")
            members = await in_session(self.sessions, channel_member_ids, channel_id)
            frame = encode("typing:stop", {"channel_id": channel_id, "user_id": user_id})
            await self.dispatcher.broadcast([m for m in members if m != user_id], frame)

    async def node_alive(self, node_id: str) -> bool:
        """Whether `node_id`'s heartbeat is current (True when Redis cannot tell)."""
        if node_id == self.node_id:
            return True
        try:
            key = f"{self.prefix}node:{node_id}:alive"
            return bool(await self.link.call("EXISTS", key))
        except RedisUnavailable:
            return True

    # --- resync --------------------------------------------------------------------------------

    async def _resync(self) -> None:
        """Replace what Redis holds for this node with what the node holds now."""
        users = self.storage.all_user_ids()
        try:
            stored = await in_session(self.sessions, stored_presences, users)
        except Exception:
            logger.exception("%r: reading presence choices failed; using memory", self)
            stored = {}
        # From here to the script no await: the connections listed are exactly ours.
        connections: list[str] = []
        for sender in self.storage:
            user_id = sender.user_id
            choice = stored.get(user_id) or self.presence.chosen(user_id) or "online"
            connections += [sender.connection_id, user_id, choice]
        told = [v for pair in self.presence.told().items() for v in pair if pair[1] != OFFLINE]
        typing = [f"{c}:{u}" for c, u in self.typing.active()] if self.typing else []
        ttl_ms = int(self.settings.node_ttl_secs * 1000)
        command = RESYNC.command(
            self.prefix,
            self.node_id,
            ttl_ms,
            self._epoch,
            f"{time.time():.0f}-{secrets.token_hex(6)}",
            len(connections) // 3,
            *connections,
            len(told) // 2,
            *told,
            len(typing),
            *typing,
        )
        self._epoch, states = await self.link.call(*command)
        await self.presence.resynced(states)
        await self.presence.reconcile()
        for service in self.services:
            await service.resynced()

    # --- delivery of envelopes from other nodes -------------------------------------------------

    def _on_message(self, text: str) -> None:
        try:
            envelope = Envelope.parse(text)
        except ValueError as exc:
            self._log_bad_envelope(exc)
            return
        handler = self.envelope_handlers.get(envelope.kind)
        if handler is None:
            self._log_bad_envelope(ValueError(f"no handler for kind {envelope.kind!r}"))
            return
        try:
            handler(envelope)
        except ValueError as exc:
            self._log_bad_envelope(exc)

    def _deliver_to_users(self, envelope: Envelope) -> None:
        self.dispatcher.local.deliver(envelope.targets, envelope.body, None, envelope.skip or None)

    def _deliver_presence(self, envelope: Envelope) -> None:
        if self.presence.arrived_from_elsewhere(envelope.body):
            self._deliver_to_users(envelope)

    def _deliver_to_connection(self, envelope: Envelope) -> None:
        for service in self.services:
            service.connection_frame(envelope.targets[0], envelope.body)
        self.dispatcher.local.deliver_to_connection(envelope.targets[0], envelope.body)

    def publish_to(self, node_id: str, envelope: Envelope) -> bool:
        """Send one envelope to one node's channel (in order with everything else)."""
        return self.link.send("PUBLISH", node_channel(self.prefix, node_id), envelope.serialize())

    def message_posted(self, channel_id: str, author_id: str) -> None:
        """The author's typing indicator may live on another node: end it there too."""
        self.dispatcher.route(POSTED, [author_id], channel_id)

    def _message_posted_elsewhere(self, envelope: Envelope) -> None:
        if self.typing is None:
            return
        for author_id in envelope.targets:
            self._tasks.spawn(self.typing.message_posted(envelope.body, author_id))

    def _log_bad_envelope(self, exc: ValueError) -> None:
        now = time.monotonic()
        if now - self._bad_logged_at >= BAD_ENVELOPE_LOG_SECS:
            self._bad_logged_at = now
            logger.error("%r dropped a message from Redis: %s", self, exc)
