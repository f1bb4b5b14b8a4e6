"""The login limit holds across nodes: its windows live in the shared Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter

import httpx

from tests.cluster.conftest import RedisTarget, StartNodes, register_on

# Ten real argon2id verifications (64 MiB each) on a shared, loaded machine.
HASHING_TIMEOUT = 60.0


async def test_parallel_wrong_logins_spread_over_two_nodes_stop_at_one_limit(
    start_nodes: StartNodes, shared_redis: RedisTarget
) -> None:
    nodes = start_nodes(2, shared_redis)
    name = f"target_{secrets.token_hex(3)}"
    await register_on(nodes[0], name)
    clients = [httpx.AsyncClient(base_url=n.http_url, timeout=HASHING_TIMEOUT) for n in nodes]
    try:
        replies = await asyncio.gather(
            *(
                clients[i % 2].post(
                    "/api/auth/login", json={"email": f"{name}@example.com", "password": "nope"}
                )
                for i in range(30)
            )
        )
        # Ten per account in the window, whichever node counted them.
        assert Counter(r.status_code for r in replies) == {401: 10, 429: 20}
        by_username = await clients[1].post(
            "/api/auth/login", json={"username": name, "password": "correct horse battery"}
        )
        assert by_username.status_code == 429
    finally:
        for client in clients:
            await client.aclose()
