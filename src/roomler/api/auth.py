"""`/api/auth`: register, login, refresh, logout, me."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, EmailStr, Field, model_validator
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from roomler.api.deps import ACCESS_COOKIE, Context, CurrentUser, Session, request_token
from roomler.api.errors import ApiError, conflict, unauthorized, validation
from roomler.api.fields import Text
from roomler.api.serialize import user_out
from roomler.auth.passwords import hash_password, verify_password
from roomler.auth.sessions import TokenPair, revoke_family, rotate, start_session
from roomler.auth.tokens import InvalidToken, TokenType
from roomler.context import ServerContext
from roomler.db.models import Tenant, TenantMember, User

router = APIRouter(prefix="/auth", tags=["auth"])

Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,32}$")]
TenantSlug = Annotated[str, Field(pattern=r"^[a-z0-9-]{2,64}$")]
Password = Annotated[Text, Field(min_length=8, max_length=1024)]


class RegisterIn(BaseModel):
    email: EmailStr
    username: Username
    display_name: Annotated[Text, Field(min_length=1, max_length=100)]
    password: Password
    tenant_name: Annotated[Text, Field(min_length=1, max_length=100)] | None = None
    tenant_slug: TenantSlug | None = None

    @model_validator(mode="after")
    def _tenant_fields_together(self) -> RegisterIn:
        if (self.tenant_name is None) != (self.tenant_slug is None):
            raise ValueError("tenant_name and tenant_slug must be given together")
        return self


class LoginIn(BaseModel):
    username: Annotated[Text, Field(max_length=254)] | None = None
    email: Annotated[Text, Field(max_length=254)] | None = None
    password: Annotated[Text, Field(max_length=1024)]

    @model_validator(mode="after")
    def _one_identifier(self) -> LoginIn:
        if not (self.username or self.email):
            raise ValueError("username or email is required")
        return self


class RefreshIn(BaseModel):
    refresh_token: Text


class MeUpdate(BaseModel):
    display_name: Annotated[Text, Field(min_length=1, max_length=100)] | None = None
    avatar: Annotated[Text, Field(max_length=2048)] | None = None


class LogoutIn(BaseModel):
    refresh_token: Text | None = None


async def token_response(
    ctx: ServerContext, session: Session, user: User, response: Response
) -> dict[str, Any]:
    """A new sign-in for `user`: a fresh refresh token family."""
    pair = await start_session(session, ctx.tokens, user)
    await session.commit()
    return tokens_out(ctx, user, pair, response)


def tokens_out(
    ctx: ServerContext, user: User, pair: TokenPair, response: Response
) -> dict[str, Any]:
    response.set_cookie(
        ACCESS_COOKIE,
        pair.access_token,
        max_age=ctx.settings.jwt.access_token_ttl_secs,
        httponly=True,
        samesite="lax",
        path="/",
    )
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_in": ctx.settings.jwt.access_token_ttl_secs,
        "user": user_out(user),
    }


@router.post("/register", status_code=201)
async def register(
    body: RegisterIn, ctx: Context, session: Session, response: Response
) -> dict[str, Any]:
    email = body.email.lower()
    taken = await session.scalar(
        select(User).where(
            or_(func.lower(User.email) == email, func.lower(User.username) == body.username.lower())
        )
    )
    if taken is not None:
        field = "email" if taken.email.lower() == email else "username"
        raise conflict(f"That {field} is already registered")
    if body.tenant_slug is not None and await _slug_taken(session, body.tenant_slug):
        raise conflict(f"Tenant slug '{body.tenant_slug}' is already taken")
    user = User(
        email=email,
        username=body.username,
        display_name=body.display_name,
        password_hash=await run_in_threadpool(hash_password, body.password),
    )
    session.add(user)
    try:
        await session.flush()
        if body.tenant_name is not None and body.tenant_slug is not None:
            tenant = Tenant(name=body.tenant_name, slug=body.tenant_slug, owner_id=user.id)
            session.add(tenant)
            await session.flush()
            session.add(TenantMember(tenant_id=tenant.id, user_id=user.id, role="owner"))
        await session.commit()
    except IntegrityError:
        # Lost a race with a concurrent registration of the same name.
        await session.rollback()
        raise conflict("That email, username or tenant slug is already taken") from None
    return await token_response(ctx, session, user, response)


async def _slug_taken(session: Session, slug: str) -> bool:
    return await session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None


@router.post("/login")
async def login(
    body: LoginIn, request: Request, ctx: Context, session: Session, response: Response
) -> dict[str, Any]:
    identifier = (body.username or body.email or "").lower()
    column = User.username if body.username else User.email
    user = await session.scalar(select(User).where(func.lower(column) == identifier))
    # One window per account whichever identifier names it; an unknown name has its own.
    account_key = f"user:{user.id}" if user is not None else f"name:{identifier}"
    attempt = await ctx.login_failures.acquire([account_key, f"addr:{client_address(request)}"])
    if attempt.retry_after:
        raise ApiError(
            429,
            "Too many failed logins; try again later",
            headers={"Retry-After": str(attempt.retry_after)},
        )
    stored_hash = user.password_hash if user is not None else None
    if not await run_in_threadpool(verify_password, stored_hash, body.password):
        raise unauthorized("Invalid credentials")  # the attempt stays counted
    assert user is not None
    await ctx.login_failures.release(attempt)
    return await token_response(ctx, session, user, response)


def client_address(request: Request) -> str:
    """The peer's address; a proxy's X-Forwarded-For only from ROOMLER__APP__FORWARDED_ALLOW_IPS
    (uvicorn rewrites the peer address for those, `roomler serve` configures it)."""
    return request.client.host if request.client else "unknown"


@router.post("/refresh")
async def refresh(
    body: RefreshIn, ctx: Context, session: Session, response: Response
) -> dict[str, Any]:
    """The next token pair of the session; the refresh token presented is used up."""
    try:
        user, pair = await rotate(session, ctx.tokens, body.refresh_token)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None
    return tokens_out(ctx, user, pair, response)


@router.post("/logout")
async def logout(
    request: Request,
    ctx: Context,
    session: Session,
    response: Response,
    body: LogoutIn | None = None,
) -> dict[str, bool]:
    """End the session named by the refresh token in the body and/or the access token
    (header or cookie): its refresh tokens stop working at once."""
    sessions: set[str] = set()
    presented: list[tuple[str | None, TokenType]] = [
        (body.refresh_token if body else None, "refresh"),
        (request_token(request), "access"),
    ]
    for token, kind in presented:
        if token:
            with contextlib.suppress(InvalidToken):
                claims = ctx.tokens.verify(token, kind)
                if claims.session_id is not None:
                    sessions.add(claims.session_id)
    for session_id in sessions:
        await revoke_family(session, session_id)
    response.delete_cookie(ACCESS_COOKIE, path="/", httponly=True, samesite="lax")
    return {"logged_out": True}


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, Any]:
    return user_out(user)


@router.put("/me")
async def update_me(body: MeUpdate, user: CurrentUser, session: Session) -> dict[str, Any]:
    if body.display_name is None and body.avatar is None:
        raise validation("Nothing to update: give display_name or avatar")
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.avatar is not None:
        user.avatar = body.avatar or None
    session.add(user)
    await session.commit()
    return user_out(user)
