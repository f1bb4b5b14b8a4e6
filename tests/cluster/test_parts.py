"""The cluster's parts on their own: the envelope format, the Lua scripts against the
machine's Redis (a key prefix of each test's own), and the Redis link."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from roomler.cluster import scripts
from roomler.cluster.dispatcher import ClusterDispatcher
from roomler.cluster.link import RedisLink, RedisUnavailable
from roomler.cluster.presence import ClusterPresence, presence_frame
from roomler.cluster.wire import CONNECTION, USERS, Envelope, node_channel
from roomler.config import ConfigError, load_settings
from roomler.realtime.connection import Connection
from roomler.realtime.storage import WsStorage
from tests.cluster.conftest import RedisTarget, free_port

pytestmark = pytest.mark.nodb

# --- the envelope ------------------------------------------------------------------------------


def test_envelope_round_trip_keeps_a_body_with_newlines() -> None:
    envelope = Envelope(USERS, ("u1", "u2"), "conn-9", '{"a":"x\\ny"}\nsecond line')
    text = envelope.serialize()
    assert text == 'u\nu1,u2\nconn-9\n{"a":"x\\ny"}\nsecond line'
    assert Envelope.parse(text) == envelope
    assert Envelope.parse("c\nconn-1\n\n{}") == Envelope(CONNECTION, ("conn-1",), "", "{}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("u\nu1\n", "cluster envelope has fewer than four fields"),
        ("", "cluster envelope has fewer than four fields"),
        ("z\nu1\n\n{}", "cluster envelope has unknown kind 'z'"),
        ("u\n\n\n{}", "cluster envelope has no targets"),
    ],
)
def test_envelope_parse_rejects_garbage_precisely(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        Envelope.parse(text)


def test_envelope_refuses_targets_that_would_change_its_meaning() -> None:
    with pytest.raises(ValueError, match="has a comma or newline"):
        Envelope(USERS, ("a,b",), "", "{}").serialize()
    with pytest.raises(ValueError, match="no targets"):
        Envelope(USERS, (), "", "{}").serialize()


# --- the scripts, on the machine's Redis ---------------------------------------------------------


@pytest.fixture
async def redis(shared_redis: RedisTarget) -> AsyncIterator[Redis]:
    client = Redis.from_url(shared_redis.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def run(redis: Redis, prefix: str, script: scripts.Script, *argv: str | int) -> Any:
    return await redis.eval(script.source, 0, prefix, *argv)


async def test_a_user_with_tabs_on_two_nodes_is_announced_once_each_way(
    redis: Redis, shared_redis: RedisTarget
) -> None:
    p = shared_redis.prefix
    assert await run(redis, p, scripts.ARRIVE, "A", "c1", "u", "dnd") == ["dnd", "dnd", 1]
    assert await run(redis, p, scripts.ARRIVE, "B", "c2", "u", "online") == ["dnd", "dnd", 0]
    assert await run(redis, p, scripts.ARRIVE, "B", "c2", "u", "online") == ["dnd", "dnd", 0]
    assert await redis.hgetall(f"{p}user:u") == {"A": "1", "B": "1"}
    assert await run(redis, p, scripts.SEEN, "v", "u", "nobody") == ["dnd", "offline"]

    assert await run(redis, p, scripts.CHOOSE, "u", "invisible") == ["dnd", "offline", 1]
    assert await run(redis, p, scripts.SEEN, "v", "u") == ["offline"]
    assert await run(redis, p, scripts.SEEN, "u", "u") == ["invisible"]
    assert await run(redis, p, scripts.CHOOSE, "u", "online") == ["invisible", "online", 1]

    assert await run(redis, p, scripts.DEPART, "A", "c1", "u") == ["online", 0]
    assert await run(redis, p, scripts.DEPART, "A", "c1", "u") == ["online", 0]  # idempotent
    assert await run(redis, p, scripts.DEPART, "B", "c2", "u") == ["offline", 1]
    assert await redis.exists(f"{p}user:u", f"{p}chosen", f"{p}told") == 0


async def test_a_dead_node_is_reaped_once_with_its_users_and_typing(
    redis: Redis, shared_redis: RedisTarget
) -> None:
    p = shared_redis.prefix
    for node in ("A", "B"):
        assert await run(redis, p, scripts.HEARTBEAT, node, 60_000) == 1
    await run(redis, p, scripts.ARRIVE, "A", "a1", "only-on-a", "online")
    await run(redis, p, scripts.ARRIVE, "A", "a2", "on-both", "online")
    await run(redis, p, scripts.ARRIVE, "B", "b1", "on-both", "online")
    await redis.sadd(f"{p}node:A:typing", "chan:only-on-a")
    await run(redis, p, scripts.CLAIM, "conf1", "A")

    assert await run(redis, p, scripts.SWEEP, "B") == [[], [], [], []]  # A is alive
    await redis.delete(f"{p}node:A:alive")  # its TTL ran out
    assert await run(redis, p, scripts.SWEEP, "B") == [
        ["A"],
        ["only-on-a", "offline"],
        ["chan:only-on-a"],
        ["conf1"],
    ]
    assert await run(redis, p, scripts.SWEEP, "B") == [[], [], [], []]  # exactly once
    assert await redis.hgetall(f"{p}user:on-both") == {"B": "1"}
    assert await redis.hkeys(f"{p}conns") == ["b1"]
    assert await run(redis, p, scripts.HEARTBEAT, "A", 60_000) == 1  # A learns it was reaped


async def test_route_publishes_one_envelope_per_other_node_with_its_users_only(
    redis: Redis, shared_redis: RedisTarget
) -> None:
    p = shared_redis.prefix
    for node, connection, user in [("A", "a1", "x"), ("B", "b1", "x"), ("B", "b2", "y")]:
        await run(redis, p, scripts.ARRIVE, node, connection, user, "online")
    await run(redis, p, scripts.ARRIVE, "C", "c1", "z", "online")
    pubsub = redis.pubsub()
    await pubsub.subscribe(*(node_channel(p, n) for n in "ABC"))
    for _ in range(3):
        await pubsub.get_message(timeout=1)  # the subscribe confirmations

    published = await run(redis, p, scripts.ROUTE, "A", "u", "", "b2", "FRAME", "x", "y", "n")
    assert published == 1
    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
    assert message is not None and message["channel"] == node_channel(p, "B")
    assert Envelope.parse(message["data"]) == Envelope(USERS, ("x", "y"), "b2", "FRAME")
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_a_claim_stays_with_a_live_host_and_moves_from_a_dead_one(
    redis: Redis, shared_redis: RedisTarget
) -> None:
    p = shared_redis.prefix
    await run(redis, p, scripts.HEARTBEAT, "A", 60_000)
    assert await run(redis, p, scripts.CLAIM, "c", "A") == ["A", ""]
    await run(redis, p, scripts.HOSTED, "c", "A", '{"codecs":[]}')
    assert await run(redis, p, scripts.CLAIM, "c", "B") == ["A", '{"codecs":[]}']
    assert await run(redis, p, scripts.OWNER, "c") == "A"
    await redis.delete(f"{p}node:A:alive")
    assert await run(redis, p, scripts.OWNER, "c") == ""
    assert await run(redis, p, scripts.CLAIM, "c", "B") == ["B", ""]
    await run(redis, p, scripts.RELEASE, "c", "A")  # not A's any more: no effect
    assert await redis.hget(f"{p}conf:c", "node") == "B"


# --- the link ----------------------------------------------------------------------------------


def noop(_text: str) -> None:
    return None


async def nothing() -> None:
    return None


async def test_a_link_to_nothing_refuses_at_once_and_keeps_nothing() -> None:
    link = RedisLink(
        f"redis://127.0.0.1:{free_port()}/0",
        "ch",
        scripts=(),
        on_message=noop,
        on_up=nothing,
        max_pending=100,
    )
    await link.start(wait_secs=0.3)
    try:
        assert not link.up
        assert link.send("PING") is False
        with pytest.raises(RedisUnavailable):
            await link.call("PING")
        assert link.pending == 0
    finally:
        await link.close()


async def test_a_link_runs_commands_in_order_and_bounds_its_queue(
    shared_redis: RedisTarget,
) -> None:
    link = RedisLink(
        shared_redis.url,
        shared_redis.prefix + "ch",
        scripts=scripts.ALL,
        on_message=noop,
        on_up=nothing,
        max_pending=100,
    )
    await link.start(wait_secs=5)
    key = shared_redis.prefix + "order"
    try:
        assert link.up
        # Nothing is sent before we yield: the 101st command is refused, not buffered.
        accepted = [link.send("RPUSH", key, str(i)) for i in range(101)]
        assert accepted == [True] * 100 + [False] and link.dropped == 1
        assert await link.flushed(5)
        assert link.send("RPUSH", key, "100")  # room again once the queue drained
        assert await link.call("LRANGE", key, 0, -1) == [str(i) for i in range(101)]
    finally:
        await link.close()


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        (
            {"heartbeat_secs": 6, "node_ttl_secs": 10},
            "ROOMLER__REDIS: NODE_TTL_SECS must be at least twice HEARTBEAT_SECS",
        ),
        ({"node_id": "web 1"}, "ROOMLER__REDIS__NODE_ID: String should match pattern"),
        ({"key_prefix": "a b"}, "ROOMLER__REDIS__KEY_PREFIX: String should match pattern"),
    ],
)
def test_cluster_settings_are_checked_at_start(redis: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^invalid configuration: {re.escape(message)}"):
        load_settings(redis={"url": "redis://127.0.0.1:6379/0", **redis})


# --- presence reconciliation ---------------------------------------------------------------------


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
    storage = WsStorage()
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
