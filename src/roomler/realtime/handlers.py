"""The built-in client messages: `ping`, `typing:start`, `typing:stop`, `presence:update`."""

from __future__ import annotations

from typing import Any

from roomler.realtime.membership import channel_members
from roomler.realtime.protocol import (
    ERROR_FORBIDDEN,
    PRESENCE_STATES,
    require_choice,
    require_id,
)
from roomler.realtime.registry import HandlerRegistry, Refused, Request


async def ping(request: Request, _data: dict[str, Any]) -> None:
    request.reply("pong", {})


def parse_channel_id(data: dict[str, Any]) -> str:
    return require_id(data, "channel_id")


async def _members_including_sender(request: Request, channel_id: str) -> list[str]:
    members = await channel_members(request.hub.sessions, channel_id)
    if request.user_id not in members:
        raise Refused(ERROR_FORBIDDEN, "Not a member of this channel")
    return members


async def typing_start(request: Request, channel_id: str) -> None:
    members = await _members_including_sender(request, channel_id)
    await request.hub.typing.start(channel_id, request.user_id, request.connection_id, members)


async def typing_stop(request: Request, channel_id: str) -> None:
    members = await _members_including_sender(request, channel_id)
    await request.hub.typing.stop(channel_id, request.user_id, members)


def parse_presence(data: dict[str, Any]) -> str:
    return require_choice(data, "presence", PRESENCE_STATES)


async def presence_update(request: Request, presence: str) -> None:
    await request.hub.presence.choose(request.user_id, presence)


def register_builtin_handlers(registry: HandlerRegistry) -> None:
    registry.register("ping", ping)
    registry.register("typing:start", typing_start, parse_channel_id)
    registry.register("typing:stop", typing_stop, parse_channel_id)
    registry.register("presence:update", presence_update, parse_presence)
