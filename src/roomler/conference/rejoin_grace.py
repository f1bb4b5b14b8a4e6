"""The rejoin grace period: a participant whose WebSocket dropped stays "reconnecting".

Its media goes at once (the transports died with the connection), but the others hear
`media:peer_left` only when no rejoin has taken its place within
`ROOMLER__CONFERENCE__REJOIN_GRACE_SECS`: a network change or a page reload then looks
like a short freeze, not a leave and a join (docs/protocol.md, Reconnecting).
"""

from __future__ import annotations

import asyncio

from roomler.conference.room_notices import RoomNotices
from roomler.conference.rooms import Departure, MediaRoom, Reconnecting
from roomler.tasks import BackgroundTasks


class RejoinGrace:
    def __init__(self, notices: RoomNotices, tasks: BackgroundTasks, grace_secs: float) -> None:
        self.notices = notices
        self.tasks = tasks
        self.grace_secs = grace_secs
        # Lost connections waiting for a rejoin: connection id -> the timer that ends it.
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def hold(self, room: MediaRoom, departure: Departure) -> None:
        """Keep the departed connection's place in the room for the grace period."""
        loop = asyncio.get_running_loop()
        connection_id = departure.connection_id
        room.reconnecting[connection_id] = Reconnecting(
            departure.user_id,
            connection_id,
            departure.participant.display_name,
            loop.time() + self.grace_secs,
        )
        self._timers[connection_id] = loop.call_later(
            self.grace_secs, self._over, room, connection_id
        )

    def take(self, room: MediaRoom, connection_id: str, user_id: str) -> bool:
        """A rejoin by `user_id` takes the place `connection_id` held; False if none."""
        absent = room.reconnecting.get(connection_id)
        if absent is None or absent.user_id != user_id:
            return False
        del room.reconnecting[connection_id]
        self._cancel(connection_id)
        return True

    def forget_user(self, room: MediaRoom | None, user_id: str) -> bool:
        """Drop the user's lost connections still in their grace period; True if any."""
        if room is None:
            return False
        lost = [c for c, absent in room.reconnecting.items() if absent.user_id == user_id]
        for connection_id in lost:
            del room.reconnecting[connection_id]
            self._cancel(connection_id)
        room.forget_hands_of_absent()
        return bool(lost)

    def cancel_all(self) -> None:
        """No place is held any more (the server is shutting down)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _cancel(self, connection_id: str) -> None:
        timer = self._timers.pop(connection_id, None)
        if timer is not None:
            timer.cancel()

    def _over(self, room: MediaRoom, connection_id: str) -> None:
        self._timers.pop(connection_id, None)
        absent = room.reconnecting.pop(connection_id, None)
        if absent is None or room.closed:
            return
        room.forget_hands_of_absent()
        data = {
            "user_id": absent.user_id,
            "conference_id": room.conference_id,
            "connection_id": connection_id,
        }
        self.tasks.spawn(self.notices.publish(room.user_ids(), "media:peer_left", data))
