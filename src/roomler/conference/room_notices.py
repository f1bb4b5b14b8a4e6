"""What a room's users are told when people leave it or it closes (docs/protocol.md):

- `media:producer_closed` for each producer a departed participant had, then
  `media:peer_left` (with the `connection_id` when one connection left; without it, all
  of the user's connections did), to the users still in the room (user-level);
- `media:room_closed {conference_id, reason}` to participant connections when the room
  goes away or they lose it.

`ConferenceMedia`, the rejoin grace (conference/rejoin_grace.py) and the worker-loss
path (conference/worker_loss.py) share this one object, so a departure is announced the
same way whatever caused it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from roomler.conference.rooms import Departure, MediaRoom, RoomManager
from roomler.realtime.dispatcher import Dispatcher
from roomler.realtime.wire import encode

ROOM_CLOSED = "media:room_closed"


class RoomNotices:
    def __init__(self, rooms: RoomManager, dispatcher: Dispatcher) -> None:
        self.rooms = rooms
        self.dispatcher = dispatcher

    async def publish(
        self,
        user_ids: Iterable[str],
        event_type: str,
        data: dict[str, Any],
        *,
        exclude_connection: str | None = None,
    ) -> None:
        """User-level delivery to `user_ids`, skipping one connection (the actor's)."""
        await self.dispatcher.broadcast(
            user_ids, encode(event_type, data), exclude_connection=exclude_connection
        )

    async def room_closed(
        self, conference_id: str, connection_ids: Iterable[str], reason: str
    ) -> None:
        """`media:room_closed {reason}` to each of `connection_ids` (connection-level)."""
        frame = encode(ROOM_CLOSED, {"conference_id": conference_id, "reason": reason})
        for connection_id in connection_ids:
            await self.dispatcher.send_to_connection(connection_id, frame)

    async def room_gone(self, rooms: Iterable[MediaRoom], reason: str) -> None:
        """Every participant connection of each room hears it closed."""
        for room in rooms:
            await self.room_closed(room.conference_id, room.connection_ids(), reason)

    async def departures(
        self,
        conference_id: str,
        departures: Iterable[Departure],
        *,
        exclude_connection: str | None = None,
    ) -> None:
        """The users still in the room hear of the departed's producers, then of them."""
        departures = list(departures)
        room = self.rooms.get_room(conference_id)
        if room is not None:
            room.forget_hands_of_absent()
        remaining = await self.producers_closed(
            conference_id, departures, exclude_connection=exclude_connection
        )
        if not remaining:
            return
        # user id -> the connections of theirs that left, in order of departure
        left: dict[str, list[str]] = {}
        for departure in departures:
            left.setdefault(departure.user_id, []).append(departure.connection_id)
        for user_id, connection_ids in left.items():
            data = {"user_id": user_id, "conference_id": conference_id}
            if len(connection_ids) == 1:
                data["connection_id"] = connection_ids[0]
            await self.publish(
                remaining, "media:peer_left", data, exclude_connection=exclude_connection
            )

    async def producers_closed(
        self,
        conference_id: str,
        departures: Iterable[Departure],
        *,
        exclude_connection: str | None = None,
    ) -> set[str]:
        """`media:producer_closed` for each producer the departed had; returns the users
        still in the room, who were told."""
        room = self.rooms.get_room(conference_id)
        remaining = room.user_ids() if room is not None else set()
        if not remaining:
            return remaining
        for departure in departures:
            for producer_id in departure.producer_ids:
                await self.publish(
                    remaining,
                    "media:producer_closed",
                    {"producer_id": producer_id, "user_id": departure.user_id},
                    exclude_connection=exclude_connection,
                )
        return remaining
