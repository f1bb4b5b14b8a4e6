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
from roomler.realtime.handshake import allowed_origins, normalize_origin

ACCESS_COOKIE = "access_token"
# RFC 9110 section 9.2.1: methods that do not change state (and CORS keeps other origins
# from reading their answers).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


Context = Annotated[ServerContext, Depends(get_context)]


async def get_session(ctx: Context) -> AsyncIterator[AsyncSession]:
    async with ctx.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


def request_token(request: Request, ctx: ServerContext) -> str | None:
    """The bearer token from the Authorization header, else the `access_token` cookie.

    A browser attaches the cookie to requests that other pages make (CSRF); `SameSite=Lax`
    keeps it off cross-site POSTs but not off a sibling origin of the same site (another
    subdomain or port). So a request that changes state may use the cookie only when its
    Origin, or else its Referer, is this server's own origin or in CORS_ORIGINS (the
    OWASP "verifying origin with standard headers" defence). Bearer tokens are never sent
    by a browser on its own, so they need no such check.
    """
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    cookie = request.cookies.get(ACCESS_COOKIE)
    if cookie and request.method not in SAFE_METHODS and not _from_our_pages(request, ctx):
        raise forbidden(
            "A request authenticated by the cookie that changes state needs an Origin (or "
            "Referer) of this site or of CORS_ORIGINS; scripts send Authorization: Bearer"
        )
    return cookie


def _from_our_pages(request: Request, ctx: ServerContext) -> bool:
    source = request.headers.get("origin") or request.headers.get("referer")
    origin = normalize_origin(source) if source else None
    if origin is None:  # absent, "null" (a sandboxed or privacy-sensitive context), garbage
        return False
    ws_scheme = "wss" if request.url.scheme == "https" else "ws"
    app = ctx.settings.app
    own = allowed_origins(ws_scheme, request.headers.get("host"), app.public_url, app.cors_origins)
    return origin in own


async def get_current_user(request: Request, ctx: Context, session: Session) -> User:
    token = request_token(request, ctx)
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
