"""Presence: the state a user chose, what others see of it, and who is told when it changes.

A user *chooses* one of `online|idle|dnd|offline|invisible`; the choice is stored on the
user and survives reconnects. Others *see* `offline` while the user has no connection or
chose `invisible`, else the choice; the user's own connections see the choice itself.
An event goes to the users who share a tenant with the user, and only when what they
see changes (first connection opened, last one closed, a new choice).

On one node the recipients are found in memory: each connected user's tenants come with
the handshake (`connected`), and `PresenceService` keeps who is connected per tenant, so an
announcement costs what it delivers, not a query over every member of the user's tenants
(issue 16). A membership that changes while the user is connected is told to it
(`tenant_joined`, `tenant_left`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from typing import Protocol

from roomler.realtime.dispatcher import Dispatcher
from roomler.realtime.wire import encode, encode_coalescable

OFFLINE = "offline"
INVISIBLE = "invisible"

PeerLookup = Callable[[str], Awaitable[list[str]]]
PresenceStore = Callable[[str, str], Awaitable[None]]


def seen_by_others(chosen: str, connected: bool) -> str:
    if not connected or chosen == INVISIBLE:
        return OFFLINE
    return chosen


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Presence(Protocol):
    """What the rest of the layer asks of presence; `PresenceService` is one node's.

    The cluster's implementation (`roomler.cluster.presence`) keeps the same rules with
    the state in Redis, so the connection ids matter there.
    """

    async def connected(
        self,
        user_id: str,
        stored: str,
        connection_id: str | None = None,
        tenant_ids: Collection[str] = (),
    ) -> None:
        """A connection of the user opened (it is already registered for delivery);
        `tenant_ids`: the user's tenants, read with the handshake."""
        ...

    def tenant_joined(self, user_id: str, tenant_id: str) -> None:
        """The user became a member of the tenant (committed)."""
        ...

    def tenant_left(self, user_id: str, tenant_id: str) -> None:
        """The user is no longer a member of the tenant (committed)."""
        ...

    async def disconnected(self, user_id: str, connection_id: str | None = None) -> None:
        """A connection of the user closed (it is already unregistered)."""
        ...

    async def choose(self, user_id: str, presence: str) -> None:
        """The user picked `presence`."""
        ...

    async def snapshot(self, user_ids: Iterable[str], viewer_id: str) -> dict[str, str]:
        """The presence of each user as `viewer_id` sees it."""
        ...


class PresenceService:
    def __init__(self, dispatcher: Dispatcher, store: PresenceStore) -> None:
        self.dispatcher = dispatcher
        self._store = store
        # The choice of every connected user; absent means not connected here.
        self._chosen: dict[str, str] = {}
        # What the user's peers were last told; absent means `offline`.
        self._announced: dict[str, str] = {}
        # The tenants of every connected user, and the connected members of each tenant;
        # a tuple each: most users have one.
        self._tenants_of: dict[str, tuple[str, ...]] = {}
        self._connected_in: dict[str, set[str]] = {}
        self._locks = KeyedLocks()

    def chosen(self, user_id: str) -> str | None:
        return self._chosen.get(user_id)

    def seen_by(self, user_id: str, viewer_id: str) -> str:
        """The presence of `user_id` as `viewer_id` sees it."""
        chosen = self._chosen.get(user_id)
        if chosen is None or not self.dispatcher.is_connected(user_id):
            return OFFLINE
        return chosen if viewer_id == user_id else seen_by_others(chosen, True)

    async def snapshot(self, user_ids: Iterable[str], viewer_id: str) -> dict[str, str]:
        return {user_id: self.seen_by(user_id, viewer_id) for user_id in user_ids}

    async def connected(
        self,
        user_id: str,
        stored: str,
        connection_id: str | None = None,
        tenant_ids: Collection[str] = (),
    ) -> None:
        """A connection of the user opened (it is already registered for delivery)."""
        # A choice made by an open tab is newer than the row read at this handshake.
        self._chosen.setdefault(user_id, stored)
        for tenant_id in tenant_ids:  # a later tab's handshake may know a newer membership
            self.tenant_joined(user_id, tenant_id)
        await self._announce(user_id)

    async def disconnected(self, user_id: str, connection_id: str | None = None) -> None:
        """A connection of the user closed (it is already unregistered)."""
        gone = not self.dispatcher.is_connected(user_id)
        if gone:
            self._chosen.pop(user_id, None)
        await self._announce(user_id)
        if gone and not self.dispatcher.is_connected(user_id):
            for tenant_id in self._tenants_of.pop(user_id, ()):
                self._drop(tenant_id, user_id)

    def tenant_joined(self, user_id: str, tenant_id: str) -> None:
        if user_id not in self._chosen:
            return
        tenants = self._tenants_of.get(user_id, ())
        if tenant_id not in tenants:
            tenant_id = sys.intern(tenant_id)  # one string for every member's copy
            self._connected_in.setdefault(tenant_id, set()).add(user_id)
            self._tenants_of[user_id] = (*tenants, tenant_id)

    def tenant_left(self, user_id: str, tenant_id: str) -> None:
        tenants = self._tenants_of.get(user_id, ())
        if tenant_id in tenants:
            self._tenants_of[user_id] = tuple(t for t in tenants if t != tenant_id)
            self._drop(tenant_id, user_id)

    def _drop(self, tenant_id: str, user_id: str) -> None:
        members = self._connected_in.get(tenant_id)
        if members is not None:
            members.discard(user_id)
            if not members:
                del self._connected_in[tenant_id]

    def _connected_peers(self, user_id: str) -> set[str]:
        """The connected users who share a tenant with the user (the user included)."""
        peers: set[str] = set()
        for tenant_id in self._tenants_of.get(user_id, ()):
            peers |= self._connected_in.get(tenant_id, set())
        return peers

    async def choose(self, user_id: str, presence: str) -> None:
        """The user picked `presence`: store it, tell their own tabs and, if it shows, peers."""
        await self._store(user_id, presence)
        previous = self._chosen.get(user_id)
        if self.dispatcher.is_connected(user_id):
            self._chosen[user_id] = presence
        if previous != presence:
            frame = encode("presence:update", {"user_id": user_id, "presence": presence})
            await self.dispatcher.send_to_user(user_id, frame)
        await self._announce(user_id)

    async def _announce(self, user_id: str) -> None:
        """Tell the user's peers what they now see, if that differs from what they were told."""
        async with self._locks.hold(user_id):
            connected = self.dispatcher.is_connected(user_id)
            visible = seen_by_others(self._chosen.get(user_id, OFFLINE), connected)
            if visible == self._announced.get(user_id, OFFLINE):
                return
            if visible == OFFLINE:
                self._announced.pop(user_id, None)
            else:
                self._announced[user_id] = visible
            peers = self._connected_peers(user_id)
            # The peers' copy may wait for the batching tick (docs/protocol.md, Batches).
            frame = encode_coalescable("presence:update", {"user_id": user_id, "presence": visible})
            await self.dispatcher.broadcast(peers, frame, exclude_user=user_id)
