"""Typing indicators: who is typing where, and the `typing:stop` the server sends itself.

A `typing:start` goes to the channel's members except the typer. The indicator ends,
with a `typing:stop` to the same recipients, when the typer sends `typing:stop`, posts a
message in the channel, closes the connection that typed, or sends no new
`typing:start` within the timeout. Those of the recipients who have left the channel
since (or lost the workspace) are not told: a channel's members are read again then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from roomler.realtime.dispatcher import Dispatcher
from roomler.realtime.wire import encode
from roomler.tasks import BackgroundTasks

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (channel_id, user_id)
# The current members of a channel (`membership.channel_members`).
MemberLookup = Callable[[str], Awaitable[list[str]]]


class TypingLedger(Protocol):
    """Told who starts and stops typing, so that another node can send the `typing:stop`
    if this one dies (`roomler.cluster`). Calls must not wait."""

    def started(self, channel_id: str, user_id: str) -> None: ...

    def ended(self, channel_id: str, user_id: str) -> None: ...


@dataclass
class _Typing:
    connection_id: str
    recipients: list[str]
    timer: asyncio.TimerHandle


class TypingIndicators:
    def __init__(
        self,
        dispatcher: Dispatcher,
        timeout_secs: float,
        ledger: TypingLedger | None = None,
        *,
        members: MemberLookup | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.timeout_secs = timeout_secs
        self.ledger = ledger
        self.members = members
        self._active: dict[Key, _Typing] = {}
        self._by_connection: dict[str, set[Key]] = {}
        self._tasks = BackgroundTasks(logger, "typing:stop delivery failed")

    def is_typing(self, channel_id: str, user_id: str) -> bool:
        return (channel_id, user_id) in self._active

    def active(self) -> list[Key]:
        """Every (channel id, user id) typing now."""
        return list(self._active)

    async def start(
        self, channel_id: str, user_id: str, connection_id: str, member_ids: list[str]
    ) -> None:
        key = (channel_id, user_id)
        self._forget(key, quiet=True)
        recipients = [m for m in member_ids if m != user_id]
        timer = asyncio.get_running_loop().call_later(self.timeout_secs, self._expire, key)
        self._active[key] = _Typing(connection_id, recipients, timer)
        self._by_connection.setdefault(connection_id, set()).add(key)
        if self.ledger is not None:
            self.ledger.started(channel_id, user_id)
        await self.dispatcher.broadcast(recipients, _frame("typing:start", key))

    async def stop(self, channel_id: str, user_id: str, member_ids: list[str]) -> None:
        """The typer said they stopped; members hear it even without a known start."""
        self._forget((channel_id, user_id))
        recipients = [m for m in member_ids if m != user_id]
        await self.dispatcher.broadcast(recipients, _frame("typing:stop", (channel_id, user_id)))

    async def message_posted(self, channel_id: str, user_id: str) -> None:
        await self._end((channel_id, user_id))

    async def connection_closed(self, connection_id: str) -> None:
        for key in list(self._by_connection.get(connection_id, ())):
            await self._end(key)

    def close(self) -> None:
        """Drop every indicator without telling anyone (server shutdown)."""
        for key in list(self._active):
            self._forget(key, quiet=True)
        self._tasks.cancel_all()

    async def _end(self, key: Key) -> None:
        typing = self._forget(key)
        if typing is not None:
            await self._stopped(key, typing.recipients)

    def _expire(self, key: Key) -> None:
        typing = self._forget(key)
        if typing is not None:
            self._tasks.spawn(self._stopped(key, typing.recipients))

    async def _stopped(self, key: Key, recipients: list[str]) -> None:
        """`typing:stop` to those told of the start who are still in the channel."""
        if self.members is not None:
            current = set(await self.members(key[0]))
            recipients = [user_id for user_id in recipients if user_id in current]
        await self.dispatcher.broadcast(recipients, _frame("typing:stop", key))

    def _forget(self, key: Key, *, quiet: bool = False) -> _Typing | None:
        """Drop the indicator; `quiet` leaves the ledger alone (renewal, shutdown)."""
        typing = self._active.pop(key, None)
        if typing is None:
            return None
        typing.timer.cancel()
        if self.ledger is not None and not quiet:
            self.ledger.ended(*key)
        keys = self._by_connection.get(typing.connection_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_connection[typing.connection_id]
        return typing


def _frame(event_type: str, key: Key) -> str:
    return encode(event_type, {"channel_id": key[0], "user_id": key[1]})
