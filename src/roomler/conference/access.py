"""When access ends, the media room lets go: revoking a user's place in running conferences.

Every change that takes a conference away from someone comes here once the database
change is committed, from the REST routes that make it:

- removed from the workspace (or left it): every running conference of the workspace;
- left, or removed from, a channel: the running conferences announced in it, for as far
  as the user may no longer see them (a private channel; the organizer keeps theirs);
- the channel made private: everyone in its conferences' rooms who is not a member
  (nor the organizer);
- the channel deleted: its conferences, and its sub-channels', end.

Who lost what is decided by the same rule as joining (`queries.member_conference`), so
a room never holds a user the REST API would refuse. The media side is
`ConferenceMedia.revoke` (`conference_media.py`): on the node hosting the room (carried there by
the cluster like `end` and `leave`), the user's participants close (transports,
producers and consumers; the ports are freed and the peer gets DTLS close_notify),
their connections get `media:room_closed {reason: "access_revoked"}`, the others
`media:producer_closed` and `media:peer_left`. A later `media:*` request for the room is
refused like any request of a non-participant, and a `media:join` by the conference's
visibility rule.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.conference.conference_media import ConferenceMedia
from roomler.conference.queries import ENDED, IN_PROGRESS, close_participation, visible_to
from roomler.db.models import Channel, Conference, TenantMember

logger = logging.getLogger(__name__)

ACCESS_REVOKED = "access_revoked"
CHANNEL_DELETED = "channel_deleted"


async def running_conferences(
    session: AsyncSession, tenant_id: str, channel_ids: Iterable[str] | None = None
) -> list[str]:
    """The tenant's conferences in progress, or only those announced in `channel_ids`."""
    query = select(Conference.id).where(
        Conference.tenant_id == tenant_id, Conference.status == IN_PROGRESS
    )
    if channel_ids is not None:
        query = query.where(Conference.channel_id.in_(list(channel_ids)))
    return list(await session.scalars(query))


async def still_allowed(session: AsyncSession, user_id: str, conference_ids: list[str]) -> set[str]:
    """Those of `conference_ids` that `user_id` may still join (`member_conference`'s rule)."""
    if not conference_ids:
        return set()
    tenant_member = exists().where(
        and_(TenantMember.tenant_id == Conference.tenant_id, TenantMember.user_id == user_id)
    )
    rows = await session.scalars(
        select(Conference.id).where(
            Conference.id.in_(conference_ids), tenant_member, visible_to(user_id)
        )
    )
    return set(rows)


async def revoke_user(
    media: ConferenceMedia,
    session: AsyncSession,
    user_id: str,
    tenant_id: str,
    channel_ids: Iterable[str] | None = None,
) -> list[str]:
    """Take `user_id` out of every running conference (of the channels) they lost.

    Returns the conferences revoked. Their participation records close too.
    """
    candidates = await running_conferences(session, tenant_id, channel_ids)
    allowed = await still_allowed(session, user_id, candidates)
    lost = [conference_id for conference_id in candidates if conference_id not in allowed]
    if not lost:
        return []
    for conference_id in lost:
        await close_participation(session, conference_id, user_id)
    await session.commit()
    for conference_id in lost:
        await _revoke_logged(media, conference_id, user_id)
    return lost


async def _revoke_logged(media: ConferenceMedia, conference_id: str, user_id: str) -> None:
    try:
        await media.revoke(conference_id, user_id, ACCESS_REVOKED)
    except Exception:
        # The access is gone in the database (a rejoin is refused); the room could not
        # be told, which the operator must see.
        logger.exception("revoking user %s from conference %s failed", user_id, conference_id)


async def revoke_lost(media: ConferenceMedia, session: AsyncSession, channel_id: str) -> None:
    """Who may see the channel's conferences shrank for many users at once (it became
    private): everyone in their rooms who may no longer join them leaves."""
    channel = await session.get(Channel, channel_id)
    if channel is None:
        return
    for conference_id in await running_conferences(session, channel.tenant_id, [channel_id]):
        try:
            await media.revoke(conference_id, None, ACCESS_REVOKED)
        except Exception:
            logger.exception("revoking lost access to conference %s failed", conference_id)


async def end_channel_conferences(
    media: ConferenceMedia, session: AsyncSession, tenant_id: str, channel_ids: list[str]
) -> list[str]:
    """The channels were deleted: their conferences that have not ended end now, their
    participants told `channel_deleted`. Returns the conferences ended."""
    if not channel_ids:
        return []
    unended = await session.scalars(
        select(Conference.id).where(
            Conference.tenant_id == tenant_id,
            Conference.channel_id.in_(channel_ids),
            Conference.status != ENDED,
        )
    )
    ended = []
    for conference_id in list(unended):
        try:
            if await media.end_conference(conference_id, CHANNEL_DELETED):
                ended.append(conference_id)
        except Exception:
            logger.exception("ending conference %s of a deleted channel failed", conference_id)
    return ended
