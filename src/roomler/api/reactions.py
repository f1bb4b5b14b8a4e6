"""`/api/tenant/{tid}/channel/{cid}/message/{mid}/reaction/{emoji}`: unicode emoji on messages.

A member of the channel adds (PUT) or takes back (DELETE) their own reaction; each user
gives an emoji to a message once. A change that happened reaches every member of the
channel as `message:reaction`, with the message's whole reaction summary, so a client
only replaces what it shows; asking for what already is the case changes nothing and
sends nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api.channels import READ_ONLY, VisibleChannel, refuse_archived
from roomler.api.deps import Context, Membership, Session
from roomler.api.emoji import MAX_EMOJI_CHARS, is_single_emoji
from roomler.api.errors import conflict, validation
from roomler.api.messages import live_message, publish_to_channel, require_channel_member
from roomler.context import ServerContext
from roomler.db.models import Message, MessageReaction
from roomler.db.queries import reaction_summaries

router = APIRouter(prefix="/tenant/{tid}/channel/{cid}/message/{mid}", tags=["messages"])

# Different emoji one message may carry (a user may give each of them).
MAX_DISTINCT_EMOJI = 50


def checked_emoji(emoji: str) -> str:
    if not is_single_emoji(emoji):
        raise validation(
            f"emoji: must be one unicode emoji (at most {MAX_EMOJI_CHARS} characters), "
            "such as 👍 or 👩‍💻"
        )
    return emoji


async def _summary(
    ctx: ServerContext,
    session: AsyncSession,
    message: Message,
    emoji: str,
    user_id: str,
    *,
    added: bool,
    changed: bool,
) -> dict[str, Any]:
    reactions = (await reaction_summaries(session, [message.id])).get(message.id, [])
    event = {
        "message_id": message.id,
        "channel_id": message.channel_id,
        "thread_id": message.thread_id,
        "user_id": user_id,
        "emoji": emoji,
        "added": added,
        "reactions": reactions,
    }
    if changed:
        await publish_to_channel(ctx, session, message.channel_id, "message:reaction", event)
    return event


@router.put("/reaction/{emoji}", responses=READ_ONLY)
async def add_reaction(
    mid: str,
    emoji: str,
    ctx: Context,
    channel: VisibleChannel,
    member: Membership,
    session: Session,
) -> dict[str, Any]:
    """React with `emoji` (URL-encoded in the path); answers the message's reactions."""
    checked_emoji(emoji)
    message = await live_message(session, channel, mid)
    await require_channel_member(session, channel, member.user_id)
    refuse_archived(channel)
    mine = await session.scalar(
        select(MessageReaction.id).where(
            MessageReaction.message_id == message.id,
            MessageReaction.user_id == member.user_id,
            MessageReaction.emoji == emoji,
        )
    )
    changed = False
    if mine is None:
        distinct = await session.scalar(
            select(func.count(func.distinct(MessageReaction.emoji))).where(
                MessageReaction.message_id == message.id, MessageReaction.emoji != emoji
            )
        )
        known = await session.scalar(
            select(MessageReaction.id)
            .where(MessageReaction.message_id == message.id, MessageReaction.emoji == emoji)
            .limit(1)
        )
        if known is None and (distinct or 0) >= MAX_DISTINCT_EMOJI:
            raise conflict(f"A message holds at most {MAX_DISTINCT_EMOJI} different reactions")
        session.add(MessageReaction(message_id=message.id, user_id=member.user_id, emoji=emoji))
        try:
            await session.commit()
            changed = True
        except IntegrityError:  # the same reaction from another tab, just now
            await session.rollback()
            message = await live_message(session, channel, mid)
    return await _summary(ctx, session, message, emoji, member.user_id, added=True, changed=changed)


@router.delete("/reaction/{emoji}", responses=READ_ONLY)
async def remove_reaction(
    mid: str,
    emoji: str,
    ctx: Context,
    channel: VisibleChannel,
    member: Membership,
    session: Session,
) -> dict[str, Any]:
    """Take back your own `emoji`; answers the message's reactions."""
    checked_emoji(emoji)
    message = await live_message(session, channel, mid)
    await require_channel_member(session, channel, member.user_id)
    refuse_archived(channel)
    removed = await session.execute(
        delete(MessageReaction).where(
            MessageReaction.message_id == message.id,
            MessageReaction.user_id == member.user_id,
            MessageReaction.emoji == emoji,
        )
    )
    await session.commit()
    changed = bool(removed.rowcount)  # type: ignore[attr-defined]
    return await _summary(
        ctx, session, message, emoji, member.user_id, added=False, changed=changed
    )
