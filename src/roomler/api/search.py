"""`GET /api/tenant/{tid}/search`: messages, people and channels for the search box (Ctrl+K).

Messages are searched only in the caller's own channels and direct conversations of the
tenant (those they are a member of; deleted ones and deleted messages never), newest
first, by the index of search/index.py. The query syntax is search/syntax.py. On the first
page of a query without filters, the people of the workspace and the channels the caller
can open whose names contain the free text come too, for jumping straight to them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api.channels import DIRECT, direct_member_ids
from roomler.api.deps import Membership, Session
from roomler.api.direct import direct_path
from roomler.api.errors import validation
from roomler.api.fields import Text
from roomler.api.serialize import avatar_url, iso
from roomler.db.models import Channel, ChannelMember, Message, TenantMember, User
from roomler.ids import is_id
from roomler.search import index
from roomler.search.snippet import snippet
from roomler.search.syntax import MAX_QUERY_LENGTH, SearchQuery, parse

router = APIRouter(prefix="/tenant/{tid}/search", tags=["search"])

MAX_LIMIT = 50
NAMED_LIMIT = 8  # people and channels matched by name
UNOPENABLE = ("category", DIRECT)  # channels the box does not offer by name


def _channel_out(channel: Channel, member_ids: list[str] | None) -> dict[str, Any]:
    extra = {"member_ids": member_ids or []} if channel.channel_type == DIRECT else {}
    return extra | {
        "id": channel.id,
        "name": channel.name,
        "path": channel.path,
        "channel_type": channel.channel_type,
        "is_private": channel.is_private,
    }


def _person_out(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "avatar": avatar_url(user),
    }


async def _my_channels(session: AsyncSession, member: TenantMember) -> list[Channel]:
    """The live channels of the tenant the caller is a member of."""
    rows = await session.scalars(
        select(Channel)
        .join(ChannelMember, ChannelMember.channel_id == Channel.id)
        .where(
            ChannelMember.user_id == member.user_id,
            Channel.tenant_id == member.tenant_id,
            Channel.deleted_at.is_(None),
        )
    )
    return list(rows)


def _named(channels: list[Channel], query: SearchQuery, paths: set[str]) -> list[Channel]:
    """The channels `in:#name` filters name, by name or by path, and the conversations of
    `paths` (those `in:@name` filters name); all of them without in: filters."""
    names = query.channels
    if not names and not query.conversations:
        return channels
    return [
        c
        for c in channels
        if c.path in paths or c.name.casefold() in names or c.path.casefold() in names
    ]


async def _conversation_paths(
    session: AsyncSession, member: TenantMember, usernames: tuple[str, ...]
) -> set[str]:
    """The paths the caller's one-to-one conversations with these members would have."""
    if not usernames:
        return set()
    others = await _user_ids(session, member.tenant_id, usernames)
    return {direct_path([member.user_id, other]) for other in others}


async def _user_ids(session: AsyncSession, tenant_id: str, usernames: tuple[str, ...]) -> list[str]:
    """The members of the tenant with these (lower-case) usernames."""
    rows = await session.scalars(
        select(User.id)
        .join(TenantMember, TenantMember.user_id == User.id)
        .where(TenantMember.tenant_id == tenant_id, func.lower(User.username).in_(usernames))
    )
    return list(rows)


async def _cursor(
    session: AsyncSession, query: SearchQuery, channel_ids: list[str], before: str
) -> list[Any]:
    """The sort key of message `before`, which must be one of the searched channels'."""
    found = None
    if is_id(before):
        dialect = session.get_bind().dialect.name
        found = (
            await session.execute(
                select(*index.sort_key(dialect, query.terms)).where(
                    Message.id == before, Message.channel_id.in_(channel_ids)
                )
            )
        ).first()
    if found is None:
        raise validation("before: not a message of the channels searched")
    return list(found)


async def _messages(
    session: AsyncSession,
    member: TenantMember,
    query: SearchQuery,
    channel_ids: list[str],
    author_ids: list[str] | None,
    before: str | None,
    limit: int,
) -> list[Message]:
    conditions: list[ColumnElement[bool]] = [
        Message.tenant_id == member.tenant_id,  # lets PostgreSQL walk the tenant's newest
        Message.channel_id.in_(channel_ids),
        Message.deleted_at.is_(None),
    ]
    if author_ids is not None:
        conditions.append(Message.author_id.in_(author_ids))
    cursor = await _cursor(session, query, channel_ids, before) if before is not None else None
    dialect = session.get_bind().dialect.name
    found = index.newest_matching(select(Message).where(*conditions), dialect, query.terms, cursor)
    return list(await session.scalars(found.limit(limit)))


async def _people(session: AsyncSession, tenant_id: str, text: str) -> list[dict[str, Any]]:
    needle = text.lower()
    rows = await session.scalars(
        select(User)
        .join(TenantMember, TenantMember.user_id == User.id)
        .where(
            TenantMember.tenant_id == tenant_id,
            or_(
                func.lower(User.username).contains(needle, autoescape=True),
                func.lower(User.display_name).contains(needle, autoescape=True),
            ),
        )
        .order_by(func.lower(User.username))
        .limit(NAMED_LIMIT)
    )
    return [_person_out(user) for user in rows]


async def _channels(session: AsyncSession, member: TenantMember, text: str) -> list[dict[str, Any]]:
    """Channels the caller can open whose name contains `text`: public ones and their own."""
    needle = text.lower()
    mine = select(ChannelMember.channel_id).where(ChannelMember.user_id == member.user_id)
    rows = await session.scalars(
        select(Channel)
        .where(
            Channel.tenant_id == member.tenant_id,
            Channel.deleted_at.is_(None),
            Channel.channel_type.not_in(UNOPENABLE),
            or_(Channel.is_private.is_(False), Channel.id.in_(mine)),
            func.lower(Channel.name).contains(needle, autoescape=True),
        )
        .order_by(Channel.member_count.desc(), Channel.path, Channel.id)
        .limit(NAMED_LIMIT)
    )
    return [_channel_out(channel, None) for channel in rows]


@router.get("")
async def search(
    member: Membership,
    session: Session,
    q: Annotated[Text, Query(max_length=MAX_QUERY_LENGTH)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    before: Text | None = None,
) -> dict[str, Any]:
    """Messages matching `q`, newest first (`limit` of them; `next_before` pages on), and
    on a first page without filters the `people` and `channels` whose names contain it."""
    try:
        query = parse(q)
    except ValueError as exc:
        raise validation(str(exc)) from None
    paths = await _conversation_paths(session, member, query.conversations)
    channels = _named(await _my_channels(session, member), query, paths)
    authors = await _user_ids(session, member.tenant_id, query.authors) if query.authors else None
    found: list[Message] = []
    if channels and authors != []:
        ids = [c.id for c in channels]
        found = await _messages(session, member, query, ids, authors, before, limit + 1)
    more = len(found) > limit
    found = found[:limit]
    named = before is None and not query.has_filters and query.text
    return {
        "messages": await _results(session, query, channels, found),
        "next_before": found[-1].id if more else None,
        "people": await _people(session, member.tenant_id, query.text) if named else [],
        "channels": await _channels(session, member, query.text) if named else [],
    }


async def _results(
    session: AsyncSession, query: SearchQuery, channels: list[Channel], found: list[Message]
) -> list[dict[str, Any]]:
    by_id = {c.id: c for c in channels}
    direct = [c for c in {m.channel_id for m in found} if by_id[c].channel_type == DIRECT]
    members = await direct_member_ids(session, direct)
    author_ids = {m.author_id for m in found}
    authors = {u.id: u for u in await session.scalars(select(User).where(User.id.in_(author_ids)))}
    return [
        {
            "id": message.id,
            "channel_id": message.channel_id,
            # A reply is shown in its thread: open the channel at `thread_id`, then the reply.
            "thread_id": message.thread_id,
            "created_at": iso(message.created_at),
            "is_edited": message.is_edited,
            "snippet": snippet(message.content, query.terms),
            "channel": _channel_out(by_id[message.channel_id], members.get(message.channel_id)),
            "author": _person_out(authors[message.author_id]),
        }
        for message in found
    ]
