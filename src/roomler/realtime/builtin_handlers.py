"""The built-in client messages: `ping`, `typing:start`, `typing:stop`, `presence:update`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import Field

from roomler.realtime.handler_registry import HandlerRegistry, Refused, Request
from roomler.realtime.presence import Presence
from roomler.realtime.request_data import Id, RequestData
from roomler.realtime.typing_indicator import TypingIndicators
from roomler.realtime.wire import ERROR_CHANNEL_ARCHIVED, ERROR_FORBIDDEN, PRESENCE_STATES

# The members of a live channel (none for a deleted one): `db.queries.channel_member_ids`.
ChannelMembers = Callable[[str], Awaitable[list[str]]]
# The same and whether the channel is archived (read-only): `db.queries.channel_writers`.
ChannelWriters = Callable[[str], Awaitable[tuple[list[str], bool]]]


async def ping(request: Request, _data: dict[str, Any]) -> None:
    request.reply("pong", {})


class ChannelRef(RequestData):
    """`typing:start` and `typing:stop`."""

    channel_id: Id


class PresenceChoice(RequestData):
    """`presence:update`."""

    presence: Literal["online", "idle", "dnd", "offline", "invisible"] = Field(
        description="one of " + "|".join(PRESENCE_STATES)
    )


def parse_channel_id(data: dict[str, Any]) -> str:
    return ChannelRef.parse(data).channel_id


def parse_presence(data: dict[str, Any]) -> str:
    return PresenceChoice.parse(data).presence


def _require_member(request: Request, members: list[str]) -> None:
    if request.user_id not in members:
        raise Refused(ERROR_FORBIDDEN, "Not a member of this channel")


class BuiltinHandlers:
    def __init__(
        self,
        channel_members: ChannelMembers,
        channel_writers: ChannelWriters,
        typing: TypingIndicators,
        presence: Presence,
    ) -> None:
        self.channel_members = channel_members
        self.channel_writers = channel_writers
        self.typing = typing
        self.presence = presence

    def register(self, registry: HandlerRegistry) -> None:
        registry.register("ping", ping)
        registry.register("typing:start", self.typing_start, parse_channel_id)
        registry.register("typing:stop", self.typing_stop, parse_channel_id)
        registry.register("presence:update", self.presence_update, parse_presence)

    async def _members_including_sender(self, request: Request, channel_id: str) -> list[str]:
        members = await self.channel_members(channel_id)
        _require_member(request, members)
        return members

    async def typing_start(self, request: Request, channel_id: str) -> None:
        """Nobody types in an archived channel: it is read-only."""
        members, archived = await self.channel_writers(channel_id)
        _require_member(request, members)
        if archived:
            raise Refused(
                ERROR_CHANNEL_ARCHIVED,
                "The channel is archived: it is read-only until it is unarchived",
            )
        await self.typing.start(channel_id, request.user_id, request.connection_id, members)

    async def typing_stop(self, request: Request, channel_id: str) -> None:
        members = await self._members_including_sender(request, channel_id)
        await self.typing.stop(channel_id, request.user_id, members)

    async def presence_update(self, request: Request, presence: str) -> None:
        await self.presence.choose(request.user_id, presence)
