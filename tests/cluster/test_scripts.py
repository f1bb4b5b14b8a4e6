"""The Lua scripts (cluster/scripts.py) on the machine's Redis, a key prefix per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from roomler.cluster import scripts
from roomler.cluster.wire import USERS, Envelope, node_channel
from tests.cluster.conftest import RedisTarget

pytestmark = pytest.mark.nodb


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
