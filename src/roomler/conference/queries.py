"""Conference rows in the database: who may see a conference, and its participant records.

A conference is visible to the members of its tenant, except one announced in a private
channel: that one only to the channel's members and its organizer (as the channel itself
would be). Everything here is shared by the REST API and the WebSocket signaling.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.db.models import (
    Channel,
    ChannelMember,
    Conference,
    ConferenceParticipant,
    TenantMember,
    utcnow,
)
from roomler.ids import is_id

CONFERENCE_TYPES = ("instant", "scheduled")
SCHEDULED, IN_PROGRESS, ENDED = "scheduled", "in_progress", "ended"


def new_meeting_code() -> str:
    """Nine random digits as `ddd-ddd-ddd`, easy to read out and type."""
    digits = f"{secrets.randbelow(10**9):09d}"
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


def visible_to(user_id: str) -> ColumnElement[bool]:
    """SQL condition: the conference is visible to `user_id` (tenant membership aside)."""
    private_channel = exists().where(
        Channel.id == Conference.channel_id, Channel.is_private.is_(True)
    )
    channel_member = exists().where(
        ChannelMember.channel_id == Conference.channel_id, ChannelMember.user_id == user_id
    )
    return or_(
        Conference.channel_id.is_(None),
        Conference.organizer_id == user_id,
        ~private_channel,
        channel_member,
    )


async def tenant_conference(
    session: AsyncSession, tenant_id: str, conference_id: str, user_id: str
) -> Conference | None:
    """Conference `conference_id` of the tenant, if `user_id` may see it."""
    if not is_id(conference_id):
        return None
    conference: Conference | None = await session.scalar(
        select(Conference).where(
            Conference.id == conference_id,
            Conference.tenant_id == tenant_id,
            visible_to(user_id),
        )
    )
    return conference


async def member_conference(
    session: AsyncSession, conference_id: str, user_id: str
) -> Conference | None:
    """Conference `conference_id` if `user_id` belongs to its tenant and may see it."""
    conference: Conference | None = await session.scalar(
        select(Conference)
        .join(
            TenantMember,
            and_(TenantMember.tenant_id == Conference.tenant_id, TenantMember.user_id == user_id),
        )
        .where(Conference.id == conference_id, visible_to(user_id))
    )
    return conference


async def participant_counts(
    session: AsyncSession, conference_ids: Iterable[str]
) -> dict[str, int]:
    """How many distinct users are present in each conference (absent ones: 0)."""
    ids = list(conference_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(
            ConferenceParticipant.conference_id,
            func.count(func.distinct(ConferenceParticipant.user_id)),
        )
        .where(
            ConferenceParticipant.conference_id.in_(ids),
            ConferenceParticipant.is_present.is_(True),
        )
        .group_by(ConferenceParticipant.conference_id)
    )
    counts: dict[str, int] = dict.fromkeys(ids, 0)
    for conference_id, count in rows.tuples():
        counts[conference_id] = count
    return counts


async def open_participation(
    session: AsyncSession, conference_id: str, user_id: str
) -> ConferenceParticipant:
    """The user's open record in the conference, created if they have none (committed).

    The insert comes first: a user has at most one open record (a partial unique index),
    so the insert of a user who has one fails and we return that one. A first join, the
    common case, costs the insert and the commit and no lookup before them.
    """
    record = ConferenceParticipant(conference_id=conference_id, user_id=user_id, is_present=True)
    session.add(record)
    try:
        await session.commit()
    except IntegrityError:
        # Open already (another tab, a rejoin, or a concurrent join): use that record.
        await session.rollback()
        found = await _open_record(session, conference_id, user_id)
        if found is None:
            raise
        return found
    return record


async def _open_record(
    session: AsyncSession, conference_id: str, user_id: str
) -> ConferenceParticipant | None:
    record: ConferenceParticipant | None = await session.scalar(
        select(ConferenceParticipant).where(
            ConferenceParticipant.conference_id == conference_id,
            ConferenceParticipant.user_id == user_id,
            ConferenceParticipant.is_present.is_(True),
        )
    )
    return record


async def close_participation(
    session: AsyncSession, conference_id: str, user_id: str | None = None
) -> int:
    """Close the open records of one user (or of everyone); not committed. Returns how many."""
    conditions: list[Any] = [
        ConferenceParticipant.conference_id == conference_id,
        ConferenceParticipant.is_present.is_(True),
    ]
    if user_id is not None:
        conditions.append(ConferenceParticipant.user_id == user_id)
    result = await session.execute(
        update(ConferenceParticipant).where(*conditions).values(is_present=False, left_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
