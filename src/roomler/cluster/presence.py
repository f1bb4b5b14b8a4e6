"""Presence across nodes: the rules of `realtime.presence`, with the state in Redis.

Which nodes hold a user's connections, the user's choice and what their peers were last
told all live in Redis and change only inside Lua scripts (`scripts.ARRIVE`, `DEPART`,
`CHOOSE`). Each script says whether what peers see changed; since a script runs
atomically, exactly one node learns of each change and announces it. A user with tabs
on two nodes therefore goes `offline` once, when the last tab anywhere closes.

While Redis is unreachable the node decides from what it knows itself (its own
connections, its memory of the user's choice and of what peers were told) and tells
its own connections only. When Redis is back, `resynced` reconciles: a change that this
node's connections already heard about goes to the other nodes only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from roomler.cluster.dispatcher import ClusterDispatcher
from roomler.cluster.link import RedisLink, RedisUnavailable
from roomler.cluster.scripts import ARRIVE, CHOOSE, DEPART, SEEN
from roomler.realtime.presence import (
    OFFLINE,
    KeyedLocks,
    PeerLookup,
    PresenceStore,
    seen_by_others,
)
from roomler.realtime.protocol import encode

logger = logging.getLogger(__name__)


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
    ) -> None:
        self.dispatcher = dispatcher
        self.storage = dispatcher.storage
        self.link = link
        self.prefix = prefix
        self.node_id = node_id
        self._peers_of = peers_of
        self._store = store
        # For users connected here: their choice, and what their peers were last told
        # (absent: offline). Kept from every script's answer; used while Redis is away.
        self._chosen: dict[str, str] = {}
        self._told: dict[str, str] = {}
        self._locks = KeyedLocks()

    def chosen(self, user_id: str) -> str | None:
        return self._chosen.get(user_id)

    def told(self) -> dict[str, str]:
        """What this node believes peers were told of its users (for a resync)."""
        return {user_id: self._told.get(user_id, OFFLINE) for user_id in self._chosen}

    # --- the Presence interface --------------------------------------------------------------

    async def connected(self, user_id: str, stored: str, connection_id: str | None = None) -> None:
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
        """Tell the user's peers (on every node) what they now see."""
        peers = await self._peers_of(user_id)
        await self.dispatcher.broadcast(
            peers, presence_frame(user_id, visible), exclude_user=user_id, remote_only=remote_only
        )

    async def resynced(self, states: list[Any]) -> None:
        """Announce what a resync changed; `states` is `[user, told, changed]` per user."""
        for user_id, told, changed in states:
            async with self._locks.hold(user_id):
                heard_here = self._told.get(user_id, OFFLINE) == told
                if self.storage.is_connected(user_id):
                    self._told[user_id] = told
                if changed:
                    await self.announce(user_id, told, remote_only=heard_here)

    def _remember(self, user_id: str, told: str, changed: int) -> str | None:
        self._told[user_id] = told
        return told if changed else None

    def _local_change(self, user_id: str) -> str | None:
        """Without Redis: what this node's connections should now be told, if anything."""
        connected = self.storage.is_connected(user_id)
        visible = seen_by_others(self._chosen.get(user_id, OFFLINE), connected)
        if visible == self._told.get(user_id, OFFLINE):
            return None
        self._told[user_id] = visible
        return visible

    def _forget_if_gone(self, user_id: str) -> None:
        if not self.storage.is_connected(user_id):
            self._chosen.pop(user_id, None)
            self._told.pop(user_id, None)
