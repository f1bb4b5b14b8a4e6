"""Invite links into a tenant: `/api/tenant/{tid}/invitation` (owners and admins) and
`/api/invitation/{code}` (anyone holding the link).

A link signs a new user up straight into its tenant (`invite_code` of
`POST /api/auth/register`, the only way to register when `ROOMLER__AUTH__SIGNUP=invite`)
or lets a signed-in user join it (`POST /api/invitation/{code}/accept`). It is valid
while not revoked, not expired and not used up; a use is taken by one conditional
UPDATE, so concurrent redemptions never exceed `max_uses`.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api import notify
from roomler.api.deps import Context, CurrentUser, Membership, Session, is_tenant_admin
from roomler.api.errors import forbidden, not_found
from roomler.api.openapi import refusals
from roomler.api.serialize import iso
from roomler.api.tenants import member_out, tenant_out
from roomler.context import ServerContext
from roomler.db.models import Invitation, Tenant, TenantMember, User, utcnow

router = APIRouter(tags=["invitations"])

NOT_VALID = "The invitation is not valid (unknown, expired, used up or revoked)"
DEFAULT_EXPIRY_SECS = 7 * 24 * 3600
MAX_EXPIRY_SECS = 365 * 24 * 3600


class InvitationIn(BaseModel):
    # Seconds until the link stops working (default a week); null: it never expires.
    expires_in_secs: Annotated[int, Field(ge=60, le=MAX_EXPIRY_SECS)] | None = DEFAULT_EXPIRY_SECS
    # How many accounts may use it; null: no limit.
    max_uses: Annotated[int, Field(ge=1, le=100_000)] | None = None


def invite_url(ctx: ServerContext, code: str) -> str:
    return f"{ctx.settings.app.public_url.rstrip('/')}/invite/{code}"


def state_of(invitation: Invitation) -> str:
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.expires_at is not None and invitation.expires_at <= utcnow():
        return "expired"
    if invitation.max_uses is not None and invitation.uses >= invitation.max_uses:
        return "used_up"
    return "active"


def invitation_out(ctx: ServerContext, invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.id,
        "tenant_id": invitation.tenant_id,
        "code": invitation.code,
        "url": invite_url(ctx, invitation.code),
        "created_by": invitation.created_by,
        "created_at": iso(invitation.created_at),
        "expires_at": iso(invitation.expires_at) if invitation.expires_at else None,
        "max_uses": invitation.max_uses,
        "uses": invitation.uses,
        "state": state_of(invitation),
    }


def _require_admin(me: TenantMember) -> None:
    if not is_tenant_admin(me):
        raise forbidden("Only an owner or admin may manage invitations")


@router.post("/tenant/{tid}/invitation", status_code=201, responses=refusals(403))
async def create_invitation(
    body: InvitationIn, me: Membership, session: Session, ctx: Context
) -> dict[str, Any]:
    _require_admin(me)
    invitation = Invitation(
        tenant_id=me.tenant_id,
        code=secrets.token_urlsafe(18),
        created_by=me.user_id,
        expires_at=(
            utcnow() + timedelta(seconds=body.expires_in_secs)
            if body.expires_in_secs is not None
            else None
        ),
        max_uses=body.max_uses,
        uses=0,
    )
    session.add(invitation)
    await session.commit()
    return invitation_out(ctx, invitation)


@router.get("/tenant/{tid}/invitation", responses=refusals(403))
async def list_invitations(me: Membership, session: Session, ctx: Context) -> list[dict[str, Any]]:
    """The tenant's invitations not revoked, newest first (expired and used-up ones too,
    with their `state`, for a while: the 200 newest)."""
    _require_admin(me)
    rows = await session.scalars(
        select(Invitation)
        .where(Invitation.tenant_id == me.tenant_id, Invitation.revoked_at.is_(None))
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .limit(200)
    )
    return [invitation_out(ctx, invitation) for invitation in rows]


@router.delete("/tenant/{tid}/invitation/{iid}", responses=refusals(403, 404))
async def revoke_invitation(iid: str, me: Membership, session: Session) -> dict[str, bool]:
    _require_admin(me)
    invitation = await session.scalar(
        select(Invitation).where(Invitation.id == iid, Invitation.tenant_id == me.tenant_id)
    )
    if invitation is None:
        raise not_found("No such invitation")
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        await session.commit()
    return {"revoked": True}


async def _valid(session: AsyncSession, code: str) -> Invitation | None:
    invitation = await session.scalar(select(Invitation).where(Invitation.code == code))
    if invitation is None or state_of(invitation) != "active":
        return None
    return invitation


@router.get("/invitation/{code}", responses=refusals(404))
async def show_invitation(code: str, session: Session, ctx: Context) -> dict[str, Any]:
    """What the link is for, without signing in: the tenant's name, so the sign-up page
    can say where it leads, and the server's sign-up policy."""
    invitation = await _valid(session, code)
    if invitation is None:
        raise not_found(NOT_VALID)
    tenant = await session.get(Tenant, invitation.tenant_id)
    assert tenant is not None  # the foreign key cascades
    return {
        "tenant": {"id": tenant.id, "name": tenant.name, "slug": tenant.slug},
        "expires_at": iso(invitation.expires_at) if invitation.expires_at else None,
        "signup": ctx.settings.auth.signup,
    }


async def redeem(session: AsyncSession, code: str, user_id: str) -> TenantMember | None:
    """Take one use of invitation `code` and make `user_id` a member of its tenant, in the
    caller's transaction (a failed registration uses nothing); None when not valid."""
    now = utcnow()
    result = await session.execute(
        update(Invitation)
        .where(
            Invitation.code == code,
            Invitation.revoked_at.is_(None),
            or_(Invitation.expires_at.is_(None), Invitation.expires_at > now),
            or_(Invitation.max_uses.is_(None), Invitation.uses < Invitation.max_uses),
        )
        .values(uses=Invitation.uses + 1)
        .returning(Invitation.tenant_id)
        .execution_options(synchronize_session=False)
    )
    tenant_id = result.scalar_one_or_none()
    if tenant_id is None:
        return None
    member = TenantMember(tenant_id=tenant_id, user_id=user_id, role="member")
    session.add(member)
    await session.flush()
    return member


async def welcome(ctx: ServerContext, session: AsyncSession, member: TenantMember) -> None:
    """After the commit: `tenant:member_added` / `tenant:joined` as for an added member."""
    user = await session.get(User, member.user_id)
    tenant = await session.get(Tenant, member.tenant_id)
    assert user is not None and tenant is not None
    await notify.member_added(
        ctx, session, tenant_out(tenant, member.role), member_out(member, user)
    )


@router.post("/invitation/{code}/accept", responses=refusals(404))
async def accept_invitation(
    code: str, user: CurrentUser, session: Session, ctx: Context
) -> dict[str, Any]:
    """A signed-in user joins the invitation's tenant. A member already is let through
    without taking a use."""
    user_id = user.id  # a rollback below expires `user`
    invitation = await _valid(session, code)
    if invitation is None:
        raise not_found(NOT_VALID)
    tenant_id = invitation.tenant_id
    existing = await session.scalar(
        select(TenantMember).where(
            TenantMember.tenant_id == tenant_id, TenantMember.user_id == user_id
        )
    )
    if existing is not None:
        tenant = await session.get(Tenant, tenant_id)
        assert tenant is not None
        return tenant_out(tenant, existing.role)
    try:
        member = await redeem(session, code, user_id)
        if member is None:
            raise not_found(NOT_VALID)
        await session.commit()
    except IntegrityError:
        # A concurrent accept by the same user joined first.
        await session.rollback()
        existing = await session.scalar(
            select(TenantMember).where(
                TenantMember.tenant_id == tenant_id, TenantMember.user_id == user_id
            )
        )
        if existing is None:
            raise
        member = existing
    else:
        await welcome(ctx, session, member)
    tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None
    return tenant_out(tenant, member.role)
