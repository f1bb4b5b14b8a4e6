"""`Attendance`: participant records and conferences that stay true when connections die.

A participant record (`conference_participants.is_present`) is opened by `POST .../join`
and closed by `POST .../leave` or the tab's unload beacon. A tab that crashes, a network
that goes away or a server restart sends neither, so every `check_secs` this task compares
the open records with the rooms this process runs:

- a user with an open record and no connection in the conference's room is *absent* from
  the later of: the last check that saw them connected, the record's `joined_at`, and
  this process's start (a restart loses every connection). Absent for
  `rejoin_grace_secs`, the record is closed — the same grace a lost connection gets
  in the room (`ConferenceMedia.connection_lost`) before the others hear `media:peer_left`;
- an in-progress conference with no open record and no connection for `empty_end_secs`
  ends itself, as `POST .../end` would, announced with `conference:ended {ended_by: null}`.

Whenever a record closes here, the members of the conference's channel get
`conference:updated {participant_count}`, so a "Join call (n)" button stays right.

With several nodes, a node checks the conferences it hosts (another node's rooms are not
visible here), and the conferences no live node hosts (their host died or shut down and
nobody joined again yet): one node at a time keeps those (`RoomPlacement.keeps_attendance`),
so their records close and they end when nobody comes back. A conference counts its
absences from when this node started checking it, so one taken over after a host's
restart gives its participants the whole grace period to join again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from roomler.conference.conference_media import ConferenceMedia
from roomler.conference.queries import IN_PROGRESS, participant_counts
from roomler.db.models import Conference, ConferenceParticipant, utcnow
from roomler.db.queries import channel_member_ids
from roomler.realtime.events import EventPublisher

logger = logging.getLogger(__name__)

CONFERENCE_UPDATED = "conference:updated"
CONFERENCE_ENDED = "conference:ended"
# Checks run this often relative to the shorter period, within these bounds (seconds).
CHECKS_PER_PERIOD = 4
MIN_CHECK_SECS = 0.25
MAX_CHECK_SECS = 5.0


@dataclass(frozen=True, slots=True)
class ConferenceRef:
    """What an announcement names, read before a commit expires the ORM object."""

    id: str
    channel_id: str | None
    subject: str

    @classmethod
    def of(cls, conference: Conference) -> ConferenceRef:
        return cls(conference.id, conference.channel_id, conference.subject)


@dataclass(frozen=True, slots=True)
class OpenRecord:
    record_id: str
    conference_id: str
    user_id: str
    joined_at: datetime


async def announce(
    publisher: EventPublisher,
    session: AsyncSession,
    conference: ConferenceRef,
    event_type: str,
    data: dict[str, Any],
) -> None:
    """`event_type {conference_id, channel_id, subject, **data}` to the conference's channel
    members (user-level), if it has a channel. A failure is logged, never raised."""
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
        await publisher.publish(members, event_type, payload)
    except Exception:
        logger.exception("%s for conference %s was not delivered", event_type, conference.id)


async def announce_count(
    publisher: EventPublisher, session: AsyncSession, conference: ConferenceRef
) -> None:
    """`conference:updated {participant_count}` to the channel's members."""
    if conference.channel_id is None:
        return
    count = (await participant_counts(session, [conference.id]))[conference.id]
    await announce(publisher, session, conference, CONFERENCE_UPDATED, {"participant_count": count})


class Attendance:
    def __init__(
        self,
        media: ConferenceMedia,
        sessions: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        *,
        rejoin_grace_secs: float,
        empty_end_secs: float,
    ) -> None:
        self.media = media
        self.sessions = sessions
        self.publisher = publisher
        self.grace = timedelta(seconds=rejoin_grace_secs)
        self.empty_for = timedelta(seconds=empty_end_secs)
        shorter = min(rejoin_grace_secs, empty_end_secs) / CHECKS_PER_PERIOD
        self.check_secs = min(MAX_CHECK_SECS, max(MIN_CHECK_SECS, shorter))
        self._started_at = utcnow()
        # (conference id, user id) -> when a check last saw the user connected.
        self._seen: dict[tuple[str, str], datetime] = {}
        # conference id -> since when it has had nobody in it.
        self._empty_since: dict[str, datetime] = {}
        # conference id -> since when this process checks it (absences count from there).
        self._checked_since: dict[str, datetime] = {}
        self._first_pass = True
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._started_at = utcnow()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.check_secs)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("checking conference attendance failed")

    async def check(self) -> None:
        """One pass: close the records of users gone too long, end conferences empty too long."""
        now = utcnow()
        async with self.sessions() as session:
            running = (
                await session.scalars(select(Conference).where(Conference.status == IN_PROGRESS))
            ).all()
            # Concurrently: with several nodes each asks Redis, in one pipeline.
            checked = await asyncio.gather(*(self._checked_here(c.id) for c in running))
            conferences = {
                conference.id: ConferenceRef.of(conference)
                for conference, here in zip(running, checked, strict=True)
                if here
            }
            # A restart loses every connection: absences count from this process's start.
            since = self._started_at if self._first_pass else now
            self._first_pass = False
            for conference_id in conferences:
                self._checked_since.setdefault(conference_id, since)
            records = await self._open_records(session, conferences)
            closed = await self._close_absent(session, records, now)
            for conference_id in closed:
                await announce_count(self.publisher, session, conferences[conference_id])
            closed_ids = set().union(*closed.values())
            present = {r.conference_id for r in records if r.record_id not in closed_ids}
            for conference in conferences.values():
                await self._maybe_end(session, conference, present, now)
        self._forget_finished(conferences)

    async def _checked_here(self, conference_id: str) -> bool:
        placement = self.media.placement
        if placement is None or self.media.hosts(conference_id):
            return True
        # Nobody hosts it (its node died or shut down): one node keeps its records.
        return await placement.keeps_attendance(conference_id, self.check_secs * 3)

    async def _open_records(
        self, session: AsyncSession, conferences: dict[str, ConferenceRef]
    ) -> list[OpenRecord]:
        if not conferences:
            return []
        rows = await session.execute(
            select(
                ConferenceParticipant.id,
                ConferenceParticipant.conference_id,
                ConferenceParticipant.user_id,
                ConferenceParticipant.joined_at,
            ).where(
                ConferenceParticipant.conference_id.in_(list(conferences)),
                ConferenceParticipant.is_present.is_(True),
            )
        )
        return [OpenRecord(*row) for row in rows.tuples()]

    def _connected_users(self, conference_id: str) -> set[str]:
        room = self.media.room(conference_id)
        return room.user_ids() if room is not None else set()

    async def _close_absent(
        self, session: AsyncSession, records: Iterable[OpenRecord], now: datetime
    ) -> dict[str, set[str]]:
        """Close the records of users absent longer than the grace period.

        Returns conference id -> ids of the records closed (only conferences with some).
        """
        closed: dict[str, set[str]] = {}
        for record in records:
            key = (record.conference_id, record.user_id)
            if record.user_id in self._connected_users(record.conference_id):
                self._seen[key] = now
                continue
            checked_since = self._checked_since.get(record.conference_id, self._started_at)
            last_seen = max(self._seen.get(key, checked_since), _aware(record.joined_at))
            if now - last_seen < self.grace:
                continue
            result = await session.execute(
                update(ConferenceParticipant)
                .where(
                    ConferenceParticipant.id == record.record_id,
                    ConferenceParticipant.is_present.is_(True),
                )
                .values(is_present=False, left_at=now)
            )
            self._seen.pop(key, None)
            if result.rowcount:  # type: ignore[attr-defined]
                closed.setdefault(record.conference_id, set()).add(record.record_id)
                logger.info(
                    "user %s left conference %s (no connection for %s s)",
                    record.user_id,
                    record.conference_id,
                    self.grace.total_seconds(),
                )
        if closed:
            await session.commit()
        return closed

    async def _maybe_end(
        self, session: AsyncSession, conference: ConferenceRef, present: set[str], now: datetime
    ) -> None:
        if conference.id in present or self._connected_users(conference.id):
            self._empty_since.pop(conference.id, None)
            return
        since = self._empty_since.setdefault(conference.id, now)
        if now - since < self.empty_for:
            return
        self._empty_since.pop(conference.id, None)
        if not await self.media.end_conference(conference.id):
            return
        logger.info(
            "conference %s ended: nobody in it for %s s",
            conference.id,
            self.empty_for.total_seconds(),
        )
        await announce(self.publisher, session, conference, CONFERENCE_ENDED, {"ended_by": None})

    def _forget_finished(self, conferences: dict[str, ConferenceRef]) -> None:
        """Drop what we remember of conferences no longer running here."""
        for key in [k for k in self._seen if k[0] not in conferences]:
            del self._seen[key]
        for conference_id in [c for c in self._empty_since if c not in conferences]:
            del self._empty_since[conference_id]
        for conference_id in [c for c in self._checked_since if c not in conferences]:
            del self._checked_since[conference_id]


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)
