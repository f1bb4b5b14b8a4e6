"""Membership and presence queries shared by the REST API, the real-time layer and the cluster.

Each takes an open `AsyncSession`; `in_session` runs one in a session of its own (the
real-time layer's lookups have no request session), `with_session` makes a lookup that
does so on every call.

The channel rule, decided once here: a deleted channel has no members. Its member rows
stay (for the record), but nobody hears its typing, its events, its conferences'
announcements, and nobody counts as its member.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.db.models import Channel, ChannelMember, MessageReaction, TenantMember, User

P = ParamSpec("P")
T = TypeVar("T")


async def in_session(
    sessions: async_sessionmaker[AsyncSession],
    query: Callable[Concatenate[AsyncSession, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """Run `query(session, *args)` in a session of its own."""
    async with sessions() as session:
        return await query(session, *args, **kwargs)


def with_session(
    sessions: async_sessionmaker[AsyncSession],
    query: Callable[Concatenate[AsyncSession, P], Awaitable[T]],
) -> Callable[P, Awaitable[T]]:
    """`query` without its session argument: each call runs in a session of its own."""

    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        async with sessions() as session:
            return await query(session, *args, **kwargs)

    return run


def _live_channel_members(channel_id: str) -> Select[str]:
    return (
        select(ChannelMember.user_id)
        .join(Channel, Channel.id == ChannelMember.channel_id)
        .where(ChannelMember.channel_id == channel_id, Channel.deleted_at.is_(None))
    )


async def channel_member_ids(session: AsyncSession, channel_id: str) -> list[str]:
    """The members of a live channel, in no particular order; none for a deleted or unknown one."""
    return list(await session.scalars(_live_channel_members(channel_id)))


async def channel_writers(session: AsyncSession, channel_id: str) -> tuple[list[str], bool]:
    """`channel_member_ids` and whether the channel is archived (read-only), in one query;
    an archived channel with no members reads as not archived, nobody may write there."""
    rows = await session.execute(
        select(ChannelMember.user_id, Channel.archived_at)
        .join(Channel, Channel.id == ChannelMember.channel_id)
        .where(ChannelMember.channel_id == channel_id, Channel.deleted_at.is_(None))
    )
    pairs = rows.tuples().all()
    return [user_id for user_id, _ in pairs], any(at is not None for _, at in pairs)


async def is_channel_member(session: AsyncSession, channel_id: str, user_id: str) -> bool:
    """Whether `user_id` is a member of the channel, which must not be deleted."""
    query = _live_channel_members(channel_id).where(ChannelMember.user_id == user_id)
    return await session.scalar(query.limit(1)) is not None


async def tenant_member_ids(session: AsyncSession, tenant_id: str) -> list[str]:
    """The user ids of the tenant's members, in no particular order."""
    rows = await session.scalars(
        select(TenantMember.user_id).where(TenantMember.tenant_id == tenant_id)
    )
    return list(rows)


async def tenant_peer_ids(session: AsyncSession, user_id: str) -> list[str]:
    """Everyone who shares at least one tenant with `user_id` (the user included)."""
    tenants = select(TenantMember.tenant_id).where(TenantMember.user_id == user_id)
    rows = await session.scalars(
        select(TenantMember.user_id).where(TenantMember.tenant_id.in_(tenants)).distinct()
    )
    return list(rows)


async def tenant_peer_pairs(session: AsyncSession, user_ids: list[str]) -> list[tuple[str, str]]:
    """(user, peer) for each of `user_ids` and everyone sharing a tenant with them."""
    if not user_ids:
        return []
    mine = TenantMember.__table__.alias("mine")
    theirs = TenantMember.__table__.alias("theirs")
    query = (
        select(mine.c.user_id, theirs.c.user_id)
        .join(theirs, theirs.c.tenant_id == mine.c.tenant_id)
        .where(mine.c.user_id.in_(user_ids))
        .distinct()
    )
    rows = await session.execute(query)
    return [(user_id, peer_id) for user_id, peer_id in rows.tuples()]


async def store_presence(session: AsyncSession, user_id: str, presence: str) -> None:
    """Store the user's presence choice (committed)."""
    await session.execute(update(User).where(User.id == user_id).values(presence=presence))
    await session.commit()


async def stored_presences(session: AsyncSession, user_ids: list[str]) -> dict[str, str]:
    """The stored presence choice of each of `user_ids` that exists."""
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.presence).where(User.id.in_(user_ids)))
    return {user_id: presence for user_id, presence in rows.tuples()}


async def reaction_summaries(
    session: AsyncSession, message_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each message's reactions: `{emoji, count, user_ids}`, emoji in the order they were
    first given, users in the order they reacted. Messages without any are absent."""
    if not message_ids:
        return {}
    rows = await session.execute(
        select(MessageReaction.message_id, MessageReaction.emoji, MessageReaction.user_id)
        .where(MessageReaction.message_id.in_(message_ids))
        .order_by(MessageReaction.created_at, MessageReaction.id)
    )
    summaries: dict[str, dict[str, list[str]]] = {}
    for message_id, emoji, user_id in rows.tuples():
        summaries.setdefault(message_id, {}).setdefault(emoji, []).append(user_id)
    return {
        message_id: [
            {"emoji": emoji, "count": len(users), "user_ids": users}
            for emoji, users in by_emoji.items()
        ]
        for message_id, by_emoji in summaries.items()
    }
