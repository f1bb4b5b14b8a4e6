"""Profile pictures: `PUT /api/auth/me/avatar` uploads one, `GET /api/user/{uid}/avatar/{key}`
serves it.

An upload is the request body itself (an image Pillow reads: PNG, JPEG, GIF, WebP), at
most `AVATAR_MAX_BYTES`. Only a square of `AVATAR_PX` pixels cut from its middle is kept,
in the file storage (files/storage.py) under a new key each time, so the URL changes with
the picture and a browser may keep it. Reading needs a sign-in and a workspace shared
with the user (their own picture too): like files, the URL carries no secret.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from roomler.api import notify
from roomler.api.deps import Context, CurrentUser, Session
from roomler.api.errors import not_found, validation
from roomler.api.files import STORED_FILE_HEADERS, UploadStream, streamed, too_large
from roomler.api.openapi import refusals
from roomler.api.serialize import profile_out, user_out
from roomler.context import ServerContext
from roomler.db.models import TenantMember, User
from roomler.files.storage import stream
from roomler.files.thumbnails import read_square
from roomler.files.uploads import remove_objects
from roomler.ids import is_id, new_id

router = APIRouter(tags=["auth"])

AVATAR_PX = 256
AVATAR_MAX_BYTES = 10 * 1024 * 1024


def avatar_key(media_type: str) -> str:
    """A new storage key, its suffix saying how the picture is encoded."""
    return f"avatar-{new_id()}.{'png' if media_type == 'image/png' else 'jpg'}"


async def remove_avatar(ctx: ServerContext, key: str) -> None:
    """Remove a picture no longer named by its user (after the commit that dropped it)."""
    await remove_objects(ctx.storage, [key])


@router.put(
    "/auth/me/avatar",
    responses=refusals(413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_avatar(
    request: Request, ctx: Context, user: CurrentUser, session: Session
) -> dict[str, Any]:
    """Make the request body (an image) the caller's picture; answers the updated user."""
    limit = min(AVATAR_MAX_BYTES, ctx.settings.files.max_bytes)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large(limit)
    body = UploadStream(request, limit)
    async for _ in body.chunks():  # counted and kept in memory when it looks like an image
        pass
    if body.kept is None:
        raise validation("body: must be a PNG, JPEG, GIF or WebP image")
    picture = await read_square(bytes(body.kept), AVATAR_PX, ctx.settings.files.max_image_pixels)
    if picture is None:
        raise validation("body: must be a PNG, JPEG, GIF or WebP image")
    key = avatar_key(picture.thumbnail_type)
    await ctx.storage.put(key, stream(picture.thumbnail))
    dropped, user.avatar_key, user.avatar = user.avatar_key, key, None
    try:
        await session.commit()
    except BaseException:
        await remove_avatar(ctx, key)
        raise
    if dropped:
        await remove_avatar(ctx, dropped)
    await notify.user_updated(ctx, session, profile_out(user))
    return user_out(user)


async def _may_see(session: Session, viewer_id: str, user_id: str) -> bool:
    """The viewer is the user, or shares a tenant with them."""
    if viewer_id == user_id:
        return True
    mine = select(TenantMember.tenant_id).where(TenantMember.user_id == viewer_id)
    shared = await session.scalar(
        select(TenantMember.id)
        .where(TenantMember.user_id == user_id, TenantMember.tenant_id.in_(mine))
        .limit(1)
    )
    return shared is not None


@router.get(
    "/user/{uid}/avatar/{key}",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
async def get_avatar(
    uid: str, key: str, ctx: Context, viewer: CurrentUser, session: Session
) -> StreamingResponse:
    """A user's uploaded picture; 404 alike for no such user or picture and for a user who
    shares no workspace with the caller."""
    target = await session.get(User, uid) if is_id(uid) else None
    if (
        target is None
        or target.avatar_key is None
        or target.avatar_key != key
        or not await _may_see(session, viewer.id, uid)
    ):
        raise not_found("Avatar not found")
    media_type = "image/png" if key.endswith(".png") else "image/jpeg"
    return await streamed(ctx.storage, key, media_type, STORED_FILE_HEADERS)
