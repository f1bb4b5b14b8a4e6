"""Read markers: how far each member has read a channel, and what is unread after it.

A member's marker is the newest top-level message they have read (`last_read_message_id`
and its `created_at` as `last_read_at`, on their `channel_members` row); without one they
have read what was posted before they joined. Unread are the live top-level messages by
others after it, in the timeline's order (created_at, then id). Thread replies are not in
a channel's timeline and are not counted. A mention is an unread message whose content
names the reader as `@username` (not as the start of a longer name).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.db.models import Channel, ChannelMember, Message

_NAME_CHAR = r"A-Za-z0-9_\-"


@dataclass(frozen=True)
class Unread:
    channel_id: str
    message_id: str | None  # the marker
    unread_count: int
    mention_count: int

    def out(self) -> dict[str, object]:
        return {
            "channel_id": self.channel_id,
            "message_id": self.message_id,
            "unread_count": self.unread_count,
            "mention_count": self.mention_count,
        }


# A channel's members are judged against every message that names someone: more names
# than `re`'s own cache of 512 patterns would have them compiled again for each message.
@functools.lru_cache(maxsize=8192)
def mention_pattern(username: str) -> re.Pattern[str]:
    """`@username` as a whole name: `@al` is not in `@alice`, nor `@alice` in `@alice.b`."""
    return re.compile(
        rf"(?<![{_NAME_CHAR}.@])@{re.escape(username)}(?![{_NAME_CHAR}])(?!\.[{_NAME_CHAR}])",
        re.IGNORECASE,
    )


def _unread_for(user_id: str) -> ColumnElement[bool]:
    """Joins a message to the member row whose reader has not read it."""
    after_marker = or_(
        Message.created_at > func.coalesce(ChannelMember.last_read_at, ChannelMember.joined_at),
        and_(
            Message.created_at == ChannelMember.last_read_at,
            Message.id > ChannelMember.last_read_message_id,
        ),
    )
    return and_(
        Message.channel_id == ChannelMember.channel_id,
        Message.thread_id.is_(None),
        Message.deleted_at.is_(None),
        Message.author_id != user_id,
        after_marker,
    )


async def unread_counts(
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    username: str,
    channel_id: str | None = None,
) -> list[Unread]:
    """Each live channel of the tenant the user is a member of (or just `channel_id`)."""
    members = (
        select(ChannelMember.channel_id, ChannelMember.last_read_message_id)
        .join(Channel, Channel.id == ChannelMember.channel_id)
        .where(
            ChannelMember.user_id == user_id,
            ChannelMember.tenant_id == tenant_id,
            Channel.deleted_at.is_(None),
        )
    )
    if channel_id is not None:
        members = members.where(ChannelMember.channel_id == channel_id)
    markers = {row.channel_id: row.last_read_message_id for row in await session.execute(members)}
    if not markers:
        return []
    scope = and_(ChannelMember.user_id == user_id, ChannelMember.channel_id.in_(markers))
    counted = await session.execute(
        select(ChannelMember.channel_id, func.count(Message.id))
        .join(Message, _unread_for(user_id))
        .where(scope)
        .group_by(ChannelMember.channel_id)
    )
    counts = {row[0]: row[1] for row in counted}
    # Mentions are few: narrow by LIKE in SQL, then judge the name's edges here.
    like = "%@" + username.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    candidates = await session.execute(
        select(ChannelMember.channel_id, Message.content)
        .join(Message, _unread_for(user_id))
        .where(scope, func.lower(Message.content).like(like.lower(), escape="\\"))
    )
    pattern = mention_pattern(username)
    mentions: dict[str, int] = {}
    for cid, content in candidates:
        if pattern.search(content):
            mentions[cid] = mentions.get(cid, 0) + 1
    return [
        Unread(cid, marker, counts.get(cid, 0), mentions.get(cid, 0))
        for cid, marker in markers.items()
    ]


async def advance(session: AsyncSession, channel_id: str, user_id: str, message: Message) -> bool:
    """Move the member's marker to `message` if it is newer than the marker; whether it
    moved. One conditional UPDATE: two tabs reading at once cannot move it back."""
    at: datetime = message.created_at
    newer = or_(
        ChannelMember.last_read_at.is_(None),
        ChannelMember.last_read_at < at,
        and_(
            ChannelMember.last_read_at == at,
            or_(
                ChannelMember.last_read_message_id.is_(None),
                ChannelMember.last_read_message_id < message.id,
            ),
        ),
    )
    result = await session.execute(
        update(ChannelMember)
        .where(ChannelMember.channel_id == channel_id, ChannelMember.user_id == user_id, newer)
        .values(last_read_message_id=message.id, last_read_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
