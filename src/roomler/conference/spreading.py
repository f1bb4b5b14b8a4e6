"""Which of a room's routers a joining participant goes to, made on demand.

On one node, a room grows onto another worker when its routers' workers carry
`ROOMLER__MEDIASOUP__ROOM_SPREAD_CONSUMERS` consumers (the decision is
conference/placement.py's `choose_router`). With rooms over nodes
(`ROOMLER__MEDIASOUP__ROOMS_ACROSS_NODES`), a participant whose WebSocket is on another
node gets the room's router on that node, driven from here through `NodeWorkers`
(roomler.cluster.remote_workers), so their media stays on their own node. Producers
reach routers that have consumers for them through the room's pipes
(`MediaRoom.pipes`).
"""

from __future__ import annotations

import logging
from typing import Protocol

from roomler.conference.errors import SFU_ERRORS
from roomler.conference.placement import NEW_ROUTER, Candidate, choose_router, worker_consumers
from roomler.conference.rooms import MediaRoom
from roomler.conference.speakers import SpeakerNotices
from roomler.sfu import Router, Worker, WorkerPool

logger = logging.getLogger(__name__)


class NodeWorkers(Protocol):
    """Workers of other nodes, for a room over nodes (`roomler.cluster.remote_workers`)."""

    def node_of(self, connection_id: str) -> str | None:
        """The other node the connection's WebSocket is on; None for this node."""
        ...

    async def worker_on(self, node_id: str) -> Worker:
        """A worker of `node_id`, driven from here."""
        ...


class RoomSpreading:
    def __init__(self, spread_consumers: int, speakers: SpeakerNotices) -> None:
        self.spread_consumers = spread_consumers
        self.speakers = speakers
        # Cluster mode: participants' transports on their own node.
        self.node_workers: NodeWorkers | None = None

    async def router_for_joiner(
        self, room: MediaRoom, pool: WorkerPool, connection_id: str
    ) -> Router:
        """The room's router the participant on `connection_id` goes to. Callers hold the
        conference's lock."""
        node = self.node_workers.node_of(connection_id) if self.node_workers else None
        if node is not None:
            return await self._router_on_node(room, node)
        routers = [router for router in room.live_routers() if not router.worker.host]
        on_worker = {router.worker.slot: index for index, router in enumerate(routers)}
        candidates = [
            Candidate(worker.slot, worker_consumers(worker), on_worker.get(worker.slot))
            for worker in pool.workers
        ]
        if not candidates:
            return room.router
        index, chosen = choose_router(candidates, self.spread_consumers)
        if index != NEW_ROUTER:
            return routers[index]
        worker = next(w for w in pool.workers if w.slot == chosen.worker_slot)
        try:
            router = await worker.create_router()
        except SFU_ERRORS as exc:  # that worker is going: the room's first router will do
            logger.warning("spreading conference %s failed: %s", room.conference_id, exc)
            return room.router
        await self._add(room, router)
        logger.info(
            "conference %s spreads to worker %d (its routers' workers carry %s consumers)",
            room.conference_id,
            worker.pid,
            ", ".join(str(c.consumers) for c in candidates if c.router_index is not None),
        )
        return router

    async def _router_on_node(self, room: MediaRoom, node: str) -> Router:
        """The room's router on another node (one per node), made there if it has none;
        the room's first router if that node cannot make one."""
        for router in room.live_routers():
            if router.worker.host == node:
                return router
        assert self.node_workers is not None
        try:
            worker = await self.node_workers.worker_on(node)
            router = await worker.create_router()
        except (RuntimeError, *SFU_ERRORS) as exc:
            logger.warning(
                "conference %s: no router on node %s (%s); its participant uses ours",
                room.conference_id,
                node,
                exc,
            )
            return room.router
        await self._add(room, router)
        logger.info("conference %s spreads to node %s", room.conference_id, node)
        return router

    async def _add(self, room: MediaRoom, router: Router) -> None:
        await self.speakers.listen(room.conference_id, router)
        room.routers.append(router)
