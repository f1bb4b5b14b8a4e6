"""A room over several workers (conference/placement.py): where participants go, and the
pipes between the room's routers -- made when someone consumes a producer of another
router, closed when the last consumer of it there goes, and with the router."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from roomler.conference.placement import NEW_ROUTER, Candidate, choose_router, worker_consumers
from roomler.conference.rooms import RoomManager
from roomler.ids import new_id
from roomler.sfu import PipeTransport, WorkerPool
from tests.conference.conftest import chrome_rtp_capabilities, chrome_rtp_parameters

pytestmark = pytest.mark.nodb

PORTS = (48100, 48199)


# --- the decision -------------------------------------------------------------------


def test_a_room_without_routers_goes_to_the_least_loaded_worker() -> None:
    index, chosen = choose_router([Candidate(0, 40), Candidate(1, 3), Candidate(2, 3)], 100)
    assert index == NEW_ROUTER and chosen.worker_slot == 1


def test_the_first_router_with_room_under_the_threshold_is_kept() -> None:
    candidates = [Candidate(0, 99, router_index=0), Candidate(1, 0), Candidate(2, 50, 1)]
    assert choose_router(candidates, 100)[0] == 0  # compact: no pipe needed


def test_a_full_worker_spreads_the_room_to_the_least_loaded_other_worker() -> None:
    candidates = [Candidate(0, 100, router_index=0), Candidate(1, 30), Candidate(2, 10)]
    index, chosen = choose_router(candidates, 100)
    assert index == NEW_ROUTER and chosen.worker_slot == 2


def test_a_later_router_with_room_is_used_before_a_new_worker() -> None:
    candidates = [Candidate(0, 120, router_index=0), Candidate(1, 20, router_index=1),
                  Candidate(2, 0)]  # fmt: skip
    assert choose_router(candidates, 100)[0] == 1


def test_every_worker_full_takes_the_rooms_least_loaded_router() -> None:
    candidates = [Candidate(0, 150, router_index=0), Candidate(1, 110, router_index=1)]
    assert choose_router(candidates, 100)[0] == 1


def test_threshold_one_spreads_as_soon_as_a_worker_consumes() -> None:
    assert choose_router([Candidate(0, 0, 0), Candidate(1, 0)], 1)[0] == 0
    assert choose_router([Candidate(0, 2, 0), Candidate(1, 0)], 1)[0] == NEW_ROUTER


def test_no_worker_is_an_error() -> None:
    with pytest.raises(ValueError, match="no worker"):
        choose_router([], 1)


# --- the pipes, with two real workers ---------------------------------------------------


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(2, "127.0.0.1", None, *PORTS)
    async with asyncio.timeout(30):
        await pool.start()
    yield pool
    async with asyncio.timeout(30):
        await pool.close()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_producer_is_piped_while_someone_on_the_other_router_consumes_it(
    pool: WorkerPool,
) -> None:
    worker1, worker2 = pool.workers
    rooms = RoomManager()
    conference_id = new_id()
    room = await rooms.open_room(conference_id, worker1.create_router)
    second = await worker2.create_router()
    room.routers.append(second)
    _, alice = await rooms.create_transports(conference_id, "alice", "c1")
    _, bob = await rooms.create_transports(conference_id, "bob", "c2", router=second)
    _, carol = await rooms.create_transports(conference_id, "carol", "c3", router=second)
    assert alice.router is room.router and bob.router is carol.router is second
    producer = await alice.send_transport.produce("video", chrome_rtp_parameters("video"))

    consumers = []
    for participant in (bob, carol):
        await room.pipes.ensure(producer, alice.router, participant.router)
        consumer = await participant.recv_transport.consume(producer.id, chrome_rtp_capabilities())
        room.pipes.consumer_added(consumer, producer.id, participant.router)
        consumers.append(consumer)
    assert len(room.pipes) == 1  # one pipe for both receivers on the second router
    assert room.pipes.piped(producer.id, second)
    assert worker_consumers(worker1) == 1  # the pipe consumer
    assert worker_consumers(worker2) == 2

    await consumers[0].close()
    assert room.pipes.piped(producer.id, second)  # Carol still receives it
    await consumers[1].close()
    await until(lambda: not room.pipes.piped(producer.id, second))
    await until(lambda: worker_consumers(worker1) == 0)
    assert producer.id not in second._producers

    # Consumed again: piped again, over the same pipe transport pair.
    await room.pipes.ensure(producer, alice.router, carol.router)
    assert room.pipes.piped(producer.id, second)
    pipes = [t for t in second.transports.values() if isinstance(t, PipeTransport)]
    assert len(pipes) == 1


async def test_the_last_participant_on_a_spread_router_closes_it(pool: WorkerPool) -> None:
    worker1, worker2 = pool.workers
    rooms = RoomManager()
    conference_id = new_id()
    room = await rooms.open_room(conference_id, worker1.create_router)
    second = await worker2.create_router()
    room.routers.append(second)
    _, alice = await rooms.create_transports(conference_id, "alice", "c1")
    _, bob = await rooms.create_transports(conference_id, "bob", "c2", router=second)
    producer = await alice.send_transport.produce("audio", chrome_rtp_parameters("audio"))
    await room.pipes.ensure(producer, alice.router, bob.router)
    assert room.router.pipe_transport_to(second) is not None

    await rooms.close_participant(conference_id, "c2")

    assert second.closed and room.routers == [room.router]
    await until(lambda: room.router.pipe_transport_to(second) is None)
    assert not room.router.closed and not producer.closed
