"""A room over several workers: which router a participant goes to, and the pipes between them.

One router lives on one worker process, one core. A worker whose consumers reach
``ROOMLER__MEDIASOUP__ROOM_SPREAD_CONSUMERS`` takes no more participants of a room: the
next one goes to another of the room's routers that has room, else to a new router on a
worker the room does not use yet (the least loaded), else -- every worker full -- to the
room's least loaded router. `choose_router` decides, from plain figures (unit-tested);
the consumers are counted on the web process's proxies (what it created), so deciding
asks no worker anything.

`RoomPipes` keeps the producers piped between one room's routers
(`Router.pipe_to_router`): a producer is piped to a router when a participant there
first consumes it, and its pipe is closed when the last consumer of it there closes, so
a router carries only the producers someone on it receives. The pipe transport pair
between two routers stays while they live (mediasoup's pair; closing a router closes it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from roomler.sfu import Consumer, PipeToRouterResult, Producer, Router, Worker

logger = logging.getLogger(__name__)

__all__ = [
    "NEW_ROUTER",
    "Candidate",
    "RoomPipes",
    "choose_router",
    "worker_consumers",
]

#: `choose_router`'s answer when a new router should be made on the worker it names.
NEW_ROUTER = -1


@dataclass(frozen=True, slots=True)
class Candidate:
    """A worker as placement sees it: its consumers, and the room's router on it (if any)."""

    worker_slot: int
    consumers: int
    # Index of the room's router on this worker in the room's list, or None.
    router_index: int | None = None


def choose_router(candidates: Sequence[Candidate], threshold: int) -> tuple[int, Candidate]:
    """(index of the room's router, its candidate) or (`NEW_ROUTER`, the worker to use).

    In order: the room's first router (in the order they were made) whose worker has
    fewer than `threshold` consumers -- a room stays on as few workers as it can, each
    extra one costing a pipe per producer; else the least loaded worker without a router
    of the room; else the room's least loaded router. A room without routers gets one on
    the least loaded worker.
    """
    if not candidates:
        raise ValueError("no worker to place a room's participant on")
    routers = sorted(
        (c for c in candidates if c.router_index is not None),
        key=lambda c: c.router_index or 0,
    )
    for candidate in routers:
        if candidate.consumers < threshold:
            assert candidate.router_index is not None
            return candidate.router_index, candidate
    free = [c for c in candidates if c.router_index is None]
    if free:
        best = min(free, key=lambda c: (c.consumers, c.worker_slot))
        return NEW_ROUTER, best
    best = min(routers, key=lambda c: (c.consumers, c.router_index or 0))
    assert best.router_index is not None
    return best.router_index, best


def worker_consumers(worker: Worker) -> int:
    """Consumers (pipe consumers included) the web process made on the worker's routers."""
    return sum(
        len(transport.consumers)
        for router in list(worker.routers.values())
        for transport in list(router.transports.values())
    )


class RoomPipes:
    """The producers piped between one room's routers (see the module docstring)."""

    def __init__(self, conference_id: str) -> None:
        self.conference_id = conference_id
        # (producer id, target router id) -> the pipe (a future while it is being made).
        self._pipes: dict[tuple[str, str], asyncio.Future[PipeToRouterResult]] = {}
        # (producer id, target router id) -> ids of the consumers of it there.
        self._consumers: dict[tuple[str, str], set[str]] = {}

    def __len__(self) -> int:
        return len(self._pipes)

    def piped(self, producer_id: str, router: Router) -> bool:
        pending = self._pipes.get((producer_id, router.id))
        return pending is not None and pending.done() and pending.exception() is None

    async def ensure(self, producer: Producer, source: Router, target: Router) -> None:
        """Make `producer` (on `source`) consumable on `target`; nothing if it is there."""
        if source is target:
            return
        key = (producer.id, target.id)
        pending = self._pipes.get(key)
        if pending is None or (pending.done() and pending.exception() is not None):
            pending = asyncio.ensure_future(
                source.pipe_to_router(producer_id=producer.id, router=target)
            )
            self._pipes[key] = pending
            pending.add_done_callback(lambda done: self._watch(key, done))
        await asyncio.shield(pending)

    def _watch(self, key: tuple[str, str], done: asyncio.Future[PipeToRouterResult]) -> None:
        if done.cancelled() or done.exception() is not None:
            if self._pipes.get(key) is done:
                del self._pipes[key]
            return
        result = done.result()
        logger.info(
            "conference %s: producer %s piped to router %s", self.conference_id, key[0], key[1]
        )
        # A pipe whose producer closed (the source went, the pipe transport or a worker
        # died) is forgotten: the next consumer there pipes it again.
        result.pipe_producer.on("close", lambda: self._forget(key, done))

    def _forget(self, key: tuple[str, str], done: asyncio.Future[PipeToRouterResult]) -> None:
        if self._pipes.get(key) is done:
            del self._pipes[key]
        self._consumers.pop(key, None)

    def consumer_added(self, consumer: Consumer, producer_id: str, router: Router) -> None:
        """Count `consumer` (on `router`) of a piped producer; its close may end the pipe."""
        key = (producer_id, router.id)
        if key not in self._pipes:
            return
        self._consumers.setdefault(key, set()).add(consumer.id)
        consumer.on("close", lambda: self._consumer_closed(key, consumer.id))

    def _consumer_closed(self, key: tuple[str, str], consumer_id: str) -> object:
        consumers = self._consumers.get(key)
        if consumers is None:
            return None
        consumers.discard(consumer_id)
        if consumers:
            return None
        del self._consumers[key]
        pending = self._pipes.pop(key, None)
        if pending is None or not pending.done() or pending.exception() is not None:
            return None
        logger.info(
            "conference %s: nobody on router %s receives producer %s: pipe closed",
            self.conference_id,
            key[1],
            key[0],
        )
        return pending.result().pipe_producer.close()  # its pipe consumer closes with it
