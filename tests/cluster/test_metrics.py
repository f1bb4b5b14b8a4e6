"""`/metrics` of two `roomler serve` nodes: the Redis link and the envelopes between them."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.cluster.conftest import (
    FRAME_TIMEOUT,
    RedisTarget,
    StartNodes,
    is_type,
    make_users,
    open_tab,
    settle,
)
from tests.metrics_scrape import Samples, scrape, value
from tests.realtime.conftest import add_channel, add_tenant

pytestmark = pytest.mark.nodb  # brings its own PostgreSQL database: one run is enough


async def scrape_node(url: str) -> Samples:
    async with httpx.AsyncClient(base_url=url, timeout=FRAME_TIMEOUT) as http:
        return await scrape(http)


async def test_the_redis_link_and_envelopes_are_counted(
    start_nodes: StartNodes, shared_redis: RedisTarget, cluster_db: AsyncEngine
) -> None:
    n1, n2 = start_nodes(2, shared_redis, ROOMLER__METRICS__ENABLED="true")
    alice, bob = await make_users(n1, "alice", "bob")
    tenant_id = await add_tenant(cluster_db, alice, bob)
    channel_id = await add_channel(cluster_db, tenant_id, alice, bob)
    bob_tab = await open_tab(n2, bob)
    await settle(bob_tab)
    before = [await scrape_node(node.http_url) for node in (n1, n2)]
    for samples in before:
        assert value(samples, "roomler_redis_link_up") == 1
        assert value(samples, "roomler_redis_pending_commands") >= 0
        assert value(samples, "roomler_redis_commands_sent_total") > 0  # its resync at start

    url = f"/api/tenant/{tenant_id}/channel/{channel_id}/message"
    async with httpx.AsyncClient(base_url=n1.http_url, timeout=FRAME_TIMEOUT) as http:
        for number in range(3):
            posted = await http.post(url, json={"content": f"m{number}"}, headers=alice.headers)
            assert posted.status_code == 201, posted.text
    await bob_tab.wait_for(is_type("message:create", content="m2"))

    n1_after, n2_after = [await scrape_node(node.http_url) for node in (n1, n2)]
    sent = "roomler_redis_commands_sent_total"
    received = "roomler_redis_envelopes_in_total"
    assert value(n1_after, sent) >= value(before[0], sent) + 3
    assert value(n2_after, received) >= value(before[1], received) + 3
    assert (
        value(n2_after, "roomler_websocket_deliveries_total")
        >= value(before[1], "roomler_websocket_deliveries_total") + 3
    )
