"""Registration load: the server's RSS and another user's `/api/auth/me` latency meanwhile.

Issue 12 item 3: each registration hashes a password with argon2id (64 MiB, a core for
tens of milliseconds). This runs a real `python -m roomler serve` on 127.0.0.1 with a
fresh SQLite database, signs one user in, then for each phase:

- `burst`: `--burst` (60) anonymous registrations all at once;
- `stream`: `--total` (1,000) registrations, `--parallel` (16) at a time;

while a probe calls `GET /api/auth/me` as the signed-in user every 50 ms. It reports per
phase the answers by status, the server's peak RSS (VmRSS from /proc, sampled every
20 ms) and the probe's p50/p95/max latency. Every wait is bounded (`--deadline`).

`--server-env KEY=VALUE` sets server settings (repeatable), e.g. the sign-up limit
`ROOMLER__AUTH__SIGNUP_PER_ADDRESS=100000` to measure the hashing bound alone, and
`--pythonpath DIR` serves another checkout's `src` (to measure before a change).
Loopback only. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from harness import rss_kb, start_roomler

PROBE_EVERY_SECS = 0.05
RSS_EVERY_SECS = 0.02
PASSWORD = "correct horse battery"


@dataclass
class Phase:
    name: str
    statuses: Counter[int | str] = field(default_factory=Counter)
    probe_ms: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    seconds: float = 0.0

    def report(self, rss_before: float) -> str:
        lat = sorted(self.probe_ms) or [0.0]
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items(), key=str))
        return (
            f"{self.name:>7}: {self.seconds:6.1f} s  answers {{{answers}}}  "
            f"RSS {rss_before:.0f} -> peak {self.peak_rss_mb:.0f} MB  "
            f"/auth/me p50 {statistics.median(lat):.0f} ms, p95 {p95:.0f} ms, "
            f"max {lat[-1]:.0f} ms ({len(self.probe_ms)} probes)"
        )


async def sample_rss(pid: int, phase: Phase, stop: asyncio.Event) -> None:
    while not stop.is_set():
        phase.peak_rss_mb = max(phase.peak_rss_mb, rss_kb(pid) / 1024)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RSS_EVERY_SECS)


async def probe(http: httpx.AsyncClient, token: str, phase: Phase, stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    while not stop.is_set():
        started = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):
            await http.get("/api/auth/me", headers=headers)
            phase.probe_ms.append((time.perf_counter() - started) * 1000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_EVERY_SECS)


async def register(http: httpx.AsyncClient, phase: Phase) -> None:
    name = f"u{secrets.token_hex(6)}"
    body = {"email": f"{name}@example.com", "username": name, "display_name": name}
    try:
        reply = await http.post("/api/auth/register", json={**body, "password": PASSWORD})
        phase.statuses[reply.status_code] += 1
    except httpx.HTTPError as exc:
        phase.statuses[type(exc).__name__] += 1


async def run_phase(
    base: str, pid: int, token: str, name: str, total: int, parallel: int, deadline: float
) -> Phase:
    phase = Phase(name)
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=parallel + 4)
    async with (
        httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http,
        httpx.AsyncClient(base_url=base, timeout=60) as prober,
    ):
        watchers = [
            asyncio.create_task(sample_rss(pid, phase, stop)),
            asyncio.create_task(probe(prober, token, phase, stop)),
        ]
        started = time.monotonic()
        gate = asyncio.Semaphore(parallel)

        async def one() -> None:
            async with gate:
                if time.monotonic() < deadline:
                    await register(http, phase)

        await asyncio.wait_for(
            asyncio.gather(*(one() for _ in range(total))), max(1.0, deadline - time.monotonic())
        )
        phase.seconds = time.monotonic() - started
        await asyncio.sleep(0.3)  # the probe's view just after the load
        stop.set()
        await asyncio.gather(*watchers)
    return phase


async def main_async(args: argparse.Namespace, base: str, pid: int) -> None:
    deadline = time.monotonic() + args.deadline
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        body = {"email": "probe@example.com", "username": "probe", "display_name": "Probe"}
        reply = await http.post("/api/auth/register", json={**body, "password": PASSWORD})
        assert reply.status_code == 201, reply.text
        token = reply.json()["access_token"]
    for name, total, parallel in [
        ("burst", args.burst, args.burst),
        ("stream", args.total, args.parallel),
    ]:
        rss_before = rss_kb(pid) / 1024
        phase = await run_phase(base, pid, token, name, total, parallel, deadline)
        print(phase.report(rss_before), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=60)
    parser.add_argument("--total", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=16)
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds for the run")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--pythonpath", help="serve this source tree instead (a `src` dir)")
    args = parser.parse_args()
    env_extra = dict(item.split("=", 1) for item in args.server_env)
    with tempfile.TemporaryDirectory(prefix="register-load-") as tmp:
        extra = {"PYTHONPATH": args.pythonpath} if args.pythonpath else {}
        server = start_roomler(Path(tmp), {**env_extra, **extra}, log_name="serve.log")
        try:
            print(f"cores: {os.cpu_count()}  server env: {env_extra or '-'}", flush=True)
            asyncio.run(main_async(args, server.base, server.pid))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
