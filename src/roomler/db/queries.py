"""Small read queries shared by the REST API and the real-time layer."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.db.models import ChannelMember


async def channel_member_ids(session: AsyncSession, channel_id: str) -> list[str]:
    """The user ids of everyone who belongs to the channel, in no particular order."""
    rows = await session.scalars(
        select(ChannelMember.user_id).where(ChannelMember.channel_id == channel_id)
    )
    return list(rows)


async def is_channel_member(session: AsyncSession, channel_id: str, user_id: str) -> bool:
    found = await session.scalar(
        select(ChannelMember.id).where(
            ChannelMember.channel_id == channel_id, ChannelMember.user_id == user_id
        )
    )
    return found is not None
