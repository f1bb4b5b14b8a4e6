"""Unread state kept on the server: `PUT .../channel/{cid}/read` moves the caller's read
marker forward, `GET /tenant/{tid}/unread` gives unread and mention counts per channel.

The marker only moves forward (a stale tab reading older messages leaves it). A move
reaches every connection of the reader, on every node, as `channel:read` with the
channel's counts after it, so their other tabs and devices clear the channel too; a
request that moves nothing sends nothing. See `roomler.db.reads` for what counts.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from roomler.api import notifications, notify
from roomler.api.channels import VisibleChannel
from roomler.api.deps import Context, CurrentUser, Membership, Session
from roomler.api.errors import validation
from roomler.api.fields import Text
from roomler.api.messages import live_message, require_channel_member
from roomler.db import notifications as stored_notifications
from roomler.db import reads

router = APIRouter(prefix="/tenant/{tid}", tags=["channels"])


class ReadIn(BaseModel):
    message_id: Text


@router.get("/unread")
async def list_unread(
    member: Membership, user: CurrentUser, session: Session
) -> list[dict[str, Any]]:
    """Each channel of the workspace you are a member of: your marker (`message_id`, null
    before you read any), unread messages by others after it, and how many name you."""
    counts = await reads.unread_counts(session, member.tenant_id, user.id, user.username)
    return [c.out() for c in counts]


@router.put("/channel/{cid}/read")
async def mark_read(
    body: ReadIn,
    ctx: Context,
    channel: VisibleChannel,
    member: Membership,
    user: CurrentUser,
    session: Session,
) -> dict[str, Any]:
    """Read the channel up to top-level message `message_id`; answers the channel's
    marker and counts (what `channel:read` carries)."""
    await require_channel_member(session, channel, user.id)
    message = await live_message(session, channel, body.message_id)
    if message.thread_id is not None:
        raise validation("message_id: a thread reply; a channel is read up to a top-level one")
    moved = await reads.advance(session, channel.id, user.id, message)
    # What the reader has now seen in the channel no longer lights the bell.
    seen = await stored_notifications.mark_read(
        session, member.tenant_id, user.id, channel_up_to=message
    )
    await session.commit()
    [state] = await reads.unread_counts(
        session, member.tenant_id, user.id, user.username, channel.id
    )
    out = {"tenant_id": member.tenant_id, **state.out()}
    if moved:
        await notify.publish(ctx, [user.id], "channel:read", out)
    if seen:
        await notifications.tell_read(ctx, session, member.tenant_id, user.id, seen)
    return out
