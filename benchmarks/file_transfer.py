"""File transfer: uploading and downloading a 25 MB file through a real `roomler serve`.

Issue 18's benchmark for files. For each database (SQLite, and PostgreSQL when one
answers at `--postgres`) and each file storage (`local`: a directory, `database`: chunks
in the database, what a cluster uses), it starts `python -m roomler serve` on 127.0.0.1
with a fresh database, signs up a user with a workspace and a channel, then `--rounds`
times uploads `--size-mb` of random bytes (incompressible, as photos and archives are)
with `POST .../file` and downloads it with `GET .../file/{id}`, checking the bytes come back
the same. It reports per direction the throughput (MB/s, median and best round), the
server's CPU seconds per transfer and its peak RSS over its RSS before (sampled every
20 ms): streaming keeps that near one chunk, buffering would show the file's size.

One command: `python benchmarks/file_transfer.py` (`--quick`: 5 MB, 2 rounds, SQLite).
Loopback only; Linux only (/proc).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from harness import (
    create_postgres_database,
    drop_postgres_database,
    machine_line,
    start_roomler,
)

PASSWORD = "correct horse battery"
RSS_EVERY_SECS = 0.02
STEP_TIMEOUT = 300.0
MB = 1_000_000


@dataclass
class Direction:
    seconds: list[float] = field(default_factory=list)
    cpu_secs: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0

    def line(self, name: str, size: int, rss_before_mb: float) -> str:
        rates = [size / MB / s for s in self.seconds]
        cpu_ms = statistics.median(self.cpu_secs) * 1000
        return (
            f"  {name:>8}: {statistics.median(rates):6.1f} MB/s median, {max(rates):6.1f} best"
            f" ({len(rates)} rounds); server CPU {cpu_ms:.0f} ms per"
            f" transfer; server RSS {rss_before_mb:.0f} -> peak {self.peak_rss_mb:.0f} MB"
        )


@contextmanager
def peak_rss(pid: int, into: Direction) -> Iterator[None]:
    """Sample the process's VmRSS while the block runs; keep the highest in `into`."""
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            into.peak_rss_mb = max(into.peak_rss_mb, rss_mb(pid))
            stop.wait(RSS_EVERY_SECS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_secs(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def set_up(http: httpx.Client) -> tuple[dict[str, str], str]:
    """A user with a workspace and a channel: (auth headers, the channel's file URL)."""
    registered = http.post(
        "/api/auth/register",
        json={
            "email": "bench@files.example",
            "username": "bench",
            "display_name": "Bench",
            "password": PASSWORD,
            "tenant_name": "Files",
            "tenant_slug": "files",
        },
    )
    registered.raise_for_status()
    headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
    [tenant] = http.get("/api/tenant", headers=headers).json()
    channel = http.post(
        f"/api/tenant/{tenant['id']}/channel", json={"name": "files"}, headers=headers
    )
    channel.raise_for_status()
    return headers, f"/api/tenant/{tenant['id']}/channel/{channel.json()['id']}/file"


def measure(
    database_url: str | None, storage: str, size: int, rounds: int
) -> tuple[Direction, Direction, float]:
    """(upload, download, the server's RSS before the first transfer in MB); no
    `database_url`: the default, SQLite in the data directory."""
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    upload, download = Direction(), Direction()
    with tempfile.TemporaryDirectory(prefix="roomler-files-") as workdir:
        settings = {
            "ROOMLER__APP__DATA_DIR": str(Path(workdir) / "data"),
            "ROOMLER__FILES__STORAGE": storage,
            "ROOMLER__FILES__MAX_BYTES": str(max(size, 25 * 2**20)),
        }
        if database_url:
            settings["ROOMLER__DATABASE__URL"] = database_url
        server = start_roomler(Path(workdir), settings)
        try:
            with httpx.Client(base_url=server.base, timeout=STEP_TIMEOUT) as http:
                headers, files_url = set_up(http)
                rss_before = rss_mb(server.pid)
                for index in range(rounds):
                    cpu, began = cpu_secs(server.pid), time.perf_counter()
                    with peak_rss(server.pid, upload):
                        answer = http.post(
                            files_url,
                            params={"name": f"archive-{index}.bin"},
                            content=data,
                            headers=headers | {"content-type": "application/octet-stream"},
                        )
                    upload.seconds.append(time.perf_counter() - began)
                    upload.cpu_secs.append(cpu_secs(server.pid) - cpu)
                    answer.raise_for_status()
                    url = answer.json()["url"]
                    cpu, began = cpu_secs(server.pid), time.perf_counter()
                    hasher, received = hashlib.sha256(), 0
                    with (
                        peak_rss(server.pid, download),
                        http.stream("GET", url, headers=headers) as response,
                    ):
                        response.raise_for_status()
                        for chunk in response.iter_bytes():
                            hasher.update(chunk)
                            received += len(chunk)
                    download.seconds.append(time.perf_counter() - began)
                    download.cpu_secs.append(cpu_secs(server.pid) - cpu)
                    assert received == size and hasher.hexdigest() == digest, "bytes differ"
        finally:
            server.stop()
    return upload, download, rss_before


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=float, default=25.0, help="the file's size (MB, 10^6)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--storage", default="local,database", help="comma list: local, database")
    p.add_argument(
        "--postgres",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server to make a scratch database on ('' to skip)",
    )
    p.add_argument("--quick", action="store_true", help="5 MB, 2 rounds, SQLite only")
    args = p.parse_args()
    size = int((5 if args.quick else args.size_mb) * MB)
    rounds = 2 if args.quick else args.rounds
    databases = ["sqlite"] + ([] if args.quick or not args.postgres else ["postgresql"])
    print(f"file transfer of {size / MB:g} MB, {rounds} rounds; {machine_line()}")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for database in databases:
        for storage in args.storage.split(","):
            if database == "postgresql":
                try:
                    url = asyncio.run(create_postgres_database(args.postgres))
                except OSError as exc:
                    print(f"{database}: skipped, PostgreSQL does not answer ({exc})")
                    break
            else:
                url = ""
            try:
                upload, download, rss_before = measure(url or None, storage, size, rounds)
            finally:
                if url:
                    asyncio.run(drop_postgres_database(args.postgres, url))
            print(f"{database}, storage {storage}:")
            print(upload.line("upload", size, rss_before))
            print(download.line("download", size, rss_before))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
