"""The room rules (conference/rooms.py) on their own, with one real SFU worker.

Who is a participant, one room per connection, what leaving closes and reports, and a
room that goes away while a connection is joining. The signaling and REST tests check
the same end to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from roomler.conference.rooms import RoomError, RoomManager
from roomler.ids import new_id
from roomler.sfu import Router, WorkerPool
from tests.conference.conftest import chrome_rtp_parameters

pytestmark = pytest.mark.nodb

# A port range of our own, away from the other media tests'.
PORTS = (48000, 48049)


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(1, "127.0.0.1", None, *PORTS)
    async with asyncio.timeout(20):
        await pool.start()
    yield pool
    async with asyncio.timeout(20):
        await pool.close()


async def test_a_connection_is_in_one_room_at_a_time(pool: WorkerPool) -> None:
    rooms = RoomManager()
    first, second = new_id(), new_id()
    room = await rooms.open_room(first, pool.create_router)
    assert await rooms.open_room(first, pool.create_router) is room  # one router per room
    await rooms.open_room(second, pool.create_router)

    joined_room, alice = await rooms.create_transports(first, "alice", "c1", "Alice")
    assert joined_room is room and room.participants == {"c1": alice}
    assert alice.display_name == "Alice" and rooms.connection_rooms == {"c1": first}
    assert alice.send_transport.id != alice.recv_transport.id
    with pytest.raises(RoomError, match=f"already in conference {first}; send media:leave first"):
        await rooms.create_transports(second, "alice", "c1")
    with pytest.raises(RoomError, match=f"not a participant of conference {second}"):
        rooms.participant(second, "c1")
    with pytest.raises(RoomError, match="unknown transport nope"):
        alice.transport("nope")
    unknown = new_id()
    with pytest.raises(RoomError, match=f"conference {unknown} is not running"):
        await rooms.create_transports(unknown, "bob", "c2")


async def test_leaving_closes_the_transports_and_reports_the_producers(pool: WorkerPool) -> None:
    rooms = RoomManager()
    conference_id = new_id()
    room = await rooms.open_room(conference_id, pool.create_router)
    _, tab1 = await rooms.create_transports(conference_id, "alice", "c1")
    _, tab2 = await rooms.create_transports(conference_id, "alice", "c2")
    _, bob = await rooms.create_transports(conference_id, "bob", "c3")
    producer = await tab1.send_transport.produce("audio", chrome_rtp_parameters("audio"))
    tab1.add_producer(producer)
    assert [(p.connection_id, pr.id) for p, pr in room.producers()] == [("c1", producer.id)]
    assert room.producers(exclude_connection="c1") == []

    departures = await rooms.close_participant_by_user(conference_id, "alice")
    assert [(d.connection_id, d.producer_ids) for d in departures] == [
        ("c1", [producer.id]),
        ("c2", []),
    ]
    assert tab1.send_transport.closed and tab2.recv_transport.closed and producer.closed
    assert room.user_ids() == {"bob"} and rooms.connection_rooms == {"c3": conference_id}
    assert await rooms.close_participant(conference_id, "c1") is None  # gone already
    assert not bob.send_transport.closed


async def test_a_removed_room_forgets_its_participants_and_refuses_joins(
    pool: WorkerPool,
) -> None:
    rooms = RoomManager()
    conference_id = new_id()
    room = await rooms.open_room(conference_id, pool.create_router)
    await rooms.create_transports(conference_id, "alice", "c1")
    assert rooms.remove_room(conference_id) is room
    assert room.closed and rooms.connection_rooms == {}
    assert rooms.remove_room(conference_id) is None
    with pytest.raises(RoomError, match=f"conference {conference_id} is not running"):
        await rooms.create_transports(conference_id, "bob", "c2")
    await room.router.close()


async def test_a_room_whose_router_closed_gets_a_new_one(pool: WorkerPool) -> None:
    rooms = RoomManager()
    conference_id = new_id()
    routers: list[Router] = []

    async def create_router() -> Router:
        routers.append(await pool.create_router())
        return routers[-1]

    room = await rooms.open_room(conference_id, create_router)
    await room.router.close()
    again = await rooms.open_room(conference_id, create_router)
    assert again is not room and room.closed and len(routers) == 2
    assert rooms.rooms_of_routers([routers[1].id]) == [again]


async def test_a_room_ended_while_joining_closes_the_new_transports(pool: WorkerPool) -> None:
    rooms = RoomManager()
    conference_id = new_id()
    room = await rooms.open_room(conference_id, pool.create_router)
    joining = asyncio.ensure_future(rooms.create_transports(conference_id, "alice", "c1"))
    await asyncio.sleep(0)  # the transports are being created in the worker
    rooms.remove_room(conference_id)
    with pytest.raises(RoomError, match=f"conference {conference_id} is not running"):
        await joining
    assert room.participants == {} and rooms.connection_rooms == {}
    dump = await room.router.dump()
    assert dump["transportIds"] == []  # none left behind, their ports free
