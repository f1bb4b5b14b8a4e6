"""Two nodes in cluster mode behind nginx over HTTPS (deploy/nginx.conf's shape), as the
HTTPS and rolling-restart browser tests run them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.cluster.conftest import Node, RedisTarget, StartNodes, media_settings
from tests.cluster.test_drain import wait_until_ready
from tests.web.harness import DIST_INDEX, free_port
from tests.web.test_https import HOST, Nginx, nginx_in_front_of


@asynccontextmanager
async def two_nodes_behind_nginx(
    nginx_binary: str,
    start_nodes: StartNodes,
    redis: RedisTarget,
    directory: Path,
    **settings: str,
) -> AsyncIterator[tuple[list[Node], Nginx]]:
    """Both nodes ready (their SFU workers run, as nodes a load balancer sends to), then
    nginx in front of them at `https://HOST:<port>`, their public URL."""
    if not DIST_INDEX.exists():
        pytest.fail(f"{DIST_INDEX} is missing: run `make web`")
    https_port = free_port()
    nodes = start_nodes(
        2,
        redis,
        per_node=media_settings,
        ROOMLER__APP__PUBLIC_URL=f"https://{HOST}:{https_port}",
        **settings,
    )
    await asyncio.to_thread(wait_until_ready, *nodes)
    with nginx_in_front_of(nginx_binary, directory, [n.port for n in nodes], https_port) as site:
        yield nodes, site
