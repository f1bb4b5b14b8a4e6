"""Conferences on any node: one node hosts a conference's router, the others forward.

A conference's room (its router and every participant's transports) lives on exactly
one node, recorded in Redis as `conf:<id>` (`scripts.CLAIM`): the node where it was
started, or where it was first joined after its host died. A participant whose
WebSocket is on another node is served through the host:

- the participant's node (the *edge*) forwards each `media:*` request, as the client sent
  it, to the host's channel (`q` envelope): `ConferenceForwarding` is the signaling's
  `RequestForwarder`. The host runs it with the normal handlers on
  a `RemoteConnection` standing in for the participant's connection, one request at a
  time and in order; every reply and connection-targeted event goes back over Redis to
  the edge, which queues it on the real connection. The edge's requests and the host's
  replies each travel through one ordered link, so replies arrive in order;
- user-level events (`media:new_producer`, `media:peer_left`, ...) go through the
  cluster dispatcher like any other event;
- media goes to the participant's own node: with `ROOMLER__MEDIASOUP__ROOMS_ACROSS_NODES`
  (the default) the host makes the participant's transports on a worker of the edge it
  leased (cluster/remote_workers.py), and pipes the room's routers between the nodes;
  without it, the transports' ICE candidates are the host's own addresses and the
  browser sends its UDP straight there;
- when the participant's WebSocket closes, the edge tells the host (`x closed`), which
  runs the same cleanup as for a local connection (the participant leaves the room).

Every node checks on each heartbeat the nodes it depends on. An edge whose host died
sends `media:room_closed {conference_id, reason: "node_lost"}` to the participants it
forwarded for; the dead host's claim is gone (reaped, or taken over), so the conference
can be started or joined again and gets a router on another node. A host whose edge
died cleans up that edge's participants.

`ClusterRooms` is the `RoomPlacement` given to `ConferenceMedia` (the `conf:<id>`
records); `ConferenceForwarding` is attached to the node (`ClusterNode.attach`) for its
envelopes, heartbeat and resync, and given to the signaling at construction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from roomler.cluster.link import RedisUnavailable
from roomler.cluster.node import ClusterNode, EnvelopeHandler
from roomler.cluster.scripts import CLAIM, HOSTED, OWNER, RELEASE, WATCH
from roomler.cluster.wire import COMMAND, CONNECTION, REQUEST, Envelope
from roomler.conference.conference_media import ROOM_ENDED, ConferenceMedia
from roomler.conference.errors import RoomElsewhere, RoomError
from roomler.conference.room_notices import ROOM_CLOSED
from roomler.ids import is_id
from roomler.realtime.connection import CloseHook, Peer
from roomler.realtime.handler_registry import Request
from roomler.realtime.layer import Realtime
from roomler.realtime.wire import (
    CLOSE_GOING_AWAY,
    BadRequest,
    ClientMessage,
    encode,
    frame_type,
)
from roomler.tasks import BackgroundTasks

logger = logging.getLogger(__name__)

NODE_LOST = "node_lost"
# Forwarded requests waiting on the host, per connection; more is a misbehaving edge.
MAX_QUEUED_REQUESTS = 256
# How long a `start` on a node that does not host the room waits for the host's router.
CAPS_WAIT_SECS = 5.0
CLOSED, END, LEAVE, REVOKE = "closed", "end", "leave", "revoke"


class RemoteConnection:
    """On the host: a participant's connection that lives on another node (the edge).

    A `Peer` like a local connection: whatever is sent to it is published to the edge,
    for the real connection. Requests arriving for it are handled one at a time, in
    order, by its own task.
    """

    def __init__(
        self, user_id: str, connection_id: str, edge: str, forward: Callable[[str], bool]
    ) -> None:
        self.user_id = user_id
        self.connection_id = connection_id
        self.edge = edge
        self.close_hooks: list[CloseHook] = []
        self._closing = False
        self._forward = forward
        self._inbox: deque[str | None] = deque()  # None: the connection closed
        self._arrived = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"RemoteConnection({self.connection_id}, user={self.user_id}, edge={self.edge})"

    @property
    def closing(self) -> bool:
        return self._closing

    def send(self, frame: str) -> bool:
        if self._closing:
            return False
        return self._forward(frame)

    def close(self, code: int, reason: str = "") -> None:
        """Stop sending to the edge (the real connection's close is the edge's business)."""
        self._closing = True

    def on_close(self, hook: CloseHook) -> None:
        self.close_hooks.append(hook)

    def submit(self, text: str | None) -> bool:
        if text is not None and len(self._inbox) >= MAX_QUEUED_REQUESTS:
            return False
        self._inbox.append(text)
        self._arrived.set()
        return True

    async def next_item(self) -> str | None:
        while not self._inbox:
            self._arrived.clear()
            await self._arrived.wait()
        return self._inbox.popleft()


class ClusterRooms:
    """`RoomPlacement` for `ConferenceMedia`: which node hosts each room (`conf:<id>`)."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node
        self.prefix = node.prefix
        self.node_id = node.node_id

    async def claim(self, conference_id: str) -> None:
        try:
            owner, caps = await self.node.link.call(
                *CLAIM.command(self.prefix, conference_id, self.node_id)
            )
        except RedisUnavailable:
            return  # alone until Redis is back; the resync records the room then
        if owner == self.node_id:
            return
        capabilities = json.loads(caps) if caps else await self._wait_caps(conference_id)
        raise RoomElsewhere(conference_id, owner, capabilities)

    async def _wait_caps(self, conference_id: str) -> dict[str, Any]:
        """The host is still placing its router: its capabilities come in a moment."""
        key = f"{self.prefix}conf:{conference_id}"
        deadline = asyncio.get_running_loop().time() + CAPS_WAIT_SECS
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            with contextlib.suppress(RedisUnavailable):
                caps = await self.node.link.call("HGET", key, "caps")
                if caps:
                    loaded: dict[str, Any] = json.loads(caps)
                    return loaded
        return {}

    def hosted(self, conference_id: str, rtp_capabilities: dict[str, Any]) -> None:
        caps = json.dumps(rtp_capabilities, separators=(",", ":"))
        self.node.link.send(*HOSTED.command(self.prefix, conference_id, self.node_id, caps))

    def released(self, conference_id: str) -> None:
        self.node.link.send(*RELEASE.command(self.prefix, conference_id, self.node_id))

    async def end_elsewhere(self, conference_id: str, reason: str) -> None:
        await self._command_host(
            conference_id, END, {"conference_id": conference_id, "reason": reason}
        )

    async def leave_elsewhere(self, conference_id: str, user_id: str) -> None:
        await self._command_host(
            conference_id, LEAVE, {"conference_id": conference_id, "user_id": user_id}
        )

    async def revoke_elsewhere(self, conference_id: str, user_id: str | None, reason: str) -> None:
        args = {"conference_id": conference_id, "reason": reason}
        if user_id is not None:
            args["user_id"] = user_id
        await self._command_host(conference_id, REVOKE, args)

    async def _command_host(self, conference_id: str, action: str, args: dict[str, str]) -> None:
        owner = await self.owner(conference_id)
        if owner is not None:
            body = json.dumps(args)
            self.node.publish_to(owner, Envelope(COMMAND, (self.node_id,), action, body))

    async def keeps_attendance(self, conference_id: str, hold_secs: float) -> bool:
        """Whether this node checks the attendance of a conference no live node hosts
        (its host died or shut down): one node does, for `hold_secs` at a time."""
        try:
            mine = await self.node.link.call(
                *WATCH.command(
                    self.prefix, conference_id, self.node_id, max(1, int(hold_secs * 1000))
                )
            )
        except RedisUnavailable:
            return False  # cannot tell who hosts it: leave the records alone
        return bool(mine)

    async def owner(self, conference_id: str) -> str | None:
        """The live node hosting the conference, if it is not this one."""
        try:
            owner = await self.node.link.call(*OWNER.command(self.prefix, conference_id))
        except RedisUnavailable:
            return None
        return owner if owner and owner != self.node_id else None


class ConferenceForwarding:
    """The forwarding of `media:*` requests between edges and hosts (a `NodeService`)."""

    def __init__(
        self, node: ClusterNode, rooms: ClusterRooms, realtime: Realtime, media: ConferenceMedia
    ) -> None:
        self.node = node
        self.rooms = rooms
        self.realtime = realtime
        self.media = media
        self.node_id = node.node_id
        # Edge side: our connection id -> (conference id, hosting node).
        self.forwarded: dict[str, tuple[str, str]] = {}
        # Host side: connection id on another node -> its stand-in here.
        self.remote: dict[str, RemoteConnection] = {}
        self._tasks = BackgroundTasks(logger, "a conference task failed")

    # --- NodeService ---------------------------------------------------------------------------

    def envelope_handlers(self) -> dict[str, EnvelopeHandler]:
        return {REQUEST: self._on_request, COMMAND: self._on_command}

    def connection_frame(self, connection_id: str, frame: str) -> None:
        # The host closed the room (ended, or its worker died): nothing to forward for now.
        if connection_id in self.forwarded and frame_type(frame) == ROOM_CLOSED:
            self.forwarded.pop(connection_id, None)

    async def tick(self) -> None:
        await self.check_nodes()

    async def resynced(self) -> None:
        """After a (re)connect to Redis: record the rooms this node hosts."""
        for conference_id, rtp_capabilities in self.media.hosted_rooms().items():
            try:
                await self.rooms.claim(conference_id)
            except RoomElsewhere as elsewhere:
                logger.error(
                    "conference %s has a router here and on node %s (started there while "
                    "Redis was away); new participants go there",
                    conference_id,
                    elsewhere.node_id,
                )
                continue
            self.rooms.hosted(conference_id, rtp_capabilities)

    def stopping(self) -> None:
        self._tasks.cancel_all()

    # --- the edge: forwarding a participant's requests (RequestForwarder) ------------------------

    async def sent_elsewhere(self, request: Request, data: dict[str, Any]) -> bool:
        """Send the request to the node hosting its conference; False to handle it here."""
        host = await self._host_for(request, data)
        if host is None:
            return False
        self._forward(request, data, host)
        return True

    async def _host_for(self, request: Request, data: dict[str, Any]) -> str | None:
        """The other node this request must go to; None to handle it here."""
        if self.remote.get(request.connection_id) is request.connection:
            return None  # forwarded to us: we are the host
        if self.media.draining and request.type == "media:join":
            # Shutting down (rooms closed): this socket closes in a moment and joins again
            # after its reconnect; refused here, rather than a join now and another then.
            return None
        conference_id = data.get("conference_id")
        if not isinstance(conference_id, str) or not is_id(conference_id):
            return None  # the handler here answers with the precise error
        if self.media.hosts(conference_id):
            return None
        known = self.forwarded.get(request.connection_id)
        if known is not None and known[0] == conference_id:
            return known[1]
        return await self.rooms.owner(conference_id)

    def _forward(self, request: Request, data: dict[str, Any], host: str) -> None:
        conference_id = data["conference_id"]
        frame: dict[str, Any] = {"type": request.type, "data": data}
        if request.request_id is not None:
            frame["request_id"] = request.request_id
        targets = (self.node_id, request.connection_id, request.user_id)
        envelope = Envelope(REQUEST, targets, "", json.dumps(frame, separators=(",", ":")))
        if not self.node.publish_to(host, envelope):
            raise RoomError(f"the node hosting conference {conference_id} is unreachable")
        if request.type == "media:leave":
            self.forwarded.pop(request.connection_id, None)
        else:
            self.forwarded[request.connection_id] = (conference_id, host)

    async def connection_closed(self, connection: Peer) -> None:
        """An `on_disconnect` hook: a participant forwarded elsewhere left; tell its host."""
        entry = self.forwarded.pop(connection.connection_id, None)
        if entry is not None:
            targets = (self.node_id, connection.connection_id)
            self.node.publish_to(entry[1], Envelope(COMMAND, targets, CLOSED, ""))

    def edge_of(self, connection_id: str) -> str | None:
        """The node of a participant connection forwarded to us (None: ours, or unknown)."""
        remote = self.remote.get(connection_id)
        return remote.edge if remote is not None else None

    # --- the host: running forwarded requests ------------------------------------------------

    def _on_request(self, envelope: Envelope) -> None:
        if len(envelope.targets) != 3:
            raise ValueError("a forwarded request names the edge, the connection and the user")
        edge, connection_id, user_id = envelope.targets
        remote = self.remote.get(connection_id)
        if remote is None:
            remote = self._stand_in(edge, connection_id, user_id)
        if not remote.submit(envelope.body):
            logger.warning("%r: too many forwarded requests waiting; dropped one", remote)

    def _stand_in(self, edge: str, connection_id: str, user_id: str) -> RemoteConnection:
        def forward(frame: str) -> bool:
            back = Envelope(CONNECTION, (connection_id,), "", frame)
            return self.node.publish_to(edge, back)

        remote = RemoteConnection(user_id, connection_id, edge, forward)
        self.remote[connection_id] = remote
        remote.task = self._tasks.spawn(self._serve(remote))
        return remote

    async def _serve(self, remote: RemoteConnection) -> None:
        """Handle the remote connection's requests in order until it closes."""
        try:
            while (text := await remote.next_item()) is not None:
                try:
                    message = ClientMessage.parse(text)
                except BadRequest as exc:
                    logger.warning("%r: unreadable forwarded request: %s", remote, exc)
                    continue
                await self.realtime.registry.handle(remote, message)
        finally:
            await self._forget(remote)

    async def _forget(self, remote: RemoteConnection) -> None:
        """The remote connection went away: the same cleanup as for a local one."""
        if self.remote.get(remote.connection_id) is remote:
            del self.remote[remote.connection_id]
        remote.close(CLOSE_GOING_AWAY)
        await self.realtime.run_close_hooks(remote)

    def _on_command(self, envelope: Envelope) -> None:
        action = envelope.skip
        if action == CLOSED:
            if len(envelope.targets) != 2:
                raise ValueError("a closed command names the edge and the connection")
            remote = self.remote.get(envelope.targets[1])
            if remote is not None:
                remote.submit(None)
            return
        args = json.loads(envelope.body)
        if not isinstance(args, dict) or not is_id(args.get("conference_id")):
            raise ValueError(f"conference command {action!r} without a conference id")
        if action == END:
            reason = str(args.get("reason", ROOM_ENDED))
            self._tasks.spawn(self.media.close_room_here(args["conference_id"], reason))
        elif action == LEAVE and is_id(args.get("user_id")):
            self._tasks.spawn(self.media.leave_user(args["conference_id"], args["user_id"]))
        elif action == REVOKE and (args.get("user_id") is None or is_id(args["user_id"])):
            reason = str(args.get("reason", "access_revoked"))
            conference_id, user_id = args["conference_id"], args.get("user_id")
            if user_id is None:
                self._tasks.spawn(self.media.revoke_lost_here(conference_id, reason))
            else:
                self._tasks.spawn(self.media.revoke_here(conference_id, user_id, reason))
        else:
            raise ValueError(f"unknown conference command {action[:16]!r}")

    # --- nodes that died -------------------------------------------------------------------------

    async def check_nodes(self) -> None:
        """Close what depended on nodes that stopped their heartbeat."""
        for host in {host for _, host in self.forwarded.values()}:
            if not await self.node.node_alive(host):
                self._host_lost(host)
        for edge in {remote.edge for remote in self.remote.values()}:
            if not await self.node.node_alive(edge):
                logger.warning("node %s died: its participants leave our conferences", edge)
                for remote in [r for r in self.remote.values() if r.edge == edge]:
                    remote.submit(None)
        await self._drop_vanished()

    async def _drop_vanished(self) -> None:
        """Stand-ins whose connection is gone from the directory (its `closed` command was
        lost while Redis was away) leave their rooms too."""
        remotes = list(self.remote.values())
        if not remotes:
            return
        ids = [remote.connection_id for remote in remotes]
        where = await self.node.link.call("HMGET", self.node.prefix + "conns", *ids)
        for remote, location in zip(remotes, where, strict=True):
            if location is None:
                logger.info("%r is gone from the directory: it leaves its room", remote)
                remote.submit(None)

    def _host_lost(self, host: str) -> None:
        lost = [(c, conf) for c, (conf, h) in self.forwarded.items() if h == host]
        logger.warning(
            "node %s died: closing conferences %s for %d participant(s) here",
            host,
            ", ".join(sorted({conf for _, conf in lost})),
            len(lost),
        )
        for connection_id, conference_id in lost:
            del self.forwarded[connection_id]
            frame = encode(ROOM_CLOSED, {"conference_id": conference_id, "reason": NODE_LOST})
            self.node.dispatcher.local.deliver_to_connection(connection_id, frame)
