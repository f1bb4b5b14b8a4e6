"""HTTPS and WSS behind nginx in front of two nodes in cluster mode (deploy/nginx.conf).

The same browser steps as tests/web/test_https.py, with two `roomler serve` nodes (shared
PostgreSQL and Redis) in nginx's upstream block: nginx spreads the requests and the
WebSocket upgrades over both, with no stickiness, and the people still sign in, chat and
see each other's video.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.cluster.behind_nginx import two_nodes_behind_nginx
from tests.cluster.conftest import RedisTarget, StartNodes
from tests.web.test_https import (  # noqa: F401  (fixtures used by the test here)
    browser,
    chat_and_call_over_https,
    close_all,
    nginx_binary,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.nodb]


async def test_two_nodes_behind_nginx_over_https(
    nginx_binary: str,  # noqa: F811
    browser: Browser,  # noqa: F811
    start_nodes: StartNodes,
    shared_redis: RedisTarget,
    tmp_path: Path,
) -> None:
    nginx = tmp_path / "nginx"
    async with two_nodes_behind_nginx(nginx_binary, start_nodes, shared_redis, nginx) as (
        nodes,
        site,
    ):
        users = await chat_and_call_over_https(site, browser)
        await close_all(users)
        # Round robin: both nodes answered requests that came through nginx. Which node
        # holds each WebSocket is nginx's choice (cross-node delivery: test_events.py).
        for node in nodes:
            assert node.log_lines("roomler.access"), node.log_tail()
        upgrades = [n.log_lines('"WebSocket /ws?token=[redacted]" [accepted]') for n in nodes]
        assert sum(len(lines) for lines in upgrades) >= 2, upgrades
