"""Who is speaking: a room's audio levels (`sfu/engine/audio_level.py`, mediasoup's
AudioLevelObserver / ActiveSpeakerObserver semantics) relayed to its users as
`media:active_speaker` and `media:audio_levels` (`docs/protocol.md`, Who is speaking).

`ConferenceMedia` asks `listen` for every router it places for a room (a room spread over
several workers has several, each reporting its own producers); a joiner is told the
current speaker by `tell_active_speaker`.
"""

from __future__ import annotations

import logging
from typing import Any

from roomler.conference.errors import SFU_ERRORS
from roomler.conference.rooms import MediaRoom, ParticipantMedia, RoomManager
from roomler.realtime.dispatcher import Dispatcher
from roomler.realtime.wire import encode
from roomler.sfu import Router

logger = logging.getLogger(__name__)

# Levels every 400 ms, above -70 dBov; a new dominant speaker after being the loudest for
# 2 intervals (0.8 s), so the large tile does not flap.
SPEAKER_INTERVAL_MS = 400
SPEAKER_THRESHOLD_DBOV = -70.0
SPEAKER_SWITCH_INTERVALS = 2


class SpeakerNotices:
    def __init__(self, rooms: RoomManager, dispatcher: Dispatcher) -> None:
        self.rooms = rooms
        self.dispatcher = dispatcher

    async def listen(self, conference_id: str, router: Router) -> None:
        """Relay the router's audio levels (sfu/engine/audio_level.py) to the room:
        `media:active_speaker` when the dominant speaker changes, `media:audio_levels`
        every interval while someone speaks (and once, empty, when all went quiet)."""
        router.on("dominantspeaker", lambda data: self._speaker_changed(conference_id, data))
        router.on("audiolevels", lambda data: self._levels(conference_id, data["volumes"]))
        router.on("silence", lambda _data: self._levels(conference_id, []))
        try:
            await router.enable_audio_levels(
                interval_ms=SPEAKER_INTERVAL_MS,
                threshold=SPEAKER_THRESHOLD_DBOV,
                switch_intervals=SPEAKER_SWITCH_INTERVALS,
            )
        except SFU_ERRORS as exc:  # the call works without it
            logger.warning("no audio levels for conference %s: %s", conference_id, exc)

    def _owner_of(self, room: MediaRoom, producer_id: str) -> ParticipantMedia | None:
        for participant in room.participants.values():
            if producer_id in participant.producers:
                return participant
        return None

    async def _speaker_changed(self, conference_id: str, data: dict[str, Any]) -> None:
        room = self.rooms.get_room(conference_id)
        owner = self._owner_of(room, data["producer_id"]) if room is not None else None
        if room is None or owner is None:
            return
        current = room.active_speaker
        if current is not None and current["producer_id"] == data["producer_id"]:
            return  # another router of the room saw the same speaker
        speaker = {
            "conference_id": conference_id,
            "user_id": owner.user_id,
            "connection_id": owner.connection_id,
            "producer_id": data["producer_id"],
        }
        room.active_speaker = speaker
        await self.dispatcher.broadcast(room.user_ids(), encode("media:active_speaker", speaker))

    async def tell_active_speaker(self, room: MediaRoom, connection_id: str) -> None:
        """A joiner hears who is speaking now (the others heard it when it changed)."""
        if room.active_speaker is not None:
            frame = encode("media:active_speaker", room.active_speaker)
            await self.dispatcher.send_to_connection(connection_id, frame)

    async def _levels(self, conference_id: str, volumes: list[dict[str, Any]]) -> None:
        room = self.rooms.get_room(conference_id)
        if room is None:
            return
        levels = []
        for entry in volumes:
            owner = self._owner_of(room, entry["producer_id"])
            if owner is not None:
                levels.append({"user_id": owner.user_id, **entry})
        data = {"conference_id": conference_id, "levels": levels}
        await self.dispatcher.broadcast(room.user_ids(), encode("media:audio_levels", data))
