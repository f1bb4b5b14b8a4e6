"""A thread's bookkeeping on the database: its root's reply count and last reply time,
and who follows it. Each runs in the caller's transaction; the caller commits."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.db.models import ChannelMember, Message, ThreadFollower
from roomler.ids import new_id


async def reply_posted(session: AsyncSession, root: Message, reply: Message) -> None:
    """Count `reply` on its root (an atomic increment: replies may arrive at once)."""
    await session.execute(
        update(Message)
        .where(Message.id == root.id)
        .values(reply_count=Message.reply_count + 1, last_reply_at=reply.created_at)
    )


async def reply_removed(session: AsyncSession, root_id: str) -> None:
    """Recount the root's live replies and its newest one after a reply was deleted."""
    live = and_(Message.thread_id == root_id, Message.deleted_at.is_(None))
    await session.execute(
        update(Message)
        .where(Message.id == root_id)
        .values(
            reply_count=select(func.count()).where(live).scalar_subquery(),
            last_reply_at=select(func.max(Message.created_at)).where(live).scalar_subquery(),
        )
    )


async def follow(session: AsyncSession, root_id: str, user_ids: list[str]) -> None:
    """Make `user_ids` follow the thread; those who already do are left as they are."""
    if not user_ids:
        return
    rows = [{"id": new_id(), "message_id": root_id, "user_id": u} for u in set(user_ids)]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ThreadFollower).values(rows).on_conflict_do_nothing()
    await session.execute(statement)


async def followers_in_channel(session: AsyncSession, root: Message) -> list[str]:
    """The thread's followers who are still members of its channel."""
    rows = await session.scalars(
        select(ThreadFollower.user_id)
        .join(
            ChannelMember,
            and_(
                ChannelMember.user_id == ThreadFollower.user_id,
                ChannelMember.channel_id == root.channel_id,
            ),
        )
        .where(ThreadFollower.message_id == root.id)
    )
    return list(rows)


async def is_following(session: AsyncSession, root_id: str, user_id: str) -> bool:
    found = await session.scalar(
        select(ThreadFollower.id).where(
            ThreadFollower.message_id == root_id, ThreadFollower.user_id == user_id
        )
    )
    return found is not None


async def unfollow(session: AsyncSession, root_id: str, user_id: str) -> None:
    await session.execute(
        delete(ThreadFollower).where(
            ThreadFollower.message_id == root_id, ThreadFollower.user_id == user_id
        )
    )
