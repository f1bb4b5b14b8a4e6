"""Cluster presence (cluster/presence.py) on its own: reconciliation after an outage."""

from __future__ import annotations

from typing import Any, cast

import pytest

from roomler.cluster.dispatcher import ClusterDispatcher
from roomler.cluster.link import RedisLink
from roomler.cluster.presence import ClusterPresence, presence_frame
from roomler.realtime.connection import Connection
from roomler.realtime.open_connections import OpenConnections

pytestmark = pytest.mark.nodb


class FakeLink:
    """Answers `HGETALL <prefix>told` with a fixed state; nothing else is asked here."""

    def __init__(self, told: dict[str, str]) -> None:
        self.told = told
        self.up = True

    async def call(self, *command: str | int) -> Any:
        assert command == ("HGETALL", "p:told"), command
        return self.told

    def send(self, *command: str | int) -> bool:
        return True


async def test_a_change_reconciled_here_is_not_delivered_again_by_its_node() -> None:
    storage = OpenConnections()
    viewer = Connection("viewer", "c1", _never, max_queued=10)
    storage.add("viewer", "c1", viewer)
    link = cast(RedisLink, FakeLink({"dave": "online"}))
    dispatcher = ClusterDispatcher(storage, link, "p:", "n2")

    async def pairs(users: list[str]) -> list[tuple[str, str]]:
        return [("viewer", "dave")] if users == ["viewer"] else []

    async def unused(*_args: Any) -> Any:
        raise AssertionError("not used here")

    presence = ClusterPresence(dispatcher, link, "p:", "n2", unused, unused, pairs)
    await presence.reconcile()  # node 2 came back and finds Dave online in Redis
    assert viewer.queued() == 1

    online = presence_frame("dave", "online")
    assert presence.arrived_from_elsewhere(online) is False  # node 1's own announcement
    assert presence.arrived_from_elsewhere(online) is True  # only once
    assert presence.arrived_from_elsewhere(presence_frame("dave", "dnd")) is True
    with pytest.raises(ValueError, match="without user_id and presence"):
        presence.arrived_from_elsewhere('{"type":"presence:update","data":{}}')


async def _never(_text: str) -> None:
    raise AssertionError("nothing is written in this test")
