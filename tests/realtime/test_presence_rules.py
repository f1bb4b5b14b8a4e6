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
    """Alice and her peer Bob (both in tenant "t"), each with recording connections, and
    what was stored; Bob is connected (`started`)."""

    def __init__(self) -> None:
        self.storage = OpenConnections()
        self.stored: list[tuple[str, str]] = []
        self.presence = PresenceService(LocalDispatcher(self.storage), self.store)
        self.bob = self.open("bob", "b1")

    async def started(self) -> Node:
        await self.presence.connected("bob", "online", "b1", ["t"])
        return self

    async def arrive(self, user_id: str, connection_id: str, *tenants: str) -> Recorder:
        tab = self.open(user_id, connection_id)
        await self.presence.connected(user_id, "online", connection_id, tenants)
        return tab

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
    node = await Node().started()
    tab1 = node.open("alice", "a1")
    await node.presence.connected("alice", "idle", "a1", ["t"])
    assert told(node.bob) == ["idle"]
    tab2 = node.open("alice", "a2")
    # An older row: the tab's choice wins.
    await node.presence.connected("alice", "online", "a2", ["t"])
    assert told(node.bob) == []
    node.close(tab1)
    await node.presence.disconnected("alice", "a1")
    assert told(node.bob) == []
    node.close(tab2)
    await node.presence.disconnected("alice", "a2")
    assert told(node.bob) == ["offline"]
    assert node.presence.chosen("alice") is None  # forgotten with the last connection


async def test_invisible_is_offline_to_peers_and_itself_to_its_own_tabs() -> None:
    node = await Node().started()
    tab = node.open("alice", "a1")
    await node.presence.connected("alice", "online", "a1", ["t"])
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
    node = await Node().started()
    await node.presence.choose("alice", "dnd")
    assert node.stored == [("alice", "dnd")]
    assert told(node.bob) == []
    assert await node.presence.snapshot(["alice"], "bob") == {"alice": "offline"}


async def test_only_connected_members_of_a_shared_tenant_hear() -> None:
    node = await Node().started()
    carol = await node.arrive("carol", "c1", "other")
    dave = await node.arrive("dave", "d1", "t", "other")  # shares both with Alice: told once
    for tab in (node.bob, carol, dave):
        told(tab)  # of one another
    await node.arrive("alice", "a1", "t", "other")
    assert told(node.bob) == ["online"]
    assert told(dave) == ["online"]
    assert told(carol) == ["online"]
    lone = await node.arrive("erin", "e1", "elsewhere")  # shares no tenant with Alice
    await node.presence.choose("alice", "dnd")
    assert told(lone) == []


async def test_a_membership_that_changes_while_connected_changes_who_hears() -> None:
    node = await Node().started()
    carol = await node.arrive("carol", "c1", "other")
    await node.arrive("alice", "a1", "t")
    assert told(carol) == []
    assert told(node.bob) == ["online"]
    node.presence.tenant_joined("alice", "other")  # Alice is added to Carol's tenant
    await node.presence.choose("alice", "dnd")
    assert told(carol) == ["dnd"]
    assert told(node.bob) == ["dnd"]
    node.presence.tenant_left("alice", "t")  # and removed from Bob's
    await node.presence.choose("alice", "idle")
    assert told(carol) == ["idle"]
    assert told(node.bob) == []


async def test_a_user_who_left_is_forgotten_by_the_tenant_index() -> None:
    node = await Node().started()
    tab = await node.arrive("alice", "a1", "t")
    node.close(tab)
    await node.presence.disconnected("alice", "a1")
    assert told(node.bob) == ["online", "offline"]
    node.presence.tenant_joined("alice", "other")  # not connected: nothing to remember
    await node.arrive("alice", "a2")  # a handshake that read no tenant
    assert told(node.bob) == []
