"""`/api/tenant/{tid}/notification`: the bell. Mentions, `@channel`/`@here` and direct
messages notify the members they address (`roomler.db.notifications` says who); each new
notification reaches every connection of its user, on every node, as `notification:new`,
and reading one, all, or a channel past them sends `notification:read` to the same.

`PUT`/`DELETE .../channel/{cid}/mute` mute a channel for the caller: it then notifies them
only when it names them.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api import notify
from roomler.api.channels import VisibleChannel
from roomler.api.deps import Context, Membership, Session
from roomler.api.errors import forbidden, not_found
from roomler.api.pagination import Pagination, paginated
from roomler.api.serialize import iso
from roomler.context import ServerContext
from roomler.db import notifications
from roomler.db.models import Channel, ChannelMember, Message, Notification
from roomler.db.queries import is_channel_member
from roomler.ids import is_id

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/tenant/{tid}", tags=["notifications"])

EXCERPT_CHARS = 200


def notification_out(shown: notifications.Shown) -> dict[str, Any]:
    note = shown.note
    return {
        "id": note.id,
        "tenant_id": note.tenant_id,
        "kind": note.kind,
        "channel_id": note.channel_id,
        "message_id": note.message_id,
        "thread_id": shown.thread_id,
        "actor_id": note.actor_id,
        "excerpt": shown.content[:EXCERPT_CHARS],
        "created_at": iso(note.created_at),
        "read": note.read_at is not None,
    }


async def create_for(
    ctx: ServerContext, session: AsyncSession, channel: Channel, message: Message
) -> list[Notification]:
    """The notifications `message` makes, added to the session (the caller commits and
    then hands them to `tell_new`)."""

    async def present_among(user_ids: list[str]) -> set[str]:
        seen = await ctx.presence.snapshot(user_ids, message.author_id)
        return {user_id for user_id, state in seen.items() if state != "offline"}

    return await notifications.create_for(session, channel, message, present_among)


async def tell_new(ctx: ServerContext, session: AsyncSession, notes: list[Notification]) -> None:
    """`notification:new` to each notified user, with their unread count after it."""
    try:
        for shown in await notifications.shown(session, notes):
            note = shown.note
            unread = await notifications.unread_count(session, note.tenant_id, note.user_id)
            event = {"notification": notification_out(shown), "unread_count": unread}
            await notify.publish(ctx, [note.user_id], "notification:new", event)
    except Exception:
        logger.exception("notification:new was stored but not delivered")


async def tell_read(
    ctx: ServerContext, session: AsyncSession, tenant_id: str, user_id: str, ids: list[str]
) -> dict[str, Any]:
    """`notification:read` to the reader's connections when `ids` were marked read now."""
    unread = await notifications.unread_count(session, tenant_id, user_id)
    event = {"tenant_id": tenant_id, "notification_ids": ids, "unread_count": unread}
    if ids:
        await notify.publish(ctx, [user_id], "notification:read", event)
    return event


@router.get("/notification")
async def list_notifications(
    member: Membership, page: Pagination, session: Session
) -> dict[str, Any]:
    """Your notifications in this workspace, newest first, and how many are unread."""
    shown, total = await notifications.listed(
        session, member.tenant_id, member.user_id, page.offset, page.per_page
    )
    body = paginated([notification_out(s) for s in shown], total, page)
    body["unread_count"] = await notifications.unread_count(
        session, member.tenant_id, member.user_id
    )
    return body


@router.put("/notification/read")
async def read_all(member: Membership, session: Session, ctx: Context) -> dict[str, Any]:
    """Mark all your notifications in this workspace read."""
    ids = await notifications.mark_read(session, member.tenant_id, member.user_id)
    await session.commit()
    return await tell_read(ctx, session, member.tenant_id, member.user_id, ids)


@router.put("/notification/{nid}/read")
async def read_one(nid: str, member: Membership, session: Session, ctx: Context) -> dict[str, Any]:
    """Mark one notification read (reading a read one again changes nothing)."""
    found = None
    if is_id(nid):
        found = await session.scalar(
            select(Notification.id).where(
                Notification.id == nid,
                Notification.user_id == member.user_id,
                Notification.tenant_id == member.tenant_id,
            )
        )
    if found is None:
        raise not_found("Notification not found")
    ids = await notifications.mark_read(session, member.tenant_id, member.user_id, ids=[nid])
    await session.commit()
    return await tell_read(ctx, session, member.tenant_id, member.user_id, ids)


@router.get("/mute")
async def list_muted(member: Membership, session: Session) -> list[str]:
    """The ids of the channels you muted in this workspace."""
    rows = await session.scalars(
        select(ChannelMember.channel_id).where(
            ChannelMember.tenant_id == member.tenant_id,
            ChannelMember.user_id == member.user_id,
            ChannelMember.muted.is_(True),
        )
    )
    return sorted(rows)


async def _mute(
    muted: bool, channel: Channel, member: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    if not await is_channel_member(session, channel.id, member.user_id):
        raise forbidden("Join the channel first")
    changed = await notifications.set_muted(session, channel.id, member.user_id, muted)
    await session.commit()
    out = {"tenant_id": member.tenant_id, "channel_id": channel.id, "muted": muted}
    if changed:
        await notify.publish(ctx, [member.user_id], "channel:muted", out)
    return out


@router.put("/channel/{cid}/mute")
async def mute_channel(
    channel: VisibleChannel, member: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    """Mute a channel you are a member of: only a message naming you notifies you."""
    return await _mute(True, channel, member, session, ctx)


@router.delete("/channel/{cid}/mute")
async def unmute_channel(
    channel: VisibleChannel, member: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    return await _mute(False, channel, member, session, ctx)
