"""Request dependencies: the server context, a database session, the caller, tenant membership."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api.errors import forbidden, unauthorized
from roomler.auth.tokens import InvalidToken
from roomler.context import ServerContext
from roomler.db.models import TenantMember, User
from roomler.ids import is_id
from roomler.logs import annotate_log_context

ACCESS_COOKIE = "access_token"


def get_context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


Context = Annotated[ServerContext, Depends(get_context)]


async def get_session(ctx: Context) -> AsyncIterator[AsyncSession]:
    async with ctx.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


def request_token(request: Request) -> str | None:
    """The bearer token from the Authorization header, else the `access_token` cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return request.cookies.get(ACCESS_COOKIE)


async def get_current_user(request: Request, ctx: Context, session: Session) -> User:
    token = request_token(request)
    if not token:
        raise unauthorized("Authentication required")
    try:
        claims = ctx.tokens.verify(token, "access")
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None
    user = await session.get(User, claims.user_id)
    if user is None:
        raise unauthorized("User no longer exists")
    annotate_log_context(user_id=user.id)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_tenant_member(tid: str, user: CurrentUser, session: Session) -> TenantMember:
    """The caller's membership of tenant `tid`; 403 for non-members and unknown tenants alike."""
    if not is_id(tid):
        raise forbidden("Not a member of this tenant")
    member = await session.scalar(
        select(TenantMember).where(TenantMember.tenant_id == tid, TenantMember.user_id == user.id)
    )
    if member is None:
        raise forbidden("Not a member of this tenant")
    return member


Membership = Annotated[TenantMember, Depends(get_tenant_member)]


def is_tenant_admin(member: TenantMember) -> bool:
    return member.role in ("owner", "admin")
