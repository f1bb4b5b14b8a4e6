"""`/api/tenant/{tid}/channel/{cid}/file`: uploading files into a channel and reading them.

An upload is the request body itself (any type, `?name=` the file's name), at most
`ROOMLER__FILES__MAX_BYTES` (413 beyond, refused from Content-Length before a byte is
read when it is given). It needs membership of the channel, as posting does; it belongs
to nobody else until a message of the uploader's names it in `attachment_ids`
(api/messages.py). Reading needs the channel to be visible to the caller, like its
history: the URLs carry no secret and are worth nothing to anyone else. An image Pillow
reads (PNG, JPEG, GIF, WebP) is served inline with a thumbnail made at upload; anything
else is served only as a download (`Content-Disposition: attachment`, sandboxed), so an
uploaded page or script never runs as this site.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api.channels import READ_ONLY, VisibleChannel, refuse_archived
from roomler.api.deps import Context, Membership, Session
from roomler.api.errors import ApiError, forbidden, not_found, validation
from roomler.api.fields import Text
from roomler.api.openapi import refusals
from roomler.api.serialize import iso
from roomler.context import ServerContext
from roomler.db.models import Channel, StoredFile
from roomler.db.queries import is_channel_member
from roomler.files.storage import FileStorage, ObjectNotFound, stream
from roomler.files.thumbnails import read_picture
from roomler.files.uploads import remove_objects, stored_keys, thumbnail_key
from roomler.ids import is_id, new_id

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/tenant/{tid}/channel/{cid}/file", tags=["files"])

# A media type as RFC 9110 section 8.3.1 spells it, parameters dropped.
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}$"
)
# The first bytes of the formats shown inline: only these uploads are kept in memory
# (at most the size limit) to be read by Pillow.
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
_SNIFF_BYTES = 12
MAX_ATTACHMENTS = 10

FileName = Annotated[Text, Field(min_length=1, max_length=255)]


def file_url(stored: StoredFile) -> str:
    return f"/api/tenant/{stored.tenant_id}/channel/{stored.channel_id}/file/{stored.id}"


def file_out(stored: StoredFile) -> dict[str, Any]:
    url = file_url(stored)
    return {
        "id": stored.id,
        "channel_id": stored.channel_id,
        "message_id": stored.message_id,
        "uploader_id": stored.uploader_id,
        "name": stored.name,
        "content_type": stored.content_type,
        "size": stored.size,
        "is_image": stored.thumbnail_type is not None,
        "width": stored.width,
        "height": stored.height,
        "url": url,
        "thumbnail_url": f"{url}/thumbnail" if stored.thumbnail_type else None,
        "created_at": iso(stored.created_at),
    }


async def attachments_of(
    session: AsyncSession, message_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """The files attached to each message, in upload order, read in one query."""
    ids = list(message_ids)
    found: dict[str, list[dict[str, Any]]] = {}
    if not ids:
        return found
    rows = await session.scalars(
        select(StoredFile)
        .where(StoredFile.message_id.in_(ids))
        .order_by(StoredFile.created_at, StoredFile.id)
    )
    for stored in rows:
        found.setdefault(stored.message_id or "", []).append(file_out(stored))
    return found


async def detach_message_files(session: AsyncSession, message_id: str) -> list[str]:
    """Delete the rows of a message's files (in the caller's transaction); the storage
    keys to remove once it commits."""
    rows = await session.scalars(select(StoredFile).where(StoredFile.message_id == message_id))
    keys = [key for stored in rows for key in stored_keys(stored.id, stored.thumbnail_type)]
    if keys:
        await session.execute(delete(StoredFile).where(StoredFile.message_id == message_id))
    return keys


# --- uploading -----------------------------------------------------------------------------


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"file: must be at most {limit} bytes ({limit / 2**20:g} MiB)")


class UploadStream:
    """The request body as `put` reads it: counted, cut off past the limit, and kept in
    memory when its first bytes are those of an image we may show inline."""

    def __init__(self, request: Request, limit: int) -> None:
        self.request = request
        self.limit = limit
        self.size = 0
        self.kept: bytearray | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        head = b""
        sniffed = False
        async for chunk in self.request.stream():
            self.size += len(chunk)
            if self.size > self.limit:
                raise too_large(self.limit)
            if not sniffed:
                head += chunk
                if len(head) < _SNIFF_BYTES:
                    continue
                sniffed = True
                if _looks_like_image(head):
                    self.kept = bytearray()
                chunk = head
            if self.kept is not None:
                self.kept += chunk
            yield chunk
        if not sniffed and head:  # the whole body was shorter than the sniff
            yield head


def _looks_like_image(head: bytes) -> bool:
    return head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def clean_name(name: str) -> str:
    """The name without any directory a client put before it, nor control characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(c for c in base if c >= " " and c != "\x7f").strip()
    if not base or base in (".", ".."):
        raise validation("name: must be a file name")
    return base


def declared_type(request: Request) -> str:
    value = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return value if _MEDIA_TYPE.match(value) else "application/octet-stream"


@router.post(
    "",
    status_code=201,
    responses=refusals(413) | READ_ONLY,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_file(
    request: Request,
    ctx: Context,
    channel: VisibleChannel,
    member: Membership,
    session: Session,
    name: Annotated[FileName, Query()],
) -> dict[str, Any]:
    """Store the request body as a file of the channel; attach it with a message."""
    limit = ctx.settings.files.max_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large(limit)
    if not await is_channel_member(session, channel.id, member.user_id):
        raise forbidden("Join the channel first")
    refuse_archived(channel)
    file_name = clean_name(name)
    body = UploadStream(request, limit)
    file_id = new_id()
    await ctx.storage.put(file_id, body.chunks())
    keys = [file_id]
    try:
        if body.size == 0:
            raise validation("body: the file is empty")
        stored = await _describe(ctx, channel, member.user_id, file_id, file_name, request, body)
        if stored.thumbnail_type:
            keys.append(thumbnail_key(file_id))
        session.add(stored)
        await session.commit()
    except BaseException:
        await remove_objects(ctx.storage, keys)
        raise
    return file_out(stored)


async def _describe(
    ctx: ServerContext,
    channel: Channel,
    user_id: str,
    file_id: str,
    file_name: str,
    request: Request,
    body: UploadStream,
) -> StoredFile:
    """The row of an upload; an image's thumbnail is stored on the way."""
    settings = ctx.settings.files
    stored = StoredFile(
        id=file_id,
        tenant_id=channel.tenant_id,
        channel_id=channel.id,
        uploader_id=user_id,
        name=file_name,
        content_type=declared_type(request),
        size=body.size,
    )
    if body.kept is not None:
        picture = await read_picture(
            bytes(body.kept), settings.thumbnail_px, settings.max_image_pixels
        )
        if picture is not None:
            await ctx.storage.put(thumbnail_key(file_id), stream(picture.thumbnail))
            stored.content_type = picture.content_type
            stored.width, stored.height = picture.width, picture.height
            stored.thumbnail_type = picture.thumbnail_type
    return stored


@router.delete("/{fid}")
async def delete_upload(
    fid: str, ctx: Context, channel: VisibleChannel, member: Membership, session: Session
) -> dict[str, bool]:
    """Withdraw one's own upload not yet attached to a message (a message's files go
    with the message)."""
    stored = await _find(session, channel, fid, member.user_id)
    if stored.message_id is not None:
        raise ApiError(409, "The file is attached to a message: delete the message")
    if stored.uploader_id != member.user_id:
        raise not_found("File not found")
    await session.delete(stored)
    await session.commit()
    await remove_objects(ctx.storage, stored_keys(stored.id, stored.thumbnail_type))
    return {"deleted": True}


# --- reading -------------------------------------------------------------------------------


async def _find(session: AsyncSession, channel: Channel, fid: str, user_id: str) -> StoredFile:
    """A file of the channel the caller may read: attached to a message, or their own
    upload not yet attached."""
    stored = (
        await session.scalar(
            select(StoredFile).where(StoredFile.id == fid, StoredFile.channel_id == channel.id)
        )
        if is_id(fid)
        else None
    )
    if stored is None or (stored.message_id is None and stored.uploader_id != user_id):
        raise not_found("File not found")
    return stored


def content_disposition(kind: str, name: str) -> str:
    """RFC 6266: an ASCII fallback name and the real one in RFC 8187 encoding."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def streamed(
    storage: FileStorage, key: str, media_type: str, headers: dict[str, str]
) -> StreamingResponse:
    chunks = storage.open(key)
    try:
        first = await anext(chunks, b"")
    except ObjectNotFound:
        logger.error("stored file %s is missing from the storage", key)
        raise not_found("File not found") from None

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(body(), media_type=media_type, headers=headers)


# Files never change: a browser may keep them, but no shared cache (they need a sign-in).
STORED_FILE_HEADERS = {
    "Cache-Control": "private, max-age=86400",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


@router.get("/{fid}", response_class=StreamingResponse, responses={200: {"content": {"*/*": {}}}})
async def download_file(
    fid: str,
    ctx: Context,
    channel: VisibleChannel,
    member: Membership,
    session: Session,
    download: bool = False,
) -> StreamingResponse:
    """The file's bytes; an image inline unless `download=true`, anything else as a download."""
    stored = await _find(session, channel, fid, member.user_id)
    inline = stored.thumbnail_type is not None and not download
    media_type = stored.content_type if inline else "application/octet-stream"
    headers = STORED_FILE_HEADERS | {
        "Content-Length": str(stored.size),
        "Content-Disposition": content_disposition(
            "inline" if inline else "attachment", stored.name
        ),
    }
    return await streamed(ctx.storage, stored.id, media_type, headers)


@router.get(
    "/{fid}/thumbnail",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
async def file_thumbnail(
    fid: str, ctx: Context, channel: VisibleChannel, member: Membership, session: Session
) -> StreamingResponse:
    """An image's thumbnail (JPEG, or PNG when it has transparency); 404 for other files."""
    stored = await _find(session, channel, fid, member.user_id)
    if not stored.thumbnail_type:
        raise not_found("The file has no thumbnail: it is not an image")
    return await streamed(
        ctx.storage, thumbnail_key(stored.id), stored.thumbnail_type, STORED_FILE_HEADERS
    )
