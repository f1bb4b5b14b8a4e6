"""`/api/tenant/{tid}/dm`: direct conversations between 2 to 8 members of a workspace.

A direct conversation is a private channel (`channel_type` "direct") whose members are
fixed when it starts: its history, typing, unread state and calls are a channel's. Its
path, `@dm:` and the sorted member ids, is unique among the tenant's live channels, so
asking again for the same people (even at the same moment) finds the same conversation.
Channel names may not start with `@`, so no channel can take such a path.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api import notify
from roomler.api.channels import DIRECT, channel_out
from roomler.api.deps import Context, Membership, Session
from roomler.api.errors import not_found, validation
from roomler.api.fields import Text
from roomler.db.models import Channel, ChannelMember, TenantMember
from roomler.ids import is_id

router = APIRouter(prefix="/tenant/{tid}/dm", tags=["direct messages"])

MAX_MEMBERS = 8  # the caller included


class DirectIn(BaseModel):
    """The others in the conversation; the caller is always in it."""

    user_ids: Annotated[list[Text], Field(min_length=1, max_length=MAX_MEMBERS)]


def direct_path(member_ids: list[str]) -> str:
    return "@dm:" + ",".join(sorted(member_ids))


async def _find(session: AsyncSession, tenant_id: str, path: str) -> Channel | None:
    found: Channel | None = await session.scalar(
        select(Channel).where(
            Channel.tenant_id == tenant_id, Channel.path == path, Channel.deleted_at.is_(None)
        )
    )
    return found


async def _tenant_members(session: AsyncSession, tenant_id: str, user_ids: set[str]) -> set[str]:
    rows = await session.scalars(
        select(TenantMember.user_id).where(
            TenantMember.tenant_id == tenant_id, TenantMember.user_id.in_(user_ids)
        )
    )
    return set(rows)


@router.post(
    "",
    status_code=201,
    responses={200: {"description": "The conversation these members already have"}},
)
async def start_direct(
    body: DirectIn, response: Response, member: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    """Start a conversation with `user_ids` (201), or find the one they already have (200)."""
    tenant_id = member.tenant_id  # read now: a rollback below expires `member`
    others = {u for u in body.user_ids if u != member.user_id}
    if not others:
        raise validation("user_ids: name at least one member besides yourself")
    if len(others) > MAX_MEMBERS - 1:
        raise validation(f"user_ids: a direct conversation has at most {MAX_MEMBERS} members")
    known = await _tenant_members(session, member.tenant_id, {u for u in others if is_id(u)})
    if known != others:
        raise not_found("User is not a member of this tenant")
    member_ids = sorted({*others, member.user_id})
    path = direct_path(member_ids)
    existing = await _find(session, member.tenant_id, path)
    if existing is not None:
        response.status_code = 200
        return channel_out(existing, is_member=True, member_ids=member_ids)
    channel = Channel(
        tenant_id=member.tenant_id,
        name="@dm",
        path=path,
        channel_type=DIRECT,
        is_private=True,
        member_count=len(member_ids),
        created_by=member.user_id,
    )
    session.add(channel)
    try:
        await session.flush()
        for user_id in member_ids:
            session.add(
                ChannelMember(tenant_id=member.tenant_id, channel_id=channel.id, user_id=user_id)
            )
        await session.commit()
    except IntegrityError:  # the same people started it at the same moment
        await session.rollback()
        existing = await _find(session, tenant_id, path)
        if existing is None:
            raise
        response.status_code = 200
        return channel_out(existing, is_member=True, member_ids=member_ids)
    out = channel_out(channel, is_member=True, member_ids=member_ids)
    event = {"tenant_id": tenant_id, "channel": out}
    await notify.publish(ctx, member_ids, "channel:created", event)
    return out
