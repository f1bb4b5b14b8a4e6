"""In a call: raised hands, and the organizer muting or removing a participant.

Handlers for `media:raise_hand`, `media:lower_hand`, `media:mute_participant`,
`media:remove_participant` and `media:readmit_participant`, registered through
`MediaSignaling.add` (so they answer `media:error` like every `media:*` request, and with
several nodes run on the node hosting the room). `docs/protocol.md` ("In the call") is the
reference.

**Who moderates.** The conference's organizer and the workspace's owners and admins --
the same people who may end it for everyone (`POST .../end`) -- and only from a
connection in the room. Anyone else is answered `media:error`.

**Mute.** The server pauses the user's producers of that kind (every connection of
theirs), so nothing of it is forwarded whatever their browser sends; their connections
hear `media:muted {by_user_id}` and show themselves muted. They may unmute themselves
(`media:producer_resume` of their own producer), as in Zoom or Meet: a mute is a
request to be quiet, not a sanction. Nobody can unmute someone else.

**Remove.** The user's connections leave the room (`media:room_closed {reason:
"removed"}` to them, `media:producer_closed` and `media:peer_left` to the others, as when
access is revoked), their participant record closes, and their `media:join` (and `POST
.../join` on the node hosting the room) is refused for as long as the room lives, until
the organizer readmits them (`media:readmit_participant`, the "re-invite").
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from roomler.conference.attendance import ConferenceRef, announce_count
from roomler.conference.conference_media import ConferenceMedia
from roomler.conference.errors import RoomError
from roomler.conference.queries import close_participation
from roomler.conference.requests import Hand, Moderate
from roomler.conference.rooms import MediaRoom
from roomler.conference.signaling import MediaSignaling
from roomler.db.models import Conference, TenantMember
from roomler.realtime.events import EventPublisher
from roomler.realtime.handler_registry import Request
from roomler.realtime.layer import Realtime
from roomler.realtime.wire import encode

logger = logging.getLogger(__name__)

REMOVED = "removed"
MODERATOR_ROLES = ("owner", "admin")


class InCall:
    def __init__(self, media: ConferenceMedia, publisher: EventPublisher) -> None:
        self.media = media
        self.publisher = publisher

    def register(self, realtime: Realtime, signaling: MediaSignaling) -> None:
        signaling.add(realtime, "media:raise_hand", Hand.parse, self.raise_hand)
        signaling.add(realtime, "media:lower_hand", Hand.parse, self.lower_hand)
        signaling.add(realtime, "media:mute_participant", Moderate.parse, self.mute)
        signaling.add(realtime, "media:remove_participant", Moderate.parse, self.remove)
        signaling.add(realtime, "media:readmit_participant", Moderate.parse, self.readmit)

    # --- hands ---------------------------------------------------------------------------------

    async def raise_hand(self, request: Request, message: Hand) -> None:
        room = self._room_of(request, message.conference_id)
        if message.user_id not in (None, request.user_id):
            raise RoomError("only your own hand can be raised")
        room.hands[request.user_id] = None
        await self._hand(request, room, request.user_id, raised=True)

    async def lower_hand(self, request: Request, message: Hand) -> None:
        room = self._room_of(request, message.conference_id)
        user_id = message.user_id or request.user_id
        if user_id != request.user_id:
            await self._check_moderator(request, message.conference_id, "lower someone's hand")
        room.hands.pop(user_id, None)
        await self._hand(request, room, user_id, raised=False)

    async def _hand(self, request: Request, room: MediaRoom, user_id: str, *, raised: bool) -> None:
        data = {"conference_id": room.conference_id, "user_id": user_id, "raised": raised}
        request.reply("media:hand_raised", data)
        await self.media.notices.publish(
            room.user_ids(), "media:hand_raised", data, exclude_connection=request.connection_id
        )

    # --- moderation ----------------------------------------------------------------------------

    async def mute(self, request: Request, message: Moderate) -> None:
        room = self._room_of(request, message.conference_id)
        await self._check_moderator(request, message.conference_id, "mute others")
        targets = room.connections_of(message.user_id)
        if not targets:
            raise RoomError(f"user {message.user_id} is not in conference {message.conference_id}")
        paused: list[str] = []
        for participant in targets:
            mine: list[str] = []
            for producer in list(participant.producers.values()):
                if producer.kind == message.kind and not producer.closed and not producer.paused:
                    await producer.pause()
                    mine.append(producer.id)
            notice = {
                "conference_id": message.conference_id,
                "kind": message.kind,
                "producer_ids": mine,
                "by_user_id": request.user_id,
            }
            await self.media.dispatcher.send_to_connection(
                participant.connection_id, encode("media:muted", notice)
            )
            paused += mine
        logger.info(
            "user %s muted the %s of user %s in conference %s",
            request.user_id,
            message.kind,
            message.user_id,
            message.conference_id,
        )
        request.reply(
            "media:participant_muted",
            {
                "conference_id": message.conference_id,
                "user_id": message.user_id,
                "kind": message.kind,
                "producer_ids": paused,
            },
        )
        for producer_id in paused:
            data = {"producer_id": producer_id, "user_id": message.user_id}
            await self.media.notices.publish(room.user_ids(), "media:producer_paused", data)

    async def remove(self, request: Request, message: Moderate) -> None:
        room = self._room_of(request, message.conference_id)
        await self._check_moderator(request, message.conference_id, "remove participants")
        if message.user_id == request.user_id:
            raise RoomError("you cannot remove yourself; send media:leave")
        if message.user_id not in room.present_user_ids():
            raise RoomError(f"user {message.user_id} is not in conference {message.conference_id}")
        room.removed.add(message.user_id)
        departures = await self.media.revoke_here(message.conference_id, message.user_id, REMOVED)
        if not departures and room.user_ids():  # only a lost connection in its grace period
            data = {"user_id": message.user_id, "conference_id": message.conference_id}
            await self.media.notices.publish(room.user_ids(), "media:peer_left", data)
        async with self.media.sessions() as session:
            conference = await session.get(Conference, message.conference_id)
            ref = ConferenceRef.of(conference) if conference is not None else None
            await close_participation(session, message.conference_id, message.user_id)
            await session.commit()
            if ref is not None:
                await announce_count(self.publisher, session, ref)
        logger.info(
            "user %s removed user %s from conference %s",
            request.user_id,
            message.user_id,
            message.conference_id,
        )
        request.reply(
            "media:participant_removed",
            {"conference_id": message.conference_id, "user_id": message.user_id},
        )

    async def readmit(self, request: Request, message: Moderate) -> None:
        room = self._room_of(request, message.conference_id)
        await self._check_moderator(request, message.conference_id, "readmit participants")
        room.removed.discard(message.user_id)
        request.reply(
            "media:participant_readmitted",
            {"conference_id": message.conference_id, "user_id": message.user_id},
        )

    # --- helpers -------------------------------------------------------------------------------

    def _room_of(self, request: Request, conference_id: str) -> MediaRoom:
        """The room, if the requesting connection takes part in it."""
        self.media.participant(conference_id, request.connection_id)
        room = self.media.room(conference_id)
        if room is None:  # pragma: no cover - participant() found it
            raise RoomError(f"conference {conference_id} is not running")
        return room

    async def _check_moderator(self, request: Request, conference_id: str, action: str) -> None:
        if not await self.is_moderator(conference_id, request.user_id):
            raise RoomError(
                f"only the organizer or a workspace owner/admin may {action} in this call"
            )

    async def is_moderator(self, conference_id: str, user_id: str) -> bool:
        """The conference's organizer, or an owner/admin of its workspace."""
        async with self.media.sessions() as session:
            conference = await session.get(Conference, conference_id)
            if conference is None:
                return False
            if conference.organizer_id == user_id:
                return True
            role = await session.scalar(
                select(TenantMember.role).where(
                    TenantMember.tenant_id == conference.tenant_id,
                    TenantMember.user_id == user_id,
                )
            )
        return role in MODERATOR_ROLES
