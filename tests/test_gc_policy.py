"""`FrozenHeap` (roomler/gc_policy.py): what lives long leaves the full collections' walk,
and what died while frozen is freed once enough connections have closed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator

import pytest

from roomler.gc_policy import FrozenHeap
from roomler.realtime.counters import WsCounters


class Node:
    """A GC-tracked object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> Node:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


@pytest.fixture
async def heap() -> AsyncIterator[tuple[FrozenHeap, WsCounters]]:
    counters = WsCounters()
    frozen = FrozenHeap(counters, period_secs=3600, thaw_fraction=0.25, thaw_min_closes=10)
    frozen.start()
    try:
        yield frozen, counters
    finally:
        await frozen.stop()
        assert gc.get_freeze_count() == 0  # the process's collector is as it was


async def test_start_up_is_frozen_and_new_connections_are_frozen_too(
    heap: tuple[FrozenHeap, WsCounters],
) -> None:
    frozen, counters = heap
    after_start = gc.get_freeze_count()
    assert after_start > 1000  # the modules, classes and app of the process

    kept = [Node() for _ in range(500)]  # what a wave of connections would hold
    frozen.check()  # nobody connected: nothing is frozen
    assert gc.get_freeze_count() == after_start
    counters.opened += 5
    frozen.check()
    assert gc.get_freeze_count() >= after_start + 500
    assert frozen.freezes == 2
    assert len(kept) == 500


async def test_a_cycle_frozen_while_alive_is_freed_after_enough_closes(
    heap: tuple[FrozenHeap, WsCounters],
) -> None:
    frozen, counters = heap
    counters.opened += 40
    connection = cycle()  # a connection's objects, in a cycle (protocol <-> transport)
    alive = weakref.ref(connection)
    frozen.check()  # frozen with the wave of connections it came with
    del connection  # it closed: its cycle is garbage now, but frozen
    gc.collect()  # a full collection does not walk frozen objects: the garbage stays
    assert alive() is not None

    counters.closed += 9  # under both the minimum (10) and a quarter of those open
    frozen.check()
    assert frozen.thaws == 0 and alive() is not None
    counters.closed += 1  # 10 closed, 30 open: a thaw
    frozen.check()
    assert frozen.thaws == 1
    assert alive() is None  # collected once unfrozen
    assert gc.get_freeze_count() > 1000  # and the survivors frozen again


async def test_young_garbage_is_collected_not_frozen(heap: tuple[FrozenHeap, WsCounters]) -> None:
    frozen, counters = heap
    gone = weakref.ref(cycle())  # garbage before the freeze: the young collection frees it
    counters.opened += 1
    frozen.check()
    assert gone() is None
