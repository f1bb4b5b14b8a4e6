"""`/api/auth`: register, login, refresh, logout, me."""

from __future__ import annotations

import contextlib
import functools
import zoneinfo
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from roomler.api import notify
from roomler.api.deps import ACCESS_COOKIE, Context, CurrentUser, Session, request_token
from roomler.api.errors import ApiError, conflict, forbidden, unauthorized, validation
from roomler.api.fields import Text, given_string
from roomler.api.openapi import refusals
from roomler.api.serialize import profile_out, user_out
from roomler.auth.passwords import HashingBusy, hash_password, verify_password
from roomler.auth.sessions import (
    TokenPair,
    revoke_family,
    revoke_other_families,
    rotate,
    start_session,
)
from roomler.auth.signup import SignupRefused, admit
from roomler.auth.tokens import InvalidToken, TokenType
from roomler.context import ServerContext
from roomler.db.models import Tenant, TenantMember, User

router = APIRouter(prefix="/auth", tags=["auth"])

T = TypeVar("T")

Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{3,32}$")]
TenantSlug = Annotated[str, Field(pattern=r"^[a-z0-9-]{2,64}$")]
Password = Annotated[Text, Field(min_length=8, max_length=1024)]


class RegisterIn(BaseModel):
    # The cross-field rules in the schema too (JSON Schema 2020-12, OpenAPI 3.1).
    model_config = ConfigDict(
        json_schema_extra={
            "dependentRequired": {"tenant_name": ["tenant_slug"], "tenant_slug": ["tenant_name"]}
        }
    )

    email: EmailStr
    username: Username
    display_name: Annotated[Text, Field(min_length=1, max_length=100)]
    password: Password
    tenant_name: Annotated[Text, Field(min_length=1, max_length=100)] | None = None
    tenant_slug: TenantSlug | None = None
    # An invitation link's code: the new account joins its tenant. Required when the
    # server's sign-up policy is `invite` (auth/signup.py).
    invite_code: Annotated[Text, Field(max_length=128)] | None = None

    @model_validator(mode="after")
    def _tenant_fields_together(self) -> RegisterIn:
        if (self.tenant_name is None) != (self.tenant_slug is None):
            raise ValueError("tenant_name and tenant_slug must be given together")
        return self


class LoginIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [given_string("username"), given_string("email")]}
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                given_string("display_name"),
                given_string("avatar"),
                given_string("time_zone"),
            ]
        }
    )

    display_name: Annotated[Text, Field(min_length=1, max_length=100)] | None = None
    # A URL, or "" to remove the picture (an uploaded one too: PUT /auth/me/avatar).
    avatar: Annotated[Text, Field(max_length=2048)] | None = None
    # An IANA name (`Europe/Paris`), or "" to say none.
    time_zone: Annotated[Text, Field(max_length=64)] | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value and value not in known_time_zones():
            raise ValueError(f"unknown time zone {value[:64]!r}: give an IANA name (Europe/Paris)")
        return value


@functools.cache
def known_time_zones() -> frozenset[str]:
    """The IANA names zoneinfo knows here (the system's tz database, or the tzdata package)."""
    return frozenset(zoneinfo.available_timezones())


class PasswordChange(BaseModel):
    current_password: Annotated[Text, Field(max_length=1024)]
    new_password: Password


class LogoutIn(BaseModel):
    refresh_token: Text | None = None


async def token_response(
    ctx: ServerContext, session: Session, user: User, response: Response
) -> dict[str, Any]:
    """A new sign-in for `user`: a fresh refresh token family."""
    pair = await start_session(session, ctx.tokens, user)
    await session.commit()
    return tokens_out(ctx, user, pair, response)


def secure_cookie(ctx: ServerContext) -> bool:
    """`Secure` (sent over https only) when the server's public URL is https."""
    return ctx.settings.app.public_url.lower().startswith("https://")


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
        secure=secure_cookie(ctx),
    )
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "expires_in": ctx.settings.jwt.access_token_ttl_secs,
        "user": user_out(user),
    }


@router.post("/register", status_code=201, responses=refusals(403, 409, 429, 503))
async def register(
    body: RegisterIn, request: Request, ctx: Context, session: Session, response: Response
) -> dict[str, Any]:
    email = body.email.lower()
    try:
        admit(ctx.settings.auth.signup, body.invite_code)
    except SignupRefused as exc:
        raise forbidden(str(exc)) from None
    attempt = await ctx.signups.acquire([f"addr:{client_address(request)}"])
    if attempt.retry_after:
        raise ApiError(
            429,
            "Too many registrations from this address; try again later",
            headers={"Retry-After": str(attempt.retry_after)},
        )
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
    try:
        password_hash = await hashed(ctx, hash_password, body.password)
    except ApiError:
        await ctx.signups.release(attempt)  # busy, not registered: not counted
        raise
    user = User(
        email=email,
        username=body.username,
        display_name=body.display_name,
        password_hash=password_hash,
    )
    session.add(user)
    joined = None
    try:
        await session.flush()
        if body.tenant_name is not None and body.tenant_slug is not None:
            tenant = Tenant(name=body.tenant_name, slug=body.tenant_slug, owner_id=user.id)
            session.add(tenant)
            await session.flush()
            session.add(TenantMember(tenant_id=tenant.id, user_id=user.id, role="owner"))
        if body.invite_code is not None:
            # Imported here: the invitations module builds on tenants, which builds on this.
            from roomler.api.invitations import NOT_VALID, redeem

            # Used in this transaction: a registration that fails keeps it unused.
            joined = await redeem(session, body.invite_code, user.id)
            if joined is None:
                raise forbidden(NOT_VALID)
        await session.commit()
    except IntegrityError:
        # Lost a race with a concurrent registration of the same name.
        await session.rollback()
        raise conflict("That email, username or tenant slug is already taken") from None
    if joined is not None:
        from roomler.api.invitations import welcome

        await welcome(ctx, session, joined)
    return await token_response(ctx, session, user, response)


@router.get("/signup")
async def signup_policy(ctx: Context) -> dict[str, str]:
    """The server's sign-up policy (`ROOMLER__AUTH__SIGNUP`), for the sign-up page."""
    return {"policy": ctx.settings.auth.signup}


async def hashed(ctx: ServerContext, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on the bounded hashing pool; 503 when it is full (auth/passwords.py)."""
    try:
        return await ctx.hashing.run(fn, *args)
    except HashingBusy:
        raise ApiError(
            503, "The server is busy; try again in a moment", headers={"Retry-After": "1"}
        ) from None


async def _slug_taken(session: Session, slug: str) -> bool:
    return await session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None


@router.post("/login", responses=refusals(401, 429, 503))
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
    try:
        verified = await hashed(ctx, verify_password, stored_hash, body.password)
    except ApiError:
        await ctx.login_failures.release(attempt)  # not checked, so not a failure
        raise
    if not verified:
        raise unauthorized("Invalid credentials")  # the attempt stays counted
    assert user is not None
    await ctx.login_failures.release(attempt)
    return await token_response(ctx, session, user, response)


def client_address(request: Request) -> str:
    """The peer's address; a proxy's X-Forwarded-For only from ROOMLER__APP__FORWARDED_ALLOW_IPS
    (uvicorn rewrites the peer address for those, `roomler serve` configures it)."""
    return request.client.host if request.client else "unknown"


@router.post("/refresh", responses=refusals(401))
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
        (request_token(request, ctx), "access"),
    ]
    for token, kind in presented:
        if token:
            with contextlib.suppress(InvalidToken):
                claims = ctx.tokens.verify(token, kind)
                if claims.session_id is not None:
                    sessions.add(claims.session_id)
    for session_id in sessions:
        await revoke_family(session, session_id)
    response.delete_cookie(
        ACCESS_COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookie(ctx)
    )
    return {"logged_out": True}


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, Any]:
    return user_out(user)


@router.put("/me")
async def update_me(
    body: MeUpdate, ctx: Context, user: CurrentUser, session: Session
) -> dict[str, Any]:
    """Change one's name, picture or time zone; everyone sharing a workspace hears it."""
    if body.display_name is None and body.avatar is None and body.time_zone is None:
        raise validation("Nothing to update: give display_name, avatar or time_zone")
    dropped = None
    if body.display_name is not None:
        user.display_name = body.display_name
    if body.avatar is not None:
        dropped, user.avatar_key = user.avatar_key, None
        user.avatar = body.avatar or None
    if body.time_zone is not None:
        user.time_zone = body.time_zone or None
    await session.commit()
    if dropped:
        # Imported here: avatars builds on this module's router.
        from roomler.api.avatars import remove_avatar

        await remove_avatar(ctx, dropped)
    await notify.user_updated(ctx, session, profile_out(user))
    return user_out(user)


@router.put("/me/password", responses=refusals(403, 429, 503))
async def change_password(
    body: PasswordChange,
    request: Request,
    ctx: Context,
    user: CurrentUser,
    session: Session,
) -> dict[str, Any]:
    """Set a new password, the current one required. Every other sign-in of the user ends:
    their refresh tokens stop working at once, their access tokens (and the WebSockets
    opened with them) within the access token's lifetime. This one carries on."""
    attempt = await ctx.login_failures.acquire(
        [f"user:{user.id}", f"addr:{client_address(request)}"]
    )
    if attempt.retry_after:
        raise ApiError(
            429,
            "Too many wrong passwords; try again later",
            headers={"Retry-After": str(attempt.retry_after)},
        )
    try:
        verified = await hashed(ctx, verify_password, user.password_hash, body.current_password)
    except ApiError:
        await ctx.login_failures.release(attempt)
        raise
    if not verified:
        raise forbidden("current_password: that is not your current password")
    await ctx.login_failures.release(attempt)
    user.password_hash = await hashed(ctx, hash_password, body.new_password)
    this_session = _session_of(request, ctx)
    ended = await revoke_other_families(session, user.id, keep=this_session)
    await session.commit()
    return {"changed": True, "sessions_ended": ended}


def _session_of(request: Request, ctx: ServerContext) -> str | None:
    """The sign-in the request's access token belongs to."""
    token = request_token(request, ctx)
    with contextlib.suppress(InvalidToken):
        return ctx.tokens.verify(token, "access").session_id if token else None
    return None
