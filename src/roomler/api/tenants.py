"""`/api/tenant`: the caller's tenants and each tenant's members.

Every tenant-scoped route goes through the `Membership` dependency, so a
non-member gets 403 whether or not the tenant exists: existence does not leak.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from roomler.api import notify
from roomler.api.auth import TenantSlug
from roomler.api.deps import Context, CurrentUser, Membership, Session, is_tenant_admin
from roomler.api.errors import conflict, forbidden, not_found
from roomler.api.fields import Text, given_string
from roomler.api.pagination import Pagination, paginated
from roomler.api.serialize import avatar_url, iso
from roomler.db.models import Channel, ChannelMember, Tenant, TenantMember, User
from roomler.ids import is_id

router = APIRouter(prefix="/tenant", tags=["tenants"])

Role = Literal["owner", "admin", "member"]
ObjectId = Annotated[str, Field(pattern=r"^[0-9a-f]{24}$")]


class TenantIn(BaseModel):
    name: Annotated[Text, Field(min_length=1, max_length=100)]
    slug: TenantSlug


class MemberIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [given_string("user_id"), given_string("username"), given_string("email")]
        }
    )

    user_id: ObjectId | None = None
    username: Annotated[Text, Field(min_length=1, max_length=32)] | None = None
    email: Annotated[Text, Field(min_length=1, max_length=254)] | None = None
    role: Role = "member"

    @model_validator(mode="after")
    def _exactly_one_identifier(self) -> MemberIn:
        given = [f for f in ("user_id", "username", "email") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of user_id, username or email")
        return self


class RoleIn(BaseModel):
    role: Role


def tenant_out(tenant: Tenant, role: str) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "slug": tenant.slug,
        "owner_id": tenant.owner_id,
        "role": role,
    }


def member_out(member: TenantMember, user: User) -> dict[str, Any]:
    return {
        "id": member.id,
        "user_id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "avatar": avatar_url(user),
        "time_zone": user.time_zone,
        "role": member.role,
        "joined_at": iso(member.joined_at),
    }


@router.get("")
async def list_tenants(user: CurrentUser, session: Session) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Tenant, TenantMember.role)
        .join(TenantMember, TenantMember.tenant_id == Tenant.id)
        .where(TenantMember.user_id == user.id)
        .order_by(TenantMember.joined_at, Tenant.id)
    )
    return [tenant_out(tenant, role) for tenant, role in rows.all()]


@router.post("", status_code=201)
async def create_tenant(
    body: TenantIn, user: CurrentUser, session: Session, ctx: Context
) -> dict[str, Any]:
    if await session.scalar(select(Tenant.id).where(Tenant.slug == body.slug)) is not None:
        raise conflict(f"Tenant slug '{body.slug}' is already taken")
    tenant = Tenant(name=body.name, slug=body.slug, owner_id=user.id)
    session.add(tenant)
    try:
        await session.flush()
        session.add(TenantMember(tenant_id=tenant.id, user_id=user.id, role="owner"))
        await session.commit()
    except IntegrityError:
        # Lost a race with a concurrent creation of the same slug.
        await session.rollback()
        raise conflict(f"Tenant slug '{body.slug}' is already taken") from None
    ctx.presence.tenant_joined(user.id, tenant.id)  # its later members hear of the owner
    return tenant_out(tenant, "owner")


@router.get("/{tid}")
async def get_tenant(me: Membership, session: Session) -> dict[str, Any]:
    tenant = await session.get(Tenant, me.tenant_id)
    assert tenant is not None  # the membership row references it
    return tenant_out(tenant, me.role)


@router.get("/{tid}/member")
async def list_members(me: Membership, page: Pagination, session: Session) -> dict[str, Any]:
    total = await session.scalar(
        select(func.count()).select_from(TenantMember).where(TenantMember.tenant_id == me.tenant_id)
    )
    total = total or 0
    if page.offset >= total:
        # Past the end; also keeps a huge `page` from overflowing the database's OFFSET.
        return paginated([], total, page)
    rows = await session.execute(
        select(TenantMember, User)
        .join(User, User.id == TenantMember.user_id)
        .where(TenantMember.tenant_id == me.tenant_id)
        .order_by(TenantMember.joined_at, TenantMember.id)
        .offset(page.offset)
        .limit(page.per_page)
    )
    items = [member_out(member, user) for member, user in rows.all()]
    return paginated(items, total, page)


@router.post("/{tid}/member", status_code=201)
async def add_member(
    body: MemberIn, me: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    if not is_tenant_admin(me):
        raise forbidden("Only an owner or admin may add members")
    if body.role == "owner" and me.role != "owner":
        raise forbidden("Only an owner may grant the owner role")
    user = await _find_user(session, body)
    if user is None:
        raise not_found("No such user")
    if await _membership(session, me.tenant_id, user.id) is not None:
        raise conflict(f"{user.username} is already a member of this tenant")
    username = user.username  # rollback expires `user`; keep what the message needs
    member = TenantMember(tenant_id=me.tenant_id, user_id=user.id, role=body.role)
    session.add(member)
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent request added the same user first.
        await session.rollback()
        raise conflict(f"{username} is already a member of this tenant") from None
    added = member_out(member, user)
    tenant = await session.get(Tenant, me.tenant_id)
    assert tenant is not None  # the caller's membership row references it
    await notify.member_added(ctx, session, tenant_out(tenant, member.role), added)
    return added


async def _find_user(session: Session, body: MemberIn) -> User | None:
    if body.user_id is not None:
        return await session.get(User, body.user_id)
    if body.username is not None:
        condition = func.lower(User.username) == body.username.lower()
    else:
        condition = func.lower(User.email) == (body.email or "").lower()
    return await session.scalar(select(User).where(condition))


async def _membership(session: Session, tenant_id: str, user_id: str) -> TenantMember | None:
    # populate_existing: after `_lock_tenant` waited, read the row as committed now,
    # not as an earlier query of this session left it.
    return await session.scalar(
        select(TenantMember)
        .where(TenantMember.tenant_id == tenant_id, TenantMember.user_id == user_id)
        .execution_options(populate_existing=True)
    )


@router.delete("/{tid}/member/{user_id}")
async def remove_member(
    user_id: str, me: Membership, session: Session, ctx: Context
) -> dict[str, bool]:
    tenant = await _lock_tenant(session, me.tenant_id)
    # Re-read the caller's own role too: it may have changed while we waited for the lock.
    caller = await _membership(session, tenant.id, me.user_id)
    if caller is None:
        raise forbidden("Not a member of this tenant")
    if user_id != caller.user_id and not is_tenant_admin(caller):
        raise forbidden("Only an owner or admin may remove other members")
    target = await _membership(session, tenant.id, user_id) if is_id(user_id) else None
    if target is None:
        raise not_found("That user is not a member of this tenant")
    if target.role == "owner":
        if caller.role != "owner":
            raise forbidden("Only an owner may remove an owner")
        if len(await _owner_ids(session, tenant.id)) <= 1:
            raise conflict("The last owner cannot leave; make someone else owner first")
    await _leave_channels(session, tenant.id, user_id)
    await session.delete(target)
    await session.flush()
    if tenant.owner_id == user_id:
        # Keep `owner_id` pointing at a member: the most senior remaining owner.
        tenant.owner_id = (await _owner_ids(session, tenant.id))[0]
    await session.commit()
    await notify.member_removed(ctx, session, tenant.id, user_id)
    await notify.access_lost(ctx, session, tenant.id, user_id)
    return {"removed": True}


@router.put("/{tid}/member/{user_id}")
async def change_role(
    user_id: str, body: RoleIn, me: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    """Give a member another role (docs/api.md, Roles): owners and admins manage members
    and admins; only an owner grants or takes the owner role; the last owner stays one."""
    tenant = await _lock_tenant(session, me.tenant_id)
    caller = await _membership(session, tenant.id, me.user_id)
    if caller is None or not is_tenant_admin(caller):
        raise forbidden("Only an owner or admin may change roles")
    target = await _membership(session, tenant.id, user_id) if is_id(user_id) else None
    if target is None:
        raise not_found("That user is not a member of this tenant")
    if "owner" in (target.role, body.role) and caller.role != "owner":
        raise forbidden("Only an owner may grant or take the owner role")
    if target.role == "owner" and body.role != "owner":
        if len(await _owner_ids(session, tenant.id)) <= 1:
            raise conflict("The last owner cannot stop being one; make someone else owner first")
    user = await session.get(User, target.user_id)
    assert user is not None  # the membership row references it
    if target.role != body.role:
        target.role = body.role
        await session.flush()
        if tenant.owner_id == target.user_id and body.role != "owner":
            tenant.owner_id = (await _owner_ids(session, tenant.id))[0]
        await session.commit()
        changed = member_out(target, user)
        await notify.member_updated(ctx, session, tenant.id, changed)
        return changed
    return member_out(target, user)


async def _lock_tenant(session: Session, tenant_id: str) -> Tenant:
    """Serialise removals per tenant, so two owners cannot both leave at once.

    A no-op UPDATE rather than SELECT … FOR UPDATE: SQLite ignores FOR UPDATE,
    but an UPDATE takes its write lock; on PostgreSQL it takes a row lock that
    does not block inserts referencing the tenant. Later reads see rows as
    committed once the lock is held.
    """
    await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(owner_id=Tenant.owner_id)
        .execution_options(synchronize_session=False)
    )
    tenant = await session.get(Tenant, tenant_id, populate_existing=True)
    assert tenant is not None  # the caller's membership row references it
    return tenant


async def _owner_ids(session: Session, tenant_id: str) -> list[str]:
    """The tenant's owners, most senior first."""
    rows = await session.scalars(
        select(TenantMember.user_id)
        .where(TenantMember.tenant_id == tenant_id, TenantMember.role == "owner")
        .order_by(TenantMember.joined_at, TenantMember.id)
    )
    return list(rows)


async def _leave_channels(session: Session, tenant_id: str, user_id: str) -> None:
    """Drop the user's channel memberships in the tenant and shrink those channels' counts."""
    channel_ids = list(
        await session.scalars(
            select(ChannelMember.channel_id).where(
                ChannelMember.tenant_id == tenant_id, ChannelMember.user_id == user_id
            )
        )
    )
    if not channel_ids:
        return
    await session.execute(
        delete(ChannelMember).where(
            ChannelMember.tenant_id == tenant_id, ChannelMember.user_id == user_id
        )
    )
    # Decrement in SQL so concurrent joins and leaves are not lost; never below zero.
    await session.execute(
        update(Channel)
        .where(Channel.id.in_(channel_ids))
        .values(member_count=case((Channel.member_count > 0, Channel.member_count - 1), else_=0))
        .execution_options(synchronize_session=False)
    )
