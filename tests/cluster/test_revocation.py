"""Access that ends takes the user out of a room hosted by another node.

Two `roomler serve` processes: the call's room is hosted by node 1, where Owen (the owner)
and Alice are connected; Bob's WebSocket is on node 2, and so are his transports (a router
node 1 drives on node 2's worker, piped to node 1's), a real ICE/DTLS/SRTP peer. The
revoking REST request goes to node 2, which does not host the room: the revocation is
carried to node 1, which closes Bob's transports on node 2 (tests/conference/revocation.py
has the scenario and the assertions).
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.cluster.conftest import (
    FRAME_TIMEOUT,
    RedisTarget,
    StartNodes,
    make_users,
    media_settings,
    open_tab,
    port_range,
    settle,
)
from tests.conference.conftest import MediaClient
from tests.conference.revocation import (
    CHANNEL_DELETED,
    REVOCATIONS,
    Rest,
    Revocation,
    assert_revoked,
    assert_transports_closed,
    mid_call,
    next_media,
    private_conference,
    refused,
)
from tests.realtime.conftest import add_tenant

pytestmark = pytest.mark.nodb  # brings its own PostgreSQL database: one run is enough


@pytest.mark.parametrize("revocation", [*REVOCATIONS, CHANNEL_DELETED], ids=lambda r: r.name)
async def test_a_revocation_on_another_node_reaches_the_hosting_node(
    revocation: Revocation,
    start_nodes: StartNodes,
    shared_redis: RedisTarget,
    cluster_db: AsyncEngine,
) -> None:
    n1, n2 = start_nodes(2, shared_redis, per_node=media_settings)
    owner, alice, bob = await make_users(n1, "owner", "alice", "bob")
    tenant_id = await add_tenant(cluster_db, owner, alice, bob)
    async with (
        httpx.AsyncClient(base_url=n1.http_url, timeout=FRAME_TIMEOUT * 2) as on_n1,
        httpx.AsyncClient(base_url=n2.http_url, timeout=FRAME_TIMEOUT * 2) as on_n2,
    ):
        channel_id, conference_id = await private_conference(
            Rest(on_n1, tenant_id), owner, alice, bob
        )
        tabs = [await open_tab(n1, owner), await open_tab(n1, alice), await open_tab(n2, bob)]
        await settle(*tabs)
        call = await mid_call(conference_id, *(MediaClient(tab.client) for tab in tabs))
        try:
            # Bob's transports are on his own node, on a router node 1 (the host) drives there.
            assert set(call.bob_ports) <= set(port_range(2))
            await revocation.act(Rest(on_n2, tenant_id), channel_id, owner, bob)
            if revocation is CHANNEL_DELETED:
                for client in (call.owner, call.alice, call.bob):
                    assert await next_media(client) == {
                        "type": "media:room_closed",
                        "data": {"conference_id": conference_id, "reason": "channel_deleted"},
                    }
                await assert_transports_closed(*call.peers, ports=call.bob_ports)
                error = await refused(call.bob, "media:join")
                assert error["message"] == f"conference {conference_id} is ended, not in progress"
            else:
                await assert_revoked(call, bob, revocation.reason)
        finally:
            call.close()
