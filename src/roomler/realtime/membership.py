"""The few membership queries the real-time layer needs (who hears typing and presence)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.db.models import Channel, ChannelMember, TenantMember, User

Sessions = async_sessionmaker[AsyncSession]


async def channel_members(sessions: Sessions, channel_id: str) -> list[str]:
    """The members of a live (not deleted) channel; empty for unknown or deleted ones."""
    query = (
        select(ChannelMember.user_id)
        .join(Channel, Channel.id == ChannelMember.channel_id)
        .where(ChannelMember.channel_id == channel_id, Channel.deleted_at.is_(None))
    )
    async with sessions() as session:
        return list(await session.scalars(query))


async def tenant_peer_ids(sessions: Sessions, user_id: str) -> list[str]:
    """Everyone who shares at least one tenant with `user_id` (the user included)."""
    tenants = select(TenantMember.tenant_id).where(TenantMember.user_id == user_id)
    async with sessions() as session:
        rows = await session.scalars(
            select(TenantMember.user_id).where(TenantMember.tenant_id.in_(tenants)).distinct()
        )
        return list(rows)


async def tenant_member_ids(session: AsyncSession, tenant_id: str) -> list[str]:
    rows = await session.scalars(
        select(TenantMember.user_id).where(TenantMember.tenant_id == tenant_id)
    )
    return list(rows)


async def store_presence(sessions: Sessions, user_id: str, presence: str) -> None:
    async with sessions() as session:
        await session.execute(update(User).where(User.id == user_id).values(presence=presence))
        await session.commit()


async def stored_presences(sessions: Sessions, user_ids: list[str]) -> dict[str, str]:
    """The stored presence choice of each of `user_ids` that exists."""
    if not user_ids:
        return {}
    async with sessions() as session:
        rows = await session.execute(select(User.id, User.presence).where(User.id.in_(user_ids)))
        return {user_id: presence for user_id, presence in rows.tuples()}


async def tenant_peer_pairs(sessions: Sessions, user_ids: list[str]) -> list[tuple[str, str]]:
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
    async with sessions() as session:
        rows = await session.execute(query)
        return [(user_id, peer_id) for user_id, peer_id in rows.tuples()]
