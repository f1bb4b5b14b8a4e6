"""A worker process died (or, with rooms over nodes, another node's worker or the node).

The rooms whose only routers were on it close: their participants hear
`media:room_closed {reason: "worker_died"}` and join again, which places a new router. A
room spread over several workers (conference/placement.py) loses only the participants
whose router was on the dead one: they hear `media:room_closed` and the others
`media:producer_closed` and `media:peer_left`, and the call goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from roomler.conference.room_notices import RoomNotices
from roomler.conference.rooms import Departure, MediaRoom, RoomManager
from roomler.sfu import Worker
from roomler.tasks import BackgroundTasks

logger = logging.getLogger(__name__)

ROOM_WORKER_DIED = "worker_died"


class WorkerLoss:
    def __init__(
        self,
        rooms: RoomManager,
        notices: RoomNotices,
        tasks: BackgroundTasks,
        released: Callable[[str], None],
    ) -> None:
        self.rooms = rooms
        self.notices = notices
        self.tasks = tasks
        self.released = released  # the room no longer lives here (its claim goes, with nodes)

    def died(
        self, worker: Worker, reason: str, router_ids: list[str]
    ) -> Coroutine[Any, Any, None] | None:
        """The pool's listener: the rooms are forgotten at once, so no join lands in them;
        returns the announcement still to make, if any."""
        affected = self.rooms.rooms_of_routers(router_ids)
        shrunk = [room for room in affected if _drop_dead_routers(room)]
        rooms = [
            self.rooms.remove_room(room.conference_id) for room in affected if room not in shrunk
        ]
        closed = [room for room in rooms if room is not None]
        if shrunk:
            self.tasks.spawn(self._lose_participants_on_dead_routers(shrunk, reason))
        if not closed:
            return None
        for room in closed:
            self.released(room.conference_id)
        logger.warning(
            "SFU worker %d died (%s): closing conferences %s",
            worker.pid,
            reason,
            ", ".join(room.conference_id for room in closed),
        )
        return self.notices.room_gone(closed, ROOM_WORKER_DIED)

    async def _lose_participants_on_dead_routers(self, rooms: list[MediaRoom], reason: str) -> None:
        for room in rooms:
            lost = [p for p in room.participants.values() if p.router.closed]
            departures: list[Departure] = []
            for participant in lost:
                await self.notices.room_closed(
                    room.conference_id, [participant.connection_id], reason
                )
                departure = await self.rooms.close_participant(
                    room.conference_id, participant.connection_id
                )
                if departure is not None:
                    # Its producers closed with the worker: the others are told of them.
                    closed = departure.producer_ids or list(participant.lost_producers)
                    departures.append(Departure(participant, closed))
            logger.warning(
                "conference %s lost %d participant(s) with a worker (%s); %d go on",
                room.conference_id,
                len(departures),
                reason,
                len(room.participants),
            )
            if departures:
                await self.notices.departures(room.conference_id, departures)


def _drop_dead_routers(room: MediaRoom) -> bool:
    """Forget the room's closed routers; False when none is left (the room goes)."""
    alive = room.live_routers()
    if not alive:
        return False
    room.routers = alive
    room.router = alive[0]
    return True
