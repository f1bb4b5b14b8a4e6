"""The conference layer maps ``ROOMLER__MEDIASOUP__*`` to the SFU's own pool settings."""

from __future__ import annotations

from roomler.conference.conference_media import pool_settings
from roomler.config import MediasoupSettings
from roomler.sfu import WorkerPool, WorkerPoolSettings


def test_mediasoup_config_becomes_the_pools_settings() -> None:
    config = MediasoupSettings(
        num_workers=3, listen_ip="10.0.0.5", announced_ip="1.2.3.4", rtc_min_port=40000,
        rtc_max_port=40029,
    )  # fmt: skip
    settings = pool_settings(config)
    assert settings == WorkerPoolSettings(3, "10.0.0.5", "1.2.3.4", 40000, 40029)
    pool = WorkerPool.from_settings(settings)
    assert (pool.num_workers, pool.listen_ip, pool.announced_ip) == (3, "10.0.0.5", "1.2.3.4")
