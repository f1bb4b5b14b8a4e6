"""The cluster's settings (ROOMLER__REDIS__*), checked at start."""

from __future__ import annotations

import re
from typing import Any

import pytest

from roomler.config import ConfigError, load_settings

pytestmark = pytest.mark.nodb


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
