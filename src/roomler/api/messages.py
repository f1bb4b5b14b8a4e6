"""`/api/tenant/{tid}/channel/{cid}/message`: the channel's history, threads, posting and edits.

Reading needs the channel to be visible to the caller; posting and editing need
membership of the channel. An archived channel refuses posting, editing and deleting
(409). Every change is published to the channel's members after it is committed
(`message:create` skips the sender, who has the HTTP reply).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api import notifications
from roomler.api.channels import READ_ONLY, VisibleChannel, refuse_archived
from roomler.api.deps import Context, Membership, Session, is_tenant_admin
from roomler.api.errors import forbidden, not_found, validation
from roomler.api.fields import Text, given_string
from roomler.api.files import MAX_ATTACHMENTS, attachments_of, detach_message_files
from roomler.api.pagination import Pagination, paginated
from roomler.api.serialize import iso
from roomler.context import ServerContext
from roomler.db import threads
from roomler.db.models import Channel, Message, StoredFile, utcnow
from roomler.db.queries import channel_member_ids, is_channel_member, reaction_summaries
from roomler.files.uploads import remove_objects
from roomler.ids import is_id

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/tenant/{tid}/channel/{cid}/message", tags=["messages"])

CONNECTION_HEADER = "x-connection-id"


def _not_blank(content: str) -> str:
    if not content.strip():
        raise ValueError("must not be blank")
    return content


Content = Annotated[Text, Field(min_length=1, max_length=10000), AfterValidator(_not_blank)]


# Text of a message that carries files: it may be empty.
Caption = Annotated[Text, Field(max_length=10000)]


class MessageIn(BaseModel):
    # The cross-field rule in the schema too: text, or at least one file.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                given_string("content"),
                {"required": ["attachment_ids"], "properties": {"attachment_ids": {"minItems": 1}}},
            ]
        }
    )

    content: Caption
    # Files the author uploaded into the channel (api/files.py) and has not attached yet.
    attachment_ids: Annotated[list[Text], Field(max_length=MAX_ATTACHMENTS)] = []
    thread_id: Text | None = None
    referenced_message_id: Text | None = None
    nonce: Annotated[Text, Field(max_length=64)] | None = None


class MessageEdit(BaseModel):
    content: Content


def message_out(
    message: Message,
    reactions: list[dict[str, Any]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": message.id,
        "channel_id": message.channel_id,
        "author_id": message.author_id,
        "content": message.content,
        "message_type": message.message_type,
        "thread_id": message.thread_id,
        "referenced_message_id": message.referenced_message_id,
        "is_edited": message.is_edited,
        "reply_count": message.reply_count,
        "last_reply_at": iso(message.last_reply_at),
        "is_pinned": message.is_pinned,
        "pinned_at": iso(message.pinned_at),
        "pinned_by": message.pinned_by,
        "nonce": message.nonce,
        "reactions": reactions or [],
        "attachments": attachments or [],
        "created_at": iso(message.created_at),
        "updated_at": iso(message.updated_at),
    }


async def messages_out(session: AsyncSession, messages: list[Message]) -> list[dict[str, Any]]:
    """`message_out` for each, with their reactions and files read in one query each."""
    ids = [m.id for m in messages]
    reactions = await reaction_summaries(session, ids)
    files = await attachments_of(session, ids)
    return [message_out(m, reactions.get(m.id), files.get(m.id)) for m in messages]


async def find_message(
    session: AsyncSession, channel: Channel, mid: str, *, include_deleted: bool = False
) -> Message | None:
    if not is_id(mid):
        return None
    query = select(Message).where(Message.id == mid, Message.channel_id == channel.id)
    if not include_deleted:
        query = query.where(Message.deleted_at.is_(None))
    message: Message | None = await session.scalar(query)
    return message


async def live_message(session: AsyncSession, channel: Channel, mid: str) -> Message:
    message = await find_message(session, channel, mid)
    if message is None:
        raise not_found("Message not found")
    return message


async def require_channel_member(session: AsyncSession, channel: Channel, user_id: str) -> None:
    if not await is_channel_member(session, channel.id, user_id):
        raise forbidden("Join the channel first")


async def publish_to_channel(
    ctx: ServerContext,
    session: AsyncSession,
    channel_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    exclude_user: str | None = None,
    exclude_connection: str | None = None,
) -> None:
    """Hand the event to the real-time layer; the change is committed whatever happens here."""
    try:
        member_ids = await channel_member_ids(session, channel_id)
        await ctx.events.publish(
            member_ids,
            event_type,
            data,
            exclude_user=exclude_user,
            exclude_connection=exclude_connection,
        )
    except Exception:
        logger.exception("%s for channel %s was stored but not delivered", event_type, channel_id)


# --- routes --------------------------------------------------------------------------------


@router.get("")
async def list_messages(
    channel: VisibleChannel, session: Session, page: Pagination, before: Text | None = None
) -> dict[str, Any]:
    """Top-level messages, newest first; `before` pages further back from a message."""
    conditions = [
        Message.channel_id == channel.id,
        Message.thread_id.is_(None),
        Message.deleted_at.is_(None),
    ]
    if before is not None:
        # A deleted cursor still works: the client may hold a message removed since.
        cursor = await find_message(session, channel, before, include_deleted=True)
        if cursor is None:
            raise not_found("before: message not found in this channel")
        conditions.append(
            or_(
                Message.created_at < cursor.created_at,
                and_(Message.created_at == cursor.created_at, Message.id < cursor.id),
            )
        )
    total = await session.scalar(select(func.count()).select_from(Message).where(*conditions))
    rows = await session.scalars(
        select(Message)
        .where(*conditions)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .offset(page.offset)
        .limit(page.per_page)
    )
    return paginated(await messages_out(session, list(rows)), total or 0, page)


@router.post("", status_code=201, responses=READ_ONLY)
async def post_message(
    body: MessageIn,
    request: Request,
    ctx: Context,
    channel: VisibleChannel,
    member: Membership,
    session: Session,
) -> dict[str, Any]:
    await require_channel_member(session, channel, member.user_id)
    refuse_archived(channel)
    if not body.content.strip() and not body.attachment_ids:
        raise validation(f"content: must not be {'empty' if not body.content else 'blank'}")
    thread = await _related(session, channel, body.thread_id, "thread_id")
    if thread is not None and thread.thread_id is not None:
        raise validation("thread_id: must be a top-level message, not a thread reply")
    referenced = await _related(
        session, channel, body.referenced_message_id, "referenced_message_id"
    )
    now = utcnow()
    message = Message(
        tenant_id=channel.tenant_id,
        channel_id=channel.id,
        author_id=member.user_id,
        content=body.content,
        message_type="reply" if thread or referenced else "default",
        thread_id=thread.id if thread else None,
        referenced_message_id=referenced.id if referenced else None,
        nonce=body.nonce,
        created_at=now,
        updated_at=now,
    )
    session.add(message)
    await session.flush()
    await _attach(session, channel, message, body.attachment_ids)
    if thread is not None:
        # Who replies follows the thread, and whoever started it does from its first
        # reply (one who stops following is not made to follow again by others' replies).
        first = thread.reply_count == 0
        await threads.reply_posted(session, thread, message)
        starter = [thread.author_id] if first else []
        await threads.follow(session, thread.id, [member.user_id, *starter])
    await session.flush()
    notes = await notifications.create_for(ctx, session, channel, message)
    await session.commit()
    # A new message has no reactions yet; its files are read only when it was given some.
    files = await attachments_of(session, [message.id]) if body.attachment_ids else {}
    out = message_out(message, None, files.get(message.id))
    await publish_to_channel(
        ctx,
        session,
        channel.id,
        "message:create",
        out,
        exclude_user=member.user_id,
        exclude_connection=request.headers.get(CONNECTION_HEADER),
    )
    if thread is not None:
        await _thread_changed(ctx, session, thread)
        await _tell_followers(ctx, session, thread, out)
    await notifications.tell_new(ctx, session, notes)
    try:
        await ctx.events.message_posted(channel.id, member.user_id)
    except Exception:
        logger.exception("ending the typing indicator in channel %s failed", channel.id)
    return out


async def _attach(
    session: AsyncSession, channel: Channel, message: Message, file_ids: list[str]
) -> None:
    """Give the author's unattached uploads in this channel to the message; one conditional
    UPDATE, so a file goes to one message even when two name it at once."""
    wanted = set(file_ids)
    if not wanted:
        return
    attached = await session.execute(
        update(StoredFile)
        .where(
            StoredFile.id.in_(wanted),
            StoredFile.channel_id == channel.id,
            StoredFile.uploader_id == message.author_id,
            StoredFile.message_id.is_(None),
        )
        .values(message_id=message.id)
    )
    if attached.rowcount != len(wanted):  # type: ignore[attr-defined]
        await session.rollback()
        raise validation(
            "attachment_ids: each must be a file you uploaded to this channel and not yet attached"
        )


async def _related(
    session: AsyncSession, channel: Channel, mid: str | None, field: str
) -> Message | None:
    """The message a new one replies to; it must be live and in the same channel."""
    if mid is None:
        return None
    message = await find_message(session, channel, mid)
    if message is None:
        raise validation(f"{field}: no such message in this channel")
    return message


@router.put("/{mid}", responses=READ_ONLY)
async def edit_message(
    mid: str,
    body: MessageEdit,
    ctx: Context,
    channel: VisibleChannel,
    member: Membership,
    session: Session,
) -> dict[str, Any]:
    message = await live_message(session, channel, mid)
    if message.author_id != member.user_id:
        raise forbidden("Only the author may edit a message")
    await require_channel_member(session, channel, member.user_id)
    refuse_archived(channel)
    message.content = body.content
    message.is_edited = True
    message.updated_at = utcnow()
    await session.commit()
    out = (await messages_out(session, [message]))[0]
    await publish_to_channel(ctx, session, channel.id, "message:update", out)
    return out


@router.delete("/{mid}", responses=READ_ONLY)
async def delete_message(
    mid: str, ctx: Context, channel: VisibleChannel, member: Membership, session: Session
) -> dict[str, bool]:
    message = await live_message(session, channel, mid)
    if message.author_id != member.user_id and not is_tenant_admin(member):
        raise forbidden("Only the author or a tenant owner/admin may delete a message")
    refuse_archived(channel)
    message.deleted_at = utcnow()
    if message.thread_id is not None:
        await session.flush()
        await threads.reply_removed(session, message.thread_id)
    stored_keys = await detach_message_files(session, message.id)
    await session.commit()
    await remove_objects(ctx.storage, stored_keys)
    event = {"message_id": message.id, "channel_id": channel.id, "thread_id": message.thread_id}
    await publish_to_channel(ctx, session, channel.id, "message:delete", event)
    if message.thread_id is not None:
        root = await find_message(session, channel, message.thread_id, include_deleted=True)
        if root is not None:
            await _thread_changed(ctx, session, root)
    return {"deleted": True}


async def _thread_changed(ctx: ServerContext, session: AsyncSession, root: Message) -> None:
    """`message:thread`: the root's reply count and last reply time, to the channel."""
    await session.refresh(root, ["reply_count", "last_reply_at"])
    event = {
        "message_id": root.id,
        "channel_id": root.channel_id,
        "reply_count": root.reply_count,
        "last_reply_at": iso(root.last_reply_at),
    }
    await publish_to_channel(ctx, session, root.channel_id, "message:thread", event)


async def _tell_followers(
    ctx: ServerContext, session: AsyncSession, root: Message, reply: dict[str, Any]
) -> None:
    """`thread:reply` to the thread's followers in the channel, except its author."""
    try:
        followers = await threads.followers_in_channel(session, root)
        event = {"thread_id": root.id, "channel_id": root.channel_id, "message": reply}
        await ctx.events.publish(followers, "thread:reply", event, exclude_user=reply["author_id"])
    except Exception:
        logger.exception("thread:reply for thread %s was stored but not delivered", root.id)


@router.get("/{mid}/thread")
async def list_thread(mid: str, channel: VisibleChannel, session: Session) -> list[dict[str, Any]]:
    """The replies in a thread, oldest first."""
    root = await live_message(session, channel, mid)
    rows = await session.scalars(
        select(Message)
        .where(
            Message.channel_id == channel.id,
            Message.thread_id == root.id,
            Message.deleted_at.is_(None),
        )
        .order_by(Message.created_at, Message.id)
    )
    return await messages_out(session, list(rows))


@router.get("/{mid}/follow")
async def get_following(
    mid: str, channel: VisibleChannel, member: Membership, session: Session
) -> dict[str, Any]:
    """Whether the caller follows the thread of top-level message `mid`."""
    root = await _thread_root(session, channel, mid)
    following = await threads.is_following(session, root.id, member.user_id)
    return {"thread_id": root.id, "following": following}


@router.put("/{mid}/follow")
async def follow_thread(
    mid: str, channel: VisibleChannel, member: Membership, session: Session
) -> dict[str, Any]:
    """Follow a thread: `thread:reply` for each new reply by someone else."""
    root = await _thread_root(session, channel, mid)
    await require_channel_member(session, channel, member.user_id)
    await threads.follow(session, root.id, [member.user_id])
    await session.commit()
    return {"thread_id": root.id, "following": True}


@router.delete("/{mid}/follow")
async def unfollow_thread(
    mid: str, channel: VisibleChannel, member: Membership, session: Session
) -> dict[str, Any]:
    root = await _thread_root(session, channel, mid)
    await threads.unfollow(session, root.id, member.user_id)
    await session.commit()
    return {"thread_id": root.id, "following": False}


async def _thread_root(session: AsyncSession, channel: Channel, mid: str) -> Message:
    root = await live_message(session, channel, mid)
    if root.thread_id is not None:
        raise validation("A thread reply has no thread of its own: follow its top-level message")
    return root
