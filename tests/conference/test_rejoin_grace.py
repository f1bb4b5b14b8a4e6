"""The rejoin grace period (conference/rejoin_grace.py) on its own, with no SFU: a lost
connection keeps its place until a rejoin takes it or the period ends, and only then do
the others hear `media:peer_left`."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from roomler.conference.rejoin_grace import RejoinGrace
from roomler.conference.rooms import Departure, MediaRoom
from roomler.tasks import BackgroundTasks

pytestmark = pytest.mark.nodb

GRACE_SECS = 0.05


class RecordedNotices:
    def __init__(self) -> None:
        self.published: list[tuple[set[str], str, dict[str, Any]]] = []

    async def publish(self, user_ids: set[str], event_type: str, data: dict[str, Any]) -> None:
        self.published.append((set(user_ids), event_type, data))


def room_with(*present: str) -> MediaRoom:
    room = MediaRoom("conf", router=SimpleNamespace(closed=False))  # type: ignore[arg-type]
    for user_id in present:
        room.participants[f"{user_id}-conn"] = SimpleNamespace(user_id=user_id)  # type: ignore[assignment]
    return room


def departure(user_id: str, connection_id: str) -> Departure:
    participant = SimpleNamespace(
        user_id=user_id, connection_id=connection_id, display_name=user_id.title()
    )
    return Departure(participant, [])  # type: ignore[arg-type]


def grace() -> tuple[RejoinGrace, RecordedNotices]:
    notices = RecordedNotices()
    tasks = BackgroundTasks(logging.getLogger(__name__), "failed")
    return RejoinGrace(notices, tasks, GRACE_SECS), notices  # type: ignore[arg-type]


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_place_not_taken_ends_with_peer_left_to_those_still_there() -> None:
    rejoin, notices = grace()
    room = room_with("bob")
    room.hands["alice"] = None
    rejoin.hold(room, departure("alice", "a1"))
    assert room.reconnecting["a1"].display_name == "Alice"
    assert "alice" in room.present_user_ids()  # the others still list her

    await wait_for(lambda: notices.published)
    assert notices.published == [
        (
            {"bob"},
            "media:peer_left",
            {"user_id": "alice", "conference_id": "conf", "connection_id": "a1"},
        )
    ]
    assert room.reconnecting == {}
    assert "alice" not in room.hands  # her raised hand went with her


async def test_a_rejoin_by_the_same_user_takes_the_place_and_nobody_hears_of_a_leave() -> None:
    rejoin, notices = grace()
    room = room_with("bob")
    rejoin.hold(room, departure("alice", "a1"))
    assert not rejoin.take(room, "a1", "mallory")  # not hers to take
    assert rejoin.take(room, "a1", "alice")
    assert not rejoin.take(room, "a1", "alice")  # taken once

    await asyncio.sleep(GRACE_SECS * 4)  # past the period: the timer was cancelled
    assert notices.published == []
    assert room.reconnecting == {}


async def test_forgetting_a_user_drops_all_their_held_places_silently() -> None:
    rejoin, notices = grace()
    room = room_with("bob")
    rejoin.hold(room, departure("alice", "a1"))
    rejoin.hold(room, departure("alice", "a2"))
    rejoin.hold(room, departure("carol", "c1"))

    assert rejoin.forget_user(room, "alice")
    assert not rejoin.forget_user(room, "alice")
    assert not rejoin.forget_user(None, "carol")  # no room here
    assert set(room.reconnecting) == {"c1"}

    await wait_for(lambda: notices.published)
    await asyncio.sleep(GRACE_SECS * 2)
    assert [data["user_id"] for _, _, data in notices.published] == ["carol"]


async def test_a_room_closed_meanwhile_or_a_shutdown_announces_nothing() -> None:
    rejoin, notices = grace()
    closed_room = room_with("bob")
    rejoin.hold(closed_room, departure("alice", "a1"))
    closed_room.closed = True
    other_room = room_with("dave")
    rejoin.hold(other_room, departure("erin", "e1"))
    rejoin.cancel_all()

    await asyncio.sleep(GRACE_SECS * 4)
    assert notices.published == []
