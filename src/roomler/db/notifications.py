"""Notifications: a stored note, per user, of a message that asks for their attention.

A message notifies a member of its channel (never its author) when it names them as
`@username` (`mention`), when it is in a direct conversation (`direct`), when it names
`@channel` (`channel`), or `@here` while they are present (`here`); one notification per
member and message, the first of those that applies. A member who muted the channel is
notified only when named. A notification is shown while its message is live and its
reader is still a member of the channel; it is unread until read, one by one, all at once,
or by reading the channel past its message (a top-level one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.db.models import Channel, ChannelMember, Message, Notification, User, utcnow
from roomler.db.reads import mention_pattern

DIRECT_TYPE = "direct"

# Who of these user ids is present (not offline) as the author sees them.
PresentAmong = Callable[[list[str]], Awaitable[set[str]]]


@dataclass(frozen=True)
class Shown:
    """A notification with what the bell shows of its message."""

    note: Notification
    content: str
    thread_id: str | None


def _kind(
    content: str, username: str, muted: bool, direct: bool, everyone: bool, here: bool
) -> str | None:
    if mention_pattern(username).search(content):
        return "mention"
    if muted:
        return None
    if direct:
        return DIRECT_TYPE
    if everyone:
        return "channel"
    return "here" if here else None


async def create_for(
    session: AsyncSession, channel: Channel, message: Message, present_among: PresentAmong
) -> list[Notification]:
    """Add the notifications `message` makes (the caller commits)."""
    content = message.content
    direct = channel.channel_type == DIRECT_TYPE
    if not direct and "@" not in content:
        return []  # names nobody and is not a direct conversation: no member to read
    rows = await session.execute(
        select(ChannelMember.user_id, ChannelMember.muted, User.username)
        .join(User, User.id == ChannelMember.user_id)
        .where(ChannelMember.channel_id == channel.id, ChannelMember.user_id != message.author_id)
    )
    members = list(rows)
    everyone = bool(mention_pattern("channel").search(content))
    present: set[str] = set()
    if not direct and not everyone and mention_pattern("here").search(content):
        present = await present_among([m.user_id for m in members if not m.muted])
    notes = []
    for user_id, muted, username in members:
        kind = _kind(content, username, muted, direct, everyone, user_id in present)
        if kind is not None:
            notes.append(
                Notification(
                    tenant_id=channel.tenant_id,
                    user_id=user_id,
                    kind=kind,
                    channel_id=channel.id,
                    message_id=message.id,
                    actor_id=message.author_id,
                    created_at=message.created_at,
                )
            )
    session.add_all(notes)
    return notes


def _shown(tenant_id: str, user_id: str) -> Select[Notification, str, str | None]:
    """The user's notifications in the tenant that they may still see."""
    return (
        select(Notification, Message.content, Message.thread_id)
        .join(Message, Message.id == Notification.message_id)
        .join(Channel, Channel.id == Notification.channel_id)
        .join(
            ChannelMember,
            and_(
                ChannelMember.channel_id == Notification.channel_id,
                ChannelMember.user_id == Notification.user_id,
            ),
        )
        .where(
            Notification.user_id == user_id,
            Notification.tenant_id == tenant_id,
            Message.deleted_at.is_(None),
            Channel.deleted_at.is_(None),
        )
    )


async def listed(
    session: AsyncSession, tenant_id: str, user_id: str, offset: int, limit: int
) -> tuple[list[Shown], int]:
    """A page of the user's notifications, newest first, and how many there are."""
    query = _shown(tenant_id, user_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.execute(
        query.order_by(Notification.created_at.desc(), Notification.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [Shown(note, content, thread_id) for note, content, thread_id in rows], total or 0


async def unread_count(session: AsyncSession, tenant_id: str, user_id: str) -> int:
    query = _shown(tenant_id, user_id).where(Notification.read_at.is_(None))
    return await session.scalar(select(func.count()).select_from(query.subquery())) or 0


async def shown(session: AsyncSession, notes: Iterable[Notification]) -> list[Shown]:
    """What the bell shows of notifications just made."""
    wanted = {note.id: note for note in notes}
    if not wanted:
        return []
    rows = await session.execute(
        select(Notification.id, Message.content, Message.thread_id)
        .join(Message, Message.id == Notification.message_id)
        .where(Notification.id.in_(wanted))
    )
    return [Shown(wanted[nid], content, thread_id) for nid, content, thread_id in rows]


async def mark_read(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    *,
    ids: list[str] | None = None,
    channel_up_to: Message | None = None,
) -> list[str]:
    """Mark unread notifications read: those of `ids`, those of the channel's top-level
    messages up to `channel_up_to`, or (neither given) all of them; the ids that changed."""
    query = select(Notification.id).where(
        Notification.user_id == user_id,
        Notification.tenant_id == tenant_id,
        Notification.read_at.is_(None),
    )
    if ids is not None:
        query = query.where(Notification.id.in_(ids))
    if channel_up_to is not None:
        query = query.join(Message, Message.id == Notification.message_id).where(
            Notification.channel_id == channel_up_to.channel_id,
            Message.thread_id.is_(None),
            Message.created_at <= channel_up_to.created_at,
        )
    changed = list(await session.scalars(query))
    if not changed:
        return []
    now: datetime = utcnow()
    # read_at IS NULL again: of two tabs reading at once, each id is reported by one.
    result = await session.execute(
        update(Notification)
        .where(Notification.id.in_(changed), Notification.read_at.is_(None))
        .values(read_at=now)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def set_muted(session: AsyncSession, channel_id: str, user_id: str, muted: bool) -> bool:
    """Mute or unmute the channel for a member; whether it changed."""
    result = await session.execute(
        update(ChannelMember)
        .where(
            ChannelMember.channel_id == channel_id,
            ChannelMember.user_id == user_id,
            ChannelMember.muted != muted,
        )
        .values(muted=muted)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
