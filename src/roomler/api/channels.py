"""`/api/tenant/{tid}/channel`: the channel tree, discovery, joining and channel membership.

A channel's `path` is its ancestors' names and its own joined by `.`; it is unique
among the tenant's live channels. Private channels are invisible (404) to tenant
members who do not belong to them; tenant owners and admins may still manage them
by id (rename, delete, add members), but do not see them in listings.

An archived channel (`archived_at` set) is read-only: its history, files and search stay
readable, but nothing new is written into it (`refuse_archived`, 409) until whoever may
rename or delete it unarchives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api import notify
from roomler.api.deps import Context, Membership, Session, is_tenant_admin
from roomler.api.errors import ApiError, conflict, forbidden, not_found, validation
from roomler.api.fields import Text
from roomler.api.pagination import Pagination, paginated
from roomler.api.serialize import iso
from roomler.context import ServerContext
from roomler.db.models import Channel, ChannelMember, TenantMember, User, utcnow
from roomler.db.queries import channel_member_ids, is_channel_member
from roomler.ids import is_id

router = APIRouter(prefix="/tenant/{tid}/channel", tags=["channels"])

MAX_PATH_LENGTH = 1024  # the width of `channels.path`
# A direct conversation (api/direct.py): a private channel of 2 to 8 members.
DIRECT = "direct"


def _check_name(name: str) -> str:
    if "." in name:
        raise ValueError("must not contain '.', which separates path segments")
    if name.startswith("@"):
        raise ValueError("must not start with '@', kept for direct messages")
    if not name.strip():
        raise ValueError("must not be blank")
    return name.strip()


ChannelName = Annotated[Text, Field(min_length=1, max_length=100), AfterValidator(_check_name)]
Purpose = Annotated[Text, Field(max_length=1000)]


class ChannelIn(BaseModel):
    name: ChannelName
    channel_type: Literal["text", "category", "voice", "announcement"] = "text"
    parent_id: Text | None = None
    is_private: bool = False
    purpose: Purpose | None = None


class ChannelUpdate(BaseModel):
    name: ChannelName | None = None
    purpose: Purpose | None = None
    is_private: bool | None = None


class MemberIn(BaseModel):
    user_id: Text


def channel_out(
    channel: Channel, *, is_member: bool, member_ids: list[str] | None = None
) -> dict[str, Any]:
    """A channel; a direct conversation also names its members (`member_ids`)."""
    extra = {"member_ids": member_ids or []} if channel.channel_type == DIRECT else {}
    return extra | {
        "id": channel.id,
        "name": channel.name,
        "path": channel.path,
        "channel_type": channel.channel_type,
        "parent_id": channel.parent_id,
        "is_private": channel.is_private,
        "purpose": channel.purpose,
        "member_count": channel.member_count,
        "is_member": is_member,
        "created_by": channel.created_by,
        "created_at": iso(channel.created_at),
        "archived": channel.archived_at is not None,
        "archived_at": iso(channel.archived_at),
    }


def member_out(row: ChannelMember, user: User) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "joined_at": iso(row.joined_at),
    }


def path_order(path: str) -> list[str]:
    """Sort key that keeps every channel directly after its parent, on every database."""
    return path.split(".")


# --- resolving a channel id -------------------------------------------------------------


async def live_channel(session: AsyncSession, tenant_id: str, cid: str) -> Channel:
    """The tenant's live channel `cid`; 404 for malformed, unknown, foreign or deleted ids."""
    if not is_id(cid):
        raise not_found("Channel not found")
    channel = await session.scalar(
        select(Channel).where(
            Channel.id == cid, Channel.tenant_id == tenant_id, Channel.deleted_at.is_(None)
        )
    )
    if channel is None:
        raise not_found("Channel not found")
    return channel


async def visible_channel(session: AsyncSession, member: TenantMember, cid: str) -> Channel:
    """A channel the caller may read: public, or private and they belong to it."""
    channel = await live_channel(session, member.tenant_id, cid)
    if channel.is_private and not await is_channel_member(session, channel.id, member.user_id):
        raise not_found("Channel not found")
    return channel


async def get_visible_channel(cid: str, member: Membership, session: Session) -> Channel:
    return await visible_channel(session, member, cid)


async def get_manageable_channel(cid: str, member: Membership, session: Session) -> Channel:
    """Visible channels, and for tenant owners/admins also private ones they are not in."""
    if is_tenant_admin(member):
        return await live_channel(session, member.tenant_id, cid)
    return await visible_channel(session, member, cid)


VisibleChannel = Annotated[Channel, Depends(get_visible_channel)]
ManageableChannel = Annotated[Channel, Depends(get_manageable_channel)]


def require_manager(member: TenantMember, channel: Channel) -> None:
    if channel.created_by != member.user_id and not is_tenant_admin(member):
        raise forbidden("Only the channel's creator or a tenant owner/admin may do this")


ARCHIVED_MESSAGE = "The channel is archived: it is read-only until it is unarchived"
# `responses=` of a route that writes into a channel: the 409 of `refuse_archived`.
READ_ONLY: dict[int | str, dict[str, Any]] = {
    409: {"description": "The channel is archived (read-only), or a conflict the message names"}
}


def refuse_archived(channel: Channel) -> None:
    """Nothing new goes into an archived channel: messages, edits, reactions, pins, files,
    members, calls. Reading it stays open."""
    if channel.archived_at is not None:
        raise conflict(ARCHIVED_MESSAGE)


# --- paths ---------------------------------------------------------------------------------


def child_path(parent: Channel | None, name: str) -> str:
    path = f"{parent.path}.{name}" if parent is not None else name
    if len(path) > MAX_PATH_LENGTH:
        raise validation(f"Channel path would exceed {MAX_PATH_LENGTH} characters")
    return path


async def ensure_path_free(
    session: AsyncSession, tenant_id: str, path: str, *, ignore: str | None = None
) -> None:
    query = select(Channel.id).where(
        Channel.tenant_id == tenant_id, Channel.path == path, Channel.deleted_at.is_(None)
    )
    if ignore is not None:
        query = query.where(Channel.id != ignore)
    if await session.scalar(query) is not None:
        raise conflict(f"A channel with path '{path}' already exists")


async def live_descendants(session: AsyncSession, channel: Channel) -> Sequence[Channel]:
    # A prefix compare, not LIKE: SQLite's LIKE ignores case, so `Eng` would claim `eng.x`.
    prefix = channel.path + "."
    rows = await session.scalars(
        select(Channel).where(
            Channel.tenant_id == channel.tenant_id,
            Channel.deleted_at.is_(None),
            func.substr(Channel.path, 1, len(prefix)) == prefix,
        )
    )
    return rows.all()


async def commit_or_conflict(session: AsyncSession, path: str) -> None:
    """Commit; the partial unique index catches a path taken by a concurrent request."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise conflict(f"A channel with path '{path}' already exists") from None


# --- membership rows -----------------------------------------------------------------------


async def add_channel_member(
    session: AsyncSession, channel: Channel, user_id: str
) -> ChannelMember | None:
    """Insert the membership and count it; None if the user already belongs (the
    transaction is then rolled back, so `channel` must not be read afterwards)."""
    row = ChannelMember(tenant_id=channel.tenant_id, channel_id=channel.id, user_id=user_id)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return None
    await session.execute(
        update(Channel)
        .where(Channel.id == channel.id)
        .values(member_count=Channel.member_count + 1)
    )
    await session.commit()
    return row


# --- routes --------------------------------------------------------------------------------


@router.get("")
async def list_channels(member: Membership, session: Session) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Channel, ChannelMember.id)
        .outerjoin(
            ChannelMember,
            and_(ChannelMember.channel_id == Channel.id, ChannelMember.user_id == member.user_id),
        )
        .where(
            Channel.tenant_id == member.tenant_id,
            Channel.deleted_at.is_(None),
            or_(Channel.is_private.is_(False), ChannelMember.id.is_not(None)),
        )
    )
    listed = list(rows.tuples())
    direct = await direct_member_ids(session, [c.id for c, _ in listed if c.channel_type == DIRECT])
    channels = [
        channel_out(channel, is_member=joined is not None, member_ids=direct.get(channel.id))
        for channel, joined in listed
    ]
    return sorted(channels, key=lambda c: path_order(c["path"]))


async def direct_member_ids(session: AsyncSession, channel_ids: list[str]) -> dict[str, list[str]]:
    """The members of each direct conversation, in the order they were added."""
    if not channel_ids:
        return {}
    rows = await session.execute(
        select(ChannelMember.channel_id, ChannelMember.user_id)
        .where(ChannelMember.channel_id.in_(channel_ids))
        .order_by(ChannelMember.joined_at, ChannelMember.id)
    )
    found: dict[str, list[str]] = {}
    for channel_id, user_id in rows.tuples():
        found.setdefault(channel_id, []).append(user_id)
    return found


def refuse_direct(channel: Channel, action: str) -> None:
    """A direct conversation keeps its members and has no name to change."""
    if channel.channel_type == DIRECT:
        raise forbidden(f"A direct conversation cannot be {action}")


@router.post("", status_code=201)
async def create_channel(
    body: ChannelIn, member: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    parent = None
    if body.parent_id is not None:
        try:
            parent = await visible_channel(session, member, body.parent_id)
        except ApiError:
            raise not_found("Parent channel not found") from None
    path = child_path(parent, body.name)
    await ensure_path_free(session, member.tenant_id, path)
    channel = Channel(
        tenant_id=member.tenant_id,
        parent_id=parent.id if parent is not None else None,
        name=body.name,
        path=path,
        channel_type=body.channel_type,
        is_private=body.is_private,
        purpose=body.purpose or None,
        member_count=1,
        created_by=member.user_id,
    )
    session.add(channel)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise conflict(f"A channel with path '{path}' already exists") from None
    session.add(
        ChannelMember(tenant_id=member.tenant_id, channel_id=channel.id, user_id=member.user_id)
    )
    await commit_or_conflict(session, path)
    created = channel_out(channel, is_member=True)
    await notify.channel_created(ctx, session, member.tenant_id, created, member.user_id)
    return created


@router.get("/explore")
async def explore_channels(
    member: Membership, session: Session, q: Annotated[Text, Query(max_length=200)] | None = None
) -> list[dict[str, Any]]:
    query = (
        select(Channel, ChannelMember.id)
        .outerjoin(
            ChannelMember,
            and_(ChannelMember.channel_id == Channel.id, ChannelMember.user_id == member.user_id),
        )
        .where(
            Channel.tenant_id == member.tenant_id,
            Channel.deleted_at.is_(None),
            Channel.is_private.is_(False),
        )
        .order_by(Channel.member_count.desc(), Channel.name, Channel.id)
    )
    if q:
        needle = q.lower()
        query = query.where(
            or_(
                func.lower(Channel.name).contains(needle, autoescape=True),
                func.lower(Channel.purpose).contains(needle, autoescape=True),
            )
        )
    rows = await session.execute(query)
    return [channel_out(channel, is_member=joined is not None) for channel, joined in rows]


@router.get("/{cid}")
async def get_channel(
    channel: VisibleChannel, member: Membership, session: Session
) -> dict[str, Any]:
    joined = await is_channel_member(session, channel.id, member.user_id)
    direct = await direct_member_ids(
        session, [channel.id] if channel.channel_type == DIRECT else []
    )
    return channel_out(channel, is_member=joined, member_ids=direct.get(channel.id))


@router.put("/{cid}", responses=READ_ONLY)
async def update_channel(
    body: ChannelUpdate,
    channel: ManageableChannel,
    member: Membership,
    session: Session,
    ctx: Context,
) -> dict[str, Any]:
    refuse_direct(channel, "changed")
    require_manager(member, channel)
    refuse_archived(channel)
    made_private = body.is_private is True and not channel.is_private
    if not body.model_fields_set:
        raise validation("Nothing to update: give name, purpose or is_private")
    viewers_before = await notify.channel_viewers(session, channel) if made_private else []
    paths = {channel.id: channel.path}
    if body.name is not None and body.name != channel.name:
        paths = await rename_channel(session, channel, body.name)
    if "purpose" in body.model_fields_set:
        channel.purpose = body.purpose or None
    if body.is_private is not None:
        channel.is_private = body.is_private
    await commit_or_conflict(session, channel.path)
    members = set(await channel_member_ids(session, channel.id)) if made_private else set()
    hidden_from = [user_id for user_id in viewers_before if user_id not in members]
    await notify.channel_updated(ctx, session, channel, paths, hidden_from)
    if made_private:
        await notify.channel_made_private(ctx, session, channel.id)
    joined = await is_channel_member(session, channel.id, member.user_id)
    return channel_out(channel, is_member=joined)


async def rename_channel(session: AsyncSession, channel: Channel, name: str) -> dict[str, str]:
    """Rename and move the whole subtree: `a.b` renamed to `c` turns `a.b.x` into `a.c.x`.
    Returns the new path of the channel and of each sub-channel, by id."""
    old_path = channel.path
    new_path = old_path[: len(old_path) - len(channel.name)] + name
    if len(new_path) > MAX_PATH_LENGTH:
        raise validation(f"Channel path would exceed {MAX_PATH_LENGTH} characters")
    await ensure_path_free(session, channel.tenant_id, new_path, ignore=channel.id)
    descendants = await live_descendants(session, channel)
    for child in descendants:
        moved = new_path + child.path[len(old_path) :]
        if len(moved) > MAX_PATH_LENGTH:
            raise validation(f"Channel path '{moved}' would exceed {MAX_PATH_LENGTH} characters")
        child.path = moved
    channel.name = name
    channel.path = new_path
    return {channel.id: new_path} | {child.id: child.path for child in descendants}


@router.delete("/{cid}")
async def delete_channel(
    channel: ManageableChannel, member: Membership, session: Session, ctx: Context
) -> dict[str, bool]:
    """Soft delete; the channel's sub-channels go with it, so their paths are freed too.

    The conferences announced in them end (their rooms close with `channel_deleted`).
    """
    refuse_direct(channel, "deleted")
    require_manager(member, channel)
    now = utcnow()
    going = [channel, *await live_descendants(session, channel)]
    viewers = {c.id: await notify.channel_viewers(session, c) for c in going}
    for gone in going:
        gone.deleted_at = now
    await session.commit()
    await notify.channels_removed(ctx, member.tenant_id, viewers)
    await notify.channels_deleted(ctx, session, member.tenant_id, [c.id for c in going])
    return {"deleted": True}


@router.put("/{cid}/archive")
async def archive_channel(
    channel: ManageableChannel, member: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    """Archive: the channel becomes read-only for everyone. Archiving an archived channel
    answers it unchanged and tells nobody."""
    return await _set_archived(ctx, session, member, channel, archived=True)


@router.delete("/{cid}/archive")
async def unarchive_channel(
    channel: ManageableChannel, member: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    """Unarchive: the channel is written to again, its members as they were."""
    return await _set_archived(ctx, session, member, channel, archived=False)


async def _set_archived(
    ctx: ServerContext,
    session: AsyncSession,
    member: TenantMember,
    channel: Channel,
    *,
    archived: bool,
) -> dict[str, Any]:
    refuse_direct(channel, "archived")
    require_manager(member, channel)
    if (channel.archived_at is not None) != archived:
        channel.archived_at = utcnow() if archived else None
        await session.commit()
        await notify.channel_updated(ctx, session, channel, {channel.id: channel.path})
    joined = await is_channel_member(session, channel.id, member.user_id)
    return channel_out(channel, is_member=joined)


@router.post("/{cid}/join", responses=READ_ONLY)
async def join_channel(
    channel: ManageableChannel, member: Membership, session: Session
) -> dict[str, bool]:
    """Join a public channel; an archived one is read without joining (409)."""
    if await is_channel_member(session, channel.id, member.user_id):
        return {"joined": True}
    if channel.is_private:
        raise forbidden("Private channels cannot be joined; an owner or admin must add you")
    refuse_archived(channel)
    # None means a concurrent request added the same membership: joined all the same.
    await add_channel_member(session, channel, member.user_id)
    return {"joined": True}


@router.post("/{cid}/leave")
async def leave_channel(
    channel: VisibleChannel, member: Membership, session: Session, ctx: Context
) -> dict[str, bool]:
    refuse_direct(channel, "left")
    await remove_channel_member(ctx, session, channel, member.user_id)
    return {"left": True}


async def remove_channel_member(
    ctx: ServerContext, session: AsyncSession, channel: Channel, user_id: str
) -> bool:
    """Delete the membership and count it; the user leaves the channel's conferences they
    may no longer see. False if they were not a member."""
    channel_id, tenant_id = channel.id, channel.tenant_id
    removed = await session.execute(
        delete(ChannelMember).where(
            ChannelMember.channel_id == channel_id, ChannelMember.user_id == user_id
        )
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        await session.commit()
        return False
    await session.execute(
        update(Channel)
        .where(Channel.id == channel_id)
        .values(member_count=Channel.member_count - 1)
    )
    await session.commit()
    await notify.access_lost(ctx, session, tenant_id, user_id, [channel_id])
    return True


@router.get("/{cid}/member")
async def list_members(
    channel: VisibleChannel, session: Session, page: Pagination
) -> dict[str, Any]:
    total = await session.scalar(
        select(func.count())
        .select_from(ChannelMember)
        .where(ChannelMember.channel_id == channel.id)
    )
    rows = await session.execute(
        select(ChannelMember, User)
        .join(User, User.id == ChannelMember.user_id)
        .where(ChannelMember.channel_id == channel.id)
        .order_by(ChannelMember.joined_at, ChannelMember.id)
        .offset(page.offset)
        .limit(page.per_page)
    )
    return paginated([member_out(row, user) for row, user in rows], total or 0, page)


@router.post("/{cid}/member", status_code=201, responses=READ_ONLY)
async def add_member(
    body: MemberIn, channel: ManageableChannel, member: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    refuse_direct(channel, "given members: start a new one")
    require_manager(member, channel)
    refuse_archived(channel)
    user = await tenant_user(session, member.tenant_id, body.user_id)
    if await is_channel_member(session, channel.id, user.id):
        raise conflict("That user is already a member of the channel")
    row = await add_channel_member(session, channel, user.id)
    if row is None:
        raise conflict("That user is already a member of the channel")
    added = member_out(row, user)
    if channel.is_private:
        # The channel comes into view for them: their sidebar shows it at once.
        shown = channel_out(channel, is_member=True)
        await notify.channel_shared(ctx, member.tenant_id, shown, user.id)
    return added


@router.delete("/{cid}/member/{user_id}")
async def remove_member(
    user_id: str, channel: ManageableChannel, member: Membership, session: Session, ctx: Context
) -> dict[str, bool]:
    """The channel's creator or a tenant owner/admin removes a member (anyone: themselves)."""
    if user_id != member.user_id:
        require_manager(member, channel)
    refuse_direct(channel, "left")
    if not is_id(user_id) or not await remove_channel_member(ctx, session, channel, user_id):
        raise not_found("That user is not a member of this channel")
    return {"removed": True}


async def tenant_user(session: AsyncSession, tenant_id: str, user_id: str) -> User:
    if not is_id(user_id):
        raise not_found("User is not a member of this tenant")
    user = await session.scalar(
        select(User)
        .join(TenantMember, TenantMember.user_id == User.id)
        .where(TenantMember.tenant_id == tenant_id, User.id == user_id)
    )
    if user is None:
        raise not_found("User is not a member of this tenant")
    return user
