"""Telling connected clients about REST changes to workspaces: members, channels, profiles.

Each function runs after the change is committed and never fails the request: a
delivery problem is logged, the change stands. `docs/protocol.md` ("Workspace events")
lists the events and who gets them. A change that takes access away also reaches the
media rooms (`access_lost`, `channel_made_private`, `channels_deleted`): see
`roomler.conference.access`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api.serialize import iso
from roomler.conference.access import end_channel_conferences, revoke_lost, revoke_user
from roomler.context import ServerContext
from roomler.db.models import Channel
from roomler.db.queries import channel_member_ids, tenant_member_ids, tenant_peer_ids

logger = logging.getLogger(__name__)


async def publish(
    ctx: ServerContext,
    user_ids: Iterable[str],
    event_type: str,
    data: dict[str, Any],
    *,
    exclude_user: str | None = None,
) -> None:
    """User-level delivery that logs instead of raising."""
    try:
        await ctx.events.publish(user_ids, event_type, data, exclude_user=exclude_user)
    except Exception:
        logger.exception("%s was committed but not delivered", event_type)


async def member_added(
    ctx: ServerContext,
    session: AsyncSession,
    tenant: dict[str, Any],
    member: dict[str, Any],
) -> None:
    """`tenant:member_added` to the other members, `tenant:joined` to the new one.

    `tenant` is the tenant as the new member sees it (`tenant_out` with their role).
    """
    try:
        member_ids = await tenant_member_ids(session, tenant["id"])
    except Exception:
        logger.exception("tenant:member_added for tenant %s was not delivered", tenant["id"])
        return
    ctx.presence.tenant_joined(member["user_id"], tenant["id"])
    added = {"tenant_id": tenant["id"], "member": member}
    await publish(ctx, member_ids, "tenant:member_added", added, exclude_user=member["user_id"])
    await publish(ctx, [member["user_id"]], "tenant:joined", {"tenant": tenant})


async def member_removed(
    ctx: ServerContext, session: AsyncSession, tenant_id: str, user_id: str
) -> None:
    """`tenant:member_removed` to the remaining members and the removed user."""
    ctx.presence.tenant_left(user_id, tenant_id)
    try:
        member_ids = await tenant_member_ids(session, tenant_id)
    except Exception:
        logger.exception("tenant:member_removed for tenant %s was not delivered", tenant_id)
        return
    removed = {"tenant_id": tenant_id, "user_id": user_id}
    await publish(ctx, [*member_ids, user_id], "tenant:member_removed", removed)


async def member_updated(
    ctx: ServerContext, session: AsyncSession, tenant_id: str, member: dict[str, Any]
) -> None:
    """`tenant:member_updated` (a new role) to every member of the tenant, the member too."""
    try:
        member_ids = await tenant_member_ids(session, tenant_id)
    except Exception:
        logger.exception("tenant:member_updated for tenant %s was not delivered", tenant_id)
        return
    await publish(
        ctx, member_ids, "tenant:member_updated", {"tenant_id": tenant_id, "member": member}
    )


async def user_updated(ctx: ServerContext, session: AsyncSession, profile: dict[str, Any]) -> None:
    """`user:updated` (a new name, picture or time zone) to everyone who shares a tenant
    with the user, and to the user's own tabs."""
    try:
        peer_ids = await tenant_peer_ids(session, profile["id"])
    except Exception:
        logger.exception("user:updated for user %s was not delivered", profile["id"])
        return
    await publish(ctx, {*peer_ids, profile["id"]}, "user:updated", {"user": profile})


async def channel_created(
    ctx: ServerContext,
    session: AsyncSession,
    tenant_id: str,
    channel: dict[str, Any],
    creator_id: str,
) -> None:
    """`channel:created` to whoever can see the channel, each with their own `is_member`.

    A public channel is visible to every member of the tenant; a new private channel
    only to its creator (its first and only member).
    """
    if not channel["is_private"]:
        try:
            member_ids = await tenant_member_ids(session, tenant_id)
        except Exception:
            logger.exception("channel:created for channel %s was not delivered", channel["id"])
            return
        others = {"tenant_id": tenant_id, "channel": {**channel, "is_member": False}}
        await publish(ctx, member_ids, "channel:created", others, exclude_user=creator_id)
    mine = {"tenant_id": tenant_id, "channel": {**channel, "is_member": True}}
    await publish(ctx, [creator_id], "channel:created", mine)


async def channel_shared(
    ctx: ServerContext, tenant_id: str, channel: dict[str, Any], user_id: str
) -> None:
    """`channel:created` to a user just added to a private channel: it was hidden from
    them until now, so to them it is new."""
    shown = {"tenant_id": tenant_id, "channel": {**channel, "is_member": True}}
    await publish(ctx, [user_id], "channel:created", shown)


async def access_lost(
    ctx: ServerContext,
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    channel_ids: list[str] | None = None,
) -> None:
    """The user left or was removed (from the tenant, or from `channel_ids`): they leave
    the running conferences they may no longer see (`roomler.conference.access`)."""
    try:
        await revoke_user(ctx.media, session, user_id, tenant_id, channel_ids)
    except Exception:
        logger.exception("revoking user %s's conferences in tenant %s failed", user_id, tenant_id)


async def channel_viewers(session: AsyncSession, channel: Channel) -> list[str]:
    """Who sees the (live) channel: every member of the tenant, or a private one's members."""
    if channel.is_private:
        return await channel_member_ids(session, channel.id)
    return await tenant_member_ids(session, channel.tenant_id)


async def channel_updated(
    ctx: ServerContext,
    session: AsyncSession,
    channel: Channel,
    paths: dict[str, str],
    hidden_from: Iterable[str] = (),
) -> None:
    """`channel:updated {tenant_id, channel_id, name, purpose, is_private, archived,
    archived_at, paths}` to whoever sees the channel (`paths`: the new path of it and each
    sub-channel, after a rename); `channel:removed` to those who no longer see it (it was
    made private)."""
    try:
        viewers = await channel_viewers(session, channel)
    except Exception:
        logger.exception("channel:updated for channel %s was not delivered", channel.id)
        return
    data = {
        "tenant_id": channel.tenant_id,
        "channel_id": channel.id,
        "name": channel.name,
        "purpose": channel.purpose,
        "is_private": channel.is_private,
        "archived": channel.archived_at is not None,
        "archived_at": iso(channel.archived_at),
        "paths": paths,
    }
    await publish(ctx, viewers, "channel:updated", data)
    await channels_removed(ctx, channel.tenant_id, {channel.id: list(hidden_from)})


async def channels_removed(
    ctx: ServerContext, tenant_id: str, viewers: dict[str, list[str]]
) -> None:
    """`channel:removed {tenant_id, channel_ids}`: each user hears of the channels they
    saw that went away (deleted, or out of their view)."""
    gone: dict[str, list[str]] = {}
    for channel_id, user_ids in viewers.items():
        for user_id in user_ids:
            gone.setdefault(user_id, []).append(channel_id)
    by_list: dict[tuple[str, ...], list[str]] = {}
    for user_id, channel_ids in gone.items():
        by_list.setdefault(tuple(channel_ids), []).append(user_id)
    for shared, users in by_list.items():
        data = {"tenant_id": tenant_id, "channel_ids": list(shared)}
        await publish(ctx, users, "channel:removed", data)


async def channels_deleted(
    ctx: ServerContext, session: AsyncSession, tenant_id: str, channel_ids: list[str]
) -> None:
    """The channels' conferences end (`roomler.conference.access`)."""
    try:
        await end_channel_conferences(ctx.media, session, tenant_id, channel_ids)
    except Exception:
        logger.exception("ending the conferences of deleted channels %s failed", channel_ids)


async def channel_made_private(ctx: ServerContext, session: AsyncSession, channel_id: str) -> None:
    """Tenant members outside the channel leave its running conferences."""
    try:
        await revoke_lost(ctx.media, session, channel_id)
    except Exception:
        logger.exception("revoking access to the conferences of channel %s failed", channel_id)
