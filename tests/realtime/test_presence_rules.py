"""The presence rules (realtime/presence.py) on one node, without sockets or a database.

`tests/realtime/test_presence.py` checks the same rules end to end; here each rule is
one small case against a real `LocalDispatcher`, with recording senders.
"""

from __future__ import annotations

import json

from roomler.realtime.dispatcher import LocalDispatcher
from roomler.realtime.open_connections import OpenConnections
from roomler.realtime.presence import PresenceService, seen_by_others
from tests.realtime.senders import Recorder


class Node:
    """Alice and her peer Bob, each with recording connections, and what was stored."""

    def __init__(self) -> None:
        self.storage = OpenConnections()
        self.stored: list[tuple[str, str]] = []
        self.presence = PresenceService(LocalDispatcher(self.storage), self.peers_of, self.store)
        self.bob = self.open("bob", "b1")

    async def peers_of(self, user_id: str) -> list[str]:
        return ["alice", "bob"]

    async def store(self, user_id: str, presence: str) -> None:
        self.stored.append((user_id, presence))

    def open(self, user_id: str, connection_id: str) -> Recorder:
        sender = Recorder(user_id, connection_id)
        self.storage.add(user_id, connection_id, sender)
        return sender

    def close(self, sender: Recorder) -> None:
        self.storage.remove(sender.user_id, sender.connection_id, sender)


def told(sender: Recorder) -> list[str]:
    """The presence values `sender` was told, in order (each frame read once)."""
    frames = [json.loads(frame) for frame in sender.frames]
    sender.frames.clear()
    return [frame["data"]["presence"] for frame in frames if frame["type"] == "presence:update"]


def test_what_others_see_of_a_choice() -> None:
    assert seen_by_others("dnd", connected=True) == "dnd"
    assert seen_by_others("invisible", connected=True) == "offline"
    assert seen_by_others("online", connected=False) == "offline"


async def test_peers_hear_the_first_connection_and_the_last_only() -> None:
    node = Node()
    tab1 = node.open("alice", "a1")
    await node.presence.connected("alice", "idle", "a1")
    assert told(node.bob) == ["idle"]
    tab2 = node.open("alice", "a2")
    await node.presence.connected("alice", "online", "a2")  # an older row: the tab's choice wins
    assert told(node.bob) == []
    node.close(tab1)
    await node.presence.disconnected("alice", "a1")
    assert told(node.bob) == []
    node.close(tab2)
    await node.presence.disconnected("alice", "a2")
    assert told(node.bob) == ["offline"]
    assert node.presence.chosen("alice") is None  # forgotten with the last connection


async def test_invisible_is_offline_to_peers_and_itself_to_its_own_tabs() -> None:
    node = Node()
    tab = node.open("alice", "a1")
    await node.presence.connected("alice", "online", "a1")
    assert told(node.bob) == ["online"]
    await node.presence.choose("alice", "invisible")
    assert node.stored == [("alice", "invisible")]
    assert told(tab) == ["invisible"]
    assert told(node.bob) == ["offline"]
    snapshot = await node.presence.snapshot(["alice"], "bob")
    assert snapshot == {"alice": "offline"}
    assert await node.presence.snapshot(["alice"], "alice") == {"alice": "invisible"}
    # Invisible to dnd: peers see the user come back; choosing it again tells nobody twice.
    await node.presence.choose("alice", "dnd")
    await node.presence.choose("alice", "dnd")
    assert told(node.bob) == ["dnd"]
    assert told(tab) == ["dnd"]


async def test_a_choice_without_a_connection_is_stored_and_announced_to_nobody() -> None:
    node = Node()
    await node.presence.choose("alice", "dnd")
    assert node.stored == [("alice", "dnd")]
    assert told(node.bob) == []
    assert await node.presence.snapshot(["alice"], "bob") == {"alice": "offline"}
