"""Pinned messages: `PUT`/`DELETE .../message/{mid}/pin` and a channel's list, `GET .../pins`.

Any member of the channel pins or unpins a live message (a thread reply too). A change
reaches every member of the channel as `message:pinned`; pinning what is pinned, or
unpinning what is not, changes nothing and sends nothing. A deleted message leaves the
list with it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api.channels import READ_ONLY, VisibleChannel, refuse_archived
from roomler.api.deps import Context, Membership, Session
from roomler.api.errors import conflict
from roomler.api.messages import (
    live_message,
    messages_out,
    publish_to_channel,
    require_channel_member,
)
from roomler.context import ServerContext
from roomler.db.models import Channel, Message, utcnow

router = APIRouter(prefix="/tenant/{tid}/channel/{cid}", tags=["messages"])

MAX_PINS = 100  # pinned messages in one channel


async def _changed(
    ctx: ServerContext, session: AsyncSession, message: Message, user_id: str
) -> dict[str, Any]:
    out = (await messages_out(session, [message]))[0]
    event = {
        "message_id": message.id,
        "channel_id": message.channel_id,
        "thread_id": message.thread_id,
        "is_pinned": message.is_pinned,
        "user_id": user_id,
        "message": out,
    }
    await publish_to_channel(ctx, session, message.channel_id, "message:pinned", event)
    return out


async def _pinned_count(session: AsyncSession, channel: Channel) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.channel_id == channel.id,
            Message.is_pinned.is_(True),
            Message.deleted_at.is_(None),
        )
    )
    return count or 0


@router.put("/message/{mid}/pin", responses=READ_ONLY)
async def pin_message(
    mid: str, ctx: Context, channel: VisibleChannel, member: Membership, session: Session
) -> dict[str, Any]:
    """Pin a message; answers it (`is_pinned`, `pinned_at`, `pinned_by`)."""
    message = await live_message(session, channel, mid)
    await require_channel_member(session, channel, member.user_id)
    refuse_archived(channel)
    if message.is_pinned:
        return (await messages_out(session, [message]))[0]
    if await _pinned_count(session, channel) >= MAX_PINS:
        raise conflict(f"A channel holds at most {MAX_PINS} pinned messages; unpin one first")
    message.is_pinned = True
    message.pinned_at = utcnow()
    message.pinned_by = member.user_id
    await session.commit()
    return await _changed(ctx, session, message, member.user_id)


@router.delete("/message/{mid}/pin", responses=READ_ONLY)
async def unpin_message(
    mid: str, ctx: Context, channel: VisibleChannel, member: Membership, session: Session
) -> dict[str, Any]:
    """Unpin a message; answers it."""
    message = await live_message(session, channel, mid)
    await require_channel_member(session, channel, member.user_id)
    refuse_archived(channel)
    if not message.is_pinned:
        return (await messages_out(session, [message]))[0]
    message.is_pinned = False
    message.pinned_at = None
    message.pinned_by = None
    await session.commit()
    return await _changed(ctx, session, message, member.user_id)


@router.get("/pins")
async def list_pins(channel: VisibleChannel, session: Session) -> list[dict[str, Any]]:
    """The channel's pinned live messages, most recently pinned first. A plain array."""
    rows = await session.scalars(
        select(Message)
        .where(
            Message.channel_id == channel.id,
            Message.is_pinned.is_(True),
            Message.deleted_at.is_(None),
        )
        .order_by(Message.pinned_at.desc(), Message.id.desc())
    )
    return await messages_out(session, list(rows))
