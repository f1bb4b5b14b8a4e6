"""`ClusterNode` on its own: services attach by their envelope kinds (cluster/node.py)."""

from __future__ import annotations

from typing import Any

import pytest

from roomler.cluster.node import ClusterNode, EnvelopeHandler
from roomler.cluster.wire import COMMAND, CONNECTION, REQUEST, USERS, Envelope
from roomler.config import RedisSettings
from roomler.realtime.open_connections import OpenConnections

pytestmark = pytest.mark.nodb


class Service:
    def __init__(self, *kinds: str) -> None:
        self.kinds = kinds
        self.seen: list[tuple[str, str]] = []

    def envelope_handlers(self) -> dict[str, EnvelopeHandler]:
        return {kind: self.handle for kind in self.kinds}

    def handle(self, envelope: Envelope) -> None:
        self.seen.append((envelope.kind, envelope.body))

    def connection_frame(self, connection_id: str, frame: str) -> None:
        self.seen.append((connection_id, frame))

    async def tick(self) -> None: ...

    async def resynced(self) -> None: ...

    def stopping(self) -> None: ...


async def _nobody(_user_id: str) -> list[str]:
    return []


async def _keep(_user_id: str, _presence: str) -> None: ...


def node() -> ClusterNode:
    settings = RedisSettings(url="redis://127.0.0.1:1/0", node_id="n1")  # never started
    sessions: Any = None
    return ClusterNode(
        settings, OpenConnections(), sessions, peers_of=_nobody, store_presence=_keep
    )


def test_an_attached_service_gets_its_envelopes_and_sees_connection_frames() -> None:
    cluster = node()
    service = Service(REQUEST, COMMAND)
    cluster.attach(service)
    cluster._on_message(Envelope(REQUEST, ("n2", "c1", "u1"), "", "hello").serialize())
    cluster._on_message(Envelope(CONNECTION, ("c9",), "", '{"type":"pong"}').serialize())
    assert service.seen == [(REQUEST, "hello"), ("c9", '{"type":"pong"}')]


def test_a_kind_has_one_handler() -> None:
    cluster = node()
    cluster.attach(Service(REQUEST))
    with pytest.raises(ValueError, match=r"envelope kinds \['q'\] already have a handler"):
        cluster.attach(Service(REQUEST))
    with pytest.raises(ValueError, match=r"envelope kinds \['u'\] already have a handler"):
        cluster.attach(Service(USERS))  # the node's own delivery
