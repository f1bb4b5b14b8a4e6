"""The Redis link (cluster/link.py): refusing while down, order, a bounded queue."""

from __future__ import annotations

import pytest

from roomler.cluster import scripts
from roomler.cluster.link import RedisLink, RedisUnavailable
from tests.cluster.conftest import RedisTarget, free_port

pytestmark = pytest.mark.nodb


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
