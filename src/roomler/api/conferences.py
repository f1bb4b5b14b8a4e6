"""`/api/tenant/{tid}/conference`: creating, starting, joining, leaving and ending meetings.

The REST side keeps the records (the conference, who attended) and starts or ends the
media room; the media itself is negotiated over the WebSocket (`media:*`,
`roomler.conference.signaling`). A conference announced in a private channel is
invisible (404) to tenant members outside that channel, like the channel itself.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api.channels import READ_ONLY, refuse_archived, visible_channel
from roomler.api.deps import Context, Membership, Session, is_tenant_admin
from roomler.api.errors import ApiError, conflict, forbidden, not_found
from roomler.api.fields import Text
from roomler.api.files import STORED_FILE_HEADERS, content_disposition, streamed
from roomler.api.pagination import Pagination, paginated
from roomler.api.serialize import iso
from roomler.conference.attendance import ConferenceRef, announce_count
from roomler.conference.errors import ConferenceEnded, MediaUnavailable
from roomler.conference.queries import (
    IN_PROGRESS,
    close_participation,
    new_meeting_code,
    open_participation,
    participant_counts,
    tenant_conference,
    visible_to,
)
from roomler.conference.recording import NotRecording, recording_out
from roomler.context import ServerContext
from roomler.db.models import Channel, Conference, ConferenceParticipant, Recording, User
from roomler.db.queries import channel_member_ids

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/tenant/{tid}/conference", tags=["conferences"])

# How many times a freshly drawn meeting code may collide before we give up.
MEETING_CODE_ATTEMPTS = 5


def _not_blank(subject: str) -> str:
    if not subject.strip():
        raise ValueError("must not be blank")
    return subject.strip()


Subject = Annotated[Text, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]


class ConferenceIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "required": ["conference_type"],
                "properties": {"conference_type": {"const": "scheduled"}},
            },
            "then": {
                "required": ["scheduled_at"],
                "properties": {"scheduled_at": {"type": "string"}},
            },
        }
    )

    subject: Subject
    conference_type: Literal["instant", "scheduled"] = "instant"
    channel_id: Text | None = None
    scheduled_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _scheduled_needs_time(self) -> ConferenceIn:
        if self.conference_type == "scheduled" and self.scheduled_at is None:
            raise ValueError("scheduled_at is required when conference_type is 'scheduled'")
        return self


def join_url(ctx: ServerContext, conference: Conference) -> str:
    base = ctx.settings.app.public_url.rstrip("/")
    return f"{base}/tenant/{conference.tenant_id}/conference/{conference.id}"


def conference_out(ctx: ServerContext, conference: Conference, present: int) -> dict[str, Any]:
    return {
        "id": conference.id,
        "tenant_id": conference.tenant_id,
        "subject": conference.subject,
        "status": conference.status,
        "conference_type": conference.conference_type,
        "meeting_code": conference.meeting_code,
        "join_url": join_url(ctx, conference),
        "organizer_id": conference.organizer_id,
        "channel_id": conference.channel_id,
        "participant_count": present,
        "scheduled_at": iso(conference.scheduled_at),
        "started_at": iso(conference.started_at),
        "ended_at": iso(conference.ended_at),
        "created_at": iso(conference.created_at),
    }


def participant_out(record: ConferenceParticipant, user: User) -> dict[str, Any]:
    return {
        "id": record.id,
        "user_id": record.user_id,
        "display_name": user.display_name,
        "joined_at": iso(record.joined_at),
        "left_at": iso(record.left_at),
        "is_present": record.is_present,
    }


async def get_conference(conf_id: str, member: Membership, session: Session) -> Conference:
    conference = await tenant_conference(session, member.tenant_id, conf_id, member.user_id)
    if conference is None:
        raise not_found("Conference not found")
    return conference


VisibleConference = Annotated[Conference, Depends(get_conference)]


async def _present_count(session: AsyncSession, conference_id: str) -> int:
    return (await participant_counts(session, [conference_id]))[conference_id]


async def _announce(
    ctx: ServerContext,
    session: AsyncSession,
    conference: Conference,
    event_type: str,
    data: dict[str, Any],
) -> None:
    """`conference:started|ended` to the members of the conference's channel, if it has one."""
    if conference.channel_id is None:
        return
    payload = {
        "conference_id": conference.id,
        "channel_id": conference.channel_id,
        "subject": conference.subject,
        **data,
    }
    try:
        members = await channel_member_ids(session, conference.channel_id)
        await ctx.events.publish(members, event_type, payload)
    except Exception:
        logger.exception("%s for conference %s was not delivered", event_type, conference.id)


# --- routes --------------------------------------------------------------------------------


@router.post("", status_code=201, responses=READ_ONLY)
async def create_conference(
    body: ConferenceIn, ctx: Context, member: Membership, session: Session
) -> dict[str, Any]:
    channel_id = None
    if body.channel_id is not None:
        channel = await visible_channel(session, member, body.channel_id)
        refuse_archived(channel)
        channel_id = channel.id
    for _attempt in range(MEETING_CODE_ATTEMPTS):
        conference = Conference(
            tenant_id=member.tenant_id,
            channel_id=channel_id,
            subject=body.subject,
            conference_type=body.conference_type,
            status="scheduled",
            meeting_code=new_meeting_code(),
            organizer_id=member.user_id,
            scheduled_at=body.scheduled_at,
        )
        session.add(conference)
        try:
            await session.commit()
        except IntegrityError:  # the meeting code is taken: draw another
            await session.rollback()
            continue
        return conference_out(ctx, conference, 0)
    raise conflict("Could not allocate a free meeting code; try again")


@router.get("")
async def list_conferences(
    ctx: Context, member: Membership, session: Session, page: Pagination
) -> dict[str, Any]:
    """The tenant's conferences the caller may see, newest first."""
    conditions = [Conference.tenant_id == member.tenant_id, visible_to(member.user_id)]
    total = await session.scalar(select(func.count()).select_from(Conference).where(*conditions))
    rows = (
        await session.scalars(
            select(Conference)
            .where(*conditions)
            .order_by(Conference.created_at.desc(), Conference.id.desc())
            .offset(page.offset)
            .limit(page.per_page)
        )
    ).all()
    counts = await participant_counts(session, [c.id for c in rows])
    items = [conference_out(ctx, c, counts[c.id]) for c in rows]
    return paginated(items, total or 0, page)


def normalize_meeting_code(code: str) -> str | None:
    """`ddd-ddd-ddd` from what someone typed (spaces and dashes anywhere); None if not
    nine digits."""
    digits = "".join(ch for ch in code if ch not in " -")
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        return None
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


@router.get("/code/{code}")
async def conference_by_code(
    ctx: Context, code: str, member: Membership, session: Session
) -> dict[str, Any]:
    """The tenant's conference with this meeting code, if the caller may see it (join by
    code); any status, so the app can say that a meeting has ended."""
    normalized = normalize_meeting_code(code)
    if normalized is None:
        raise not_found("A meeting code is nine digits, like 123-456-789")
    conference = await session.scalar(
        select(Conference).where(
            Conference.meeting_code == normalized,
            Conference.tenant_id == member.tenant_id,
            visible_to(member.user_id),
        )
    )
    if conference is None:
        raise not_found(f"No meeting in this workspace has the code {normalized}")
    return conference_out(ctx, conference, await _present_count(session, conference.id))


@router.get("/{conf_id}")
async def get_conference_route(
    ctx: Context, conference: VisibleConference, session: Session
) -> dict[str, Any]:
    return conference_out(ctx, conference, await _present_count(session, conference.id))


@router.post("/{conf_id}/start", responses=READ_ONLY)
async def start_conference(
    ctx: Context, conference: VisibleConference, member: Membership, session: Session
) -> dict[str, Any]:
    """Place the room's router on a worker; a started conference answers the same. A call
    that runs when its channel is archived goes on; no new one starts there (409)."""
    if conference.channel_id is not None and conference.status != IN_PROGRESS:
        channel = await session.get(Channel, conference.channel_id)
        if channel is not None:
            refuse_archived(channel)
    try:
        started = await ctx.media.start_conference(conference.id)
    except ConferenceEnded:
        raise conflict("The conference has ended") from None
    except MediaUnavailable as exc:
        raise ApiError(503, _sentence(str(exc))) from None
    if started.newly_started:
        await _announce(
            ctx, session, conference, "conference:started", {"started_by": member.user_id}
        )
    return {"started": True, "rtp_capabilities": started.rtp_capabilities}


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


@router.post("/{conf_id}/join")
async def join_conference(
    ctx: Context, conference: VisibleConference, member: Membership, session: Session
) -> dict[str, Any]:
    if conference.status != IN_PROGRESS:
        raise conflict(f"The conference is {conference.status.replace('_', ' ')}, not in progress")
    room = ctx.media.room(conference.id)  # known on the node hosting the room
    if room is not None and member.user_id in room.removed:
        raise forbidden("You were removed from this call by its organizer")
    ref = ConferenceRef.of(conference)  # the commit below expires `conference`
    record = await open_participation(session, conference.id, member.user_id)
    await announce_count(ctx.events, session, ref)
    return {"participant_id": record.id, "joined": True}


@router.post("/{conf_id}/leave")
async def leave_conference(
    ctx: Context, conference: VisibleConference, member: Membership, session: Session
) -> dict[str, bool]:
    """Close the caller's record and every media connection they have in the room."""
    ref = ConferenceRef.of(conference)  # the commit below expires `conference`
    await close_participation(session, conference.id, member.user_id)
    await session.commit()
    await ctx.media.leave_user(ref.id, member.user_id)
    await announce_count(ctx.events, session, ref)
    return {"left": True}


@router.post("/{conf_id}/end")
async def end_conference(
    ctx: Context, conference: VisibleConference, member: Membership, session: Session
) -> dict[str, bool]:
    _check_moderator(conference, member, "end a conference")
    if not await ctx.media.end_conference(conference.id):
        return {"ended": True}  # it had ended already
    await _announce(ctx, session, conference, "conference:ended", {"ended_by": member.user_id})
    return {"ended": True}


@router.get("/{conf_id}/participant")
async def list_participants(
    conference: VisibleConference, session: Session
) -> list[dict[str, Any]]:
    """Every participant record, earliest first; a user who re-joined has several."""
    rows = await session.execute(
        select(ConferenceParticipant, User)
        .join(User, User.id == ConferenceParticipant.user_id)
        .where(ConferenceParticipant.conference_id == conference.id)
        .order_by(ConferenceParticipant.joined_at, ConferenceParticipant.id)
    )
    return [participant_out(record, user) for record, user in rows.tuples()]


# --- recording (conference/recording.py) -----------------------------------------------------


def _check_moderator(conference: Conference, member: Membership, action: str) -> None:
    if conference.organizer_id != member.user_id and not is_tenant_admin(member):
        raise forbidden(f"Only the organizer or a tenant owner/admin may {action}")


@router.post("/{conf_id}/recording/start")
async def start_recording(
    ctx: Context, conference: VisibleConference, member: Membership
) -> dict[str, Any]:
    """Record every producer of the running call, each into a WebM file of its own."""
    _check_moderator(conference, member, "record a conference")
    try:
        run = await ctx.recordings.start(conference.id, member.user_id)
    except NotRecording as exc:
        raise conflict(_sentence(str(exc))) from None
    return {"recording": True, "run_id": run.run_id, "started_by": run.started_by}


@router.post("/{conf_id}/recording/stop")
async def stop_recording(
    ctx: Context, conference: VisibleConference, member: Membership
) -> dict[str, Any]:
    """Stop recording; answers the files made, stored and listed on the conference."""
    _check_moderator(conference, member, "stop a recording")
    try:
        saved = await ctx.recordings.stop(conference.id, member.user_id)
    except NotRecording as exc:
        raise conflict(_sentence(str(exc))) from None
    return {"recording": False, "recordings": [recording_out(r) for r in saved]}


@router.get("/{conf_id}/recording")
async def list_recordings(
    ctx: Context, conference: VisibleConference, session: Session
) -> dict[str, Any]:
    """Whether the call is being recorded now, and its stored recordings, oldest first."""
    rows = await session.scalars(
        select(Recording)
        .where(Recording.conference_id == conference.id)
        .order_by(Recording.created_at, Recording.id)
    )
    run = ctx.recordings.recording(conference.id)
    return {
        "recording": run is not None,
        "started_by": run.started_by if run is not None else None,
        "recordings": [recording_out(r) for r in rows],
    }


@router.get(
    "/{conf_id}/recording/{rid}",
    response_class=StreamingResponse,
    responses={200: {"content": {"video/webm": {}, "audio/webm": {}}}},
)
async def download_recording(
    rid: str, ctx: Context, conference: VisibleConference, session: Session
) -> StreamingResponse:
    """The WebM file, as a download, to whoever can see the conference."""
    recording = await session.get(Recording, rid)
    if recording is None or recording.conference_id != conference.id:
        raise not_found("Recording not found")
    name = f"{conference.subject}-{recording.kind}-{recording.id}.webm"
    headers = STORED_FILE_HEADERS | {
        "Content-Length": str(recording.size),
        "Content-Disposition": content_disposition("attachment", name),
    }
    return await streamed(ctx.storage, recording.id, recording.content_type, headers)
