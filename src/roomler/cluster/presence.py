"""Presence across nodes: the rules of `realtime.presence`, with the state in Redis.

Which nodes hold a user's connections, the user's choice and what their peers were last
told all live in Redis and change only inside Lua scripts (`scripts.ARRIVE`, `DEPART`,
`CHOOSE`). Each script says whether what peers see changed; since a script runs
atomically, exactly one node learns of each change and announces it. A user with tabs
on two nodes therefore goes `offline` once, when the last tab anywhere closes.

Each node also remembers what its own connections were last told about everyone
(`_heard`, fed by every presence announcement delivered here). While Redis is unreachable
the node decides from what it knows itself and tells its own connections only. When
Redis is back, the node re-publishes its users (`resynced`: changes go to the other
nodes) and corrects its own connections wherever what they heard differs from the
cluster's state (`reconcile`), so every node converges whatever order they come back in;
a change a node corrected that way is not delivered again when its own node announces it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any

from roomler.cluster.dispatcher import ClusterDispatcher
from roomler.cluster.link import RedisLink, RedisUnavailable
from roomler.cluster.scripts import ARRIVE, CHOOSE, DEPART, SEEN
from roomler.cluster.wire import PRESENCE
from roomler.realtime.presence import (
    OFFLINE,
    KeyedLocks,
    PeerLookup,
    PresenceStore,
    seen_by_others,
)
from roomler.realtime.wire import encode

logger = logging.getLogger(__name__)

PeerPairs = Callable[[list[str]], Awaitable[list[tuple[str, str]]]]

# How long after a reconcile the same change announced by its node is a duplicate here.
CORRECTION_SECS = 10.0


def presence_frame(user_id: str, presence: str) -> str:
    return encode("presence:update", {"user_id": user_id, "presence": presence})


class ClusterPresence:
    def __init__(
        self,
        dispatcher: ClusterDispatcher,
        link: RedisLink,
        prefix: str,
        node_id: str,
        peers_of: PeerLookup,
        store: PresenceStore,
        peer_pairs: PeerPairs,
    ) -> None:
        self.dispatcher = dispatcher
        self.storage = dispatcher.storage
        self.link = link
        self.prefix = prefix
        self.node_id = node_id
        self._peers_of = peers_of
        self._store = store
        self._peer_pairs = peer_pairs
        # For users connected here: their choice, and what their peers everywhere were
        # last told (absent: offline), from the scripts' answers.
        self._chosen: dict[str, str] = {}
        self._told: dict[str, str] = {}
        # For every user: what this node's connections were last told (absent: offline).
        self._heard: dict[str, str] = {}
        # What the last `reconcile` told this node's connections, and when.
        self._corrected: dict[str, tuple[str, float]] = {}
        self._locks = KeyedLocks()

    def chosen(self, user_id: str) -> str | None:
        return self._chosen.get(user_id)

    def told(self) -> dict[str, str]:
        """What peers everywhere were told of this node's users, before any outage."""
        return {user_id: self._told.get(user_id, OFFLINE) for user_id in self._chosen}

    # --- the Presence interface --------------------------------------------------------------

    async def connected(
        self,
        user_id: str,
        stored: str,
        connection_id: str | None = None,
        tenant_ids: Collection[str] = (),
    ) -> None:
        # The user's peers are read from the database at each announcement (`peers_of`):
        # they may be connected to any node, which no node's memory knows.
        if connection_id is None:
            raise ValueError("cluster presence needs the connection id")
        async with self._locks.hold(user_id):
            command = ARRIVE.command(self.prefix, self.node_id, connection_id, user_id, stored)
            try:
                chosen, told, changed = await self.link.call(*command)
            except RedisUnavailable:
                self._chosen.setdefault(user_id, stored)
                change = self._local_change(user_id)
            else:
                self._chosen[user_id] = chosen
                change = self._remember(user_id, told, changed)
            self._forget_if_gone(user_id)
            if change is not None:
                await self.announce(user_id, change)

    def tenant_joined(self, user_id: str, tenant_id: str) -> None:
        """Nothing to do: the peers are read at each announcement."""

    def tenant_left(self, user_id: str, tenant_id: str) -> None:
        """Nothing to do: the peers are read at each announcement."""

    async def disconnected(self, user_id: str, connection_id: str | None = None) -> None:
        if connection_id is None:
            raise ValueError("cluster presence needs the connection id")
        async with self._locks.hold(user_id):
            command = DEPART.command(self.prefix, self.node_id, connection_id, user_id)
            try:
                told, changed = await self.link.call(*command)
            except RedisUnavailable:
                change = self._local_change(user_id)
            else:
                change = self._remember(user_id, told, changed)
            self._forget_if_gone(user_id)
            if change is not None:
                await self.announce(user_id, change)

    async def choose(self, user_id: str, presence: str) -> None:
        await self._store(user_id, presence)
        async with self._locks.hold(user_id):
            try:
                previous, told, changed = await self.link.call(
                    *CHOOSE.command(self.prefix, user_id, presence)
                )
            except RedisUnavailable:
                previous = self._chosen.get(user_id)
                if self.storage.is_connected(user_id):
                    self._chosen[user_id] = presence
                change = self._local_change(user_id)
            else:
                if self.storage.is_connected(user_id):
                    self._chosen[user_id] = presence
                change = self._remember(user_id, told, changed)
            if (previous or None) != presence:
                await self.dispatcher.send_to_user(user_id, presence_frame(user_id, presence))
            if change is not None:
                await self.announce(user_id, change)

    async def snapshot(self, user_ids: Iterable[str], viewer_id: str) -> dict[str, str]:
        ids = list(user_ids)
        if not ids:
            return {}
        try:
            values = await self.link.call(*SEEN.command(self.prefix, viewer_id, *ids))
        except RedisUnavailable:
            return {user_id: self._seen_here(user_id, viewer_id) for user_id in ids}
        return dict(zip(ids, values, strict=True))

    def _seen_here(self, user_id: str, viewer_id: str) -> str:
        chosen = self._chosen.get(user_id)
        if chosen is None or not self.storage.is_connected(user_id):
            return OFFLINE
        return chosen if viewer_id == user_id else seen_by_others(chosen, True)

    # --- announcing ----------------------------------------------------------------------------

    async def announce(self, user_id: str, visible: str, *, remote_only: bool = False) -> None:
        """Tell the user's peers on every node (or only on the other nodes) what they see."""
        peers = await self._peers_of(user_id)
        frame = presence_frame(user_id, visible)
        if not remote_only:
            self.heard(user_id, visible)
        await self.dispatcher.broadcast(
            peers, frame, exclude_user=user_id, remote_only=remote_only, kind=PRESENCE
        )

    def heard(self, user_id: str, visible: str) -> None:
        """This node's connections were told `visible` about the user."""
        if visible == OFFLINE:
            self._heard.pop(user_id, None)
        else:
            self._heard[user_id] = visible

    def arrived_from_elsewhere(self, frame: str) -> bool:
        """A presence announcement from another node: False if it must not be delivered.

        Nodes that come back from an outage at the same time may tell this node's
        connections the same change twice: this node's `reconcile` found it in Redis,
        and the node that made it announces it a moment later. That announcement is
        dropped (once, within `CORRECTION_SECS`).
        """
        data = json.loads(frame).get("data") or {}
        user_id, visible = data.get("user_id"), data.get("presence")
        if not isinstance(user_id, str) or not isinstance(visible, str):
            raise ValueError("a presence envelope without user_id and presence")
        corrected = self._corrected.pop(user_id, None)
        if corrected is not None and corrected[0] == visible:
            if time.monotonic() - corrected[1] < CORRECTION_SECS:
                return False
        self.heard(user_id, visible)
        return True

    async def resynced(self, states: list[Any]) -> None:
        """Tell the other nodes what a resync changed (`[user, told, changed]` per user);
        `reconcile` then corrects this node's own connections."""
        for user_id, told, changed in states:
            async with self._locks.hold(user_id):
                if self.storage.is_connected(user_id):
                    self._told[user_id] = told
                if changed:
                    await self.announce(user_id, told, remote_only=True)

    async def reconcile(self) -> None:
        """Correct what this node's connections were told wherever it differs from Redis.

        They missed whatever was announced while this node was cut off (other nodes'
        changes, dead nodes' users going offline) and may have been told things only
        this node believed. Each difference goes to the user's peers connected here.
        """
        told: dict[str, str] = await self.link.call("HGETALL", self.prefix + "told")
        differs = {
            user_id: told.get(user_id, OFFLINE)
            for user_id in {*told, *self._heard}
            if told.get(user_id, OFFLINE) != self._heard.get(user_id, OFFLINE)
        }
        self._heard = dict(told)
        now = time.monotonic()
        self._corrected = {user_id: (visible, now) for user_id, visible in differs.items()}
        if not differs:
            return
        local_users = self.storage.all_user_ids()
        for viewer_id, user_id in await self._peer_pairs(local_users):
            if user_id in differs and viewer_id != user_id:
                frame = presence_frame(user_id, differs[user_id])
                self.dispatcher.local.deliver((viewer_id,), frame)

    def _remember(self, user_id: str, told: str, changed: int) -> str | None:
        self._told[user_id] = told
        return told if changed else None

    def _local_change(self, user_id: str) -> str | None:
        """Without Redis: what this node's connections should now be told, if anything."""
        connected = self.storage.is_connected(user_id)
        visible = seen_by_others(self._chosen.get(user_id, OFFLINE), connected)
        if visible == self._heard.get(user_id, OFFLINE):
            return None
        return visible

    def _forget_if_gone(self, user_id: str) -> None:
        if not self.storage.is_connected(user_id):
            self._chosen.pop(user_id, None)
            self._told.pop(user_id, None)
