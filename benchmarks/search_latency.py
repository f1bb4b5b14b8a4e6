"""Search latency over a large history: `GET /api/tenant/{tid}/search` on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/search_latency.py                       # 1,000,000 messages, both
    .venv/bin/python benchmarks/search_latency.py --messages 100000 --databases sqlite

For each database: a fresh database migrated to head; one workspace of 100 members and
100 public channels; the searcher a member of 25 of them (so a quarter of the history is
theirs to search, the rest must be filtered out); `--messages` messages spread evenly
over the channels and authors, one a second, each 6-24 words drawn from a vocabulary of
30,000 with Zipf's law (s = 1.07), as natural text is. The messages are bulk-loaded, not
posted through the API: SQLite with one `executemany` in one transaction (the FTS5 index
kept by its triggers as it goes), PostgreSQL with `COPY` (the GIN index dropped before and
built after). Then a real `roomler serve` on 127.0.0.1 answers, one at a time over one
keep-alive connection, `--queries` searches of each kind below, after a warm-up; the
figures are the client's wall-clock latency of the whole request (a first page: 20
messages, and people and channels when there is no filter).

    common     one of the 20 most frequent words (in ~5-35% of messages)
    medium     a word of rank 200-2,000
    rare       a word of rank 10,000-30,000 (a few dozen messages)
    two        two medium words
    phrase     two frequent words next to each other, quoted
    prefix     a medium word typed half (its first 3-4 letters: a prefix match)
    from       from:@member and a medium word
    in         in:#channel and a medium word
    none       a word in no message
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import itertools
import json
import os
import random
import secrets
import sqlite3
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness import (
    HOST,
    JWT_SECRET,
    fmt,
    machine_line,
    percentile,
    start_roomler,
)

USERS = 100
CHANNELS = 100
SEARCHER_CHANNELS = 25
VOCABULARY = 30_000
ZIPF_S = 1.07
WORDS_PER_MESSAGE = (6, 24)
CHUNK = 50_000
KINDS = ("common", "medium", "rare", "two", "phrase", "prefix", "from", "in", "none")
MESSAGE_COLUMNS = (
    "id", "tenant_id", "channel_id", "author_id", "content", "message_type", "is_edited",
    "is_pinned", "reply_count", "created_at", "updated_at",
)  # fmt: skip


@dataclass
class Workspace:
    tenant_id: str
    user_ids: list[str]
    usernames: list[str]
    channel_ids: list[str]
    channel_names: list[str]


def make_vocabulary(rng: random.Random) -> list[str]:
    """Distinct lower-case words of 4-9 letters (none a filter keyword)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    ordered: list[str] = []
    while len(ordered) < VOCABULARY:
        word = "".join(rng.choice(letters) for _ in range(rng.randint(4, 9)))
        if word not in words:
            words.add(word)
            ordered.append(word)
    return ordered


def zipf_weights() -> list[float]:
    total = 0.0
    cumulative = []
    for rank in range(1, VOCABULARY + 1):
        total += 1 / rank**ZIPF_S
        cumulative.append(total)
    return cumulative


def make_id(moment: datetime, serial: int) -> str:
    """ObjectId-style, as roomler.ids makes them: seconds, 5 fixed bytes, a counter."""
    return f"{int(moment.timestamp()):08x}{'be7c4a11e0'}{serial & 0xFFFFFF:06x}"


def workspace_rows() -> tuple[Workspace, dict[str, list[dict[str, object]]]]:
    from roomler.auth.passwords import hash_password

    now = datetime.now(UTC)
    serial = itertools.count()
    users = [make_id(now, next(serial)) for _ in range(USERS)]
    names = [f"member{i}" for i in range(USERS)]
    tenant = make_id(now, next(serial))
    channels = [make_id(now, next(serial)) for _ in range(CHANNELS)]
    channel_names = [f"channel{i}" for i in range(CHANNELS)]
    password = hash_password("search-benchmark")
    rows: dict[str, list[dict[str, object]]] = {
        "users": [
            {"id": uid, "email": f"{name}@bench.test", "username": name,
             "display_name": name.title(), "password_hash": password, "presence": "invisible",
             "created_at": now, "updated_at": now}
            for uid, name in zip(users, names, strict=True)
        ],
        "tenants": [
            {"id": tenant, "name": "Bench", "slug": "bench", "owner_id": users[0],
             "created_at": now}
        ],
        "tenant_members": [
            {"id": make_id(now, next(serial)), "tenant_id": tenant, "user_id": uid,
             "role": "owner" if i == 0 else "member", "joined_at": now}
            for i, uid in enumerate(users)
        ],
        "channels": [
            {"id": cid, "tenant_id": tenant, "name": name, "path": name, "channel_type": "text",
             "is_private": False, "member_count": USERS if i < SEARCHER_CHANNELS else USERS - 1,
             "created_by": users[0], "created_at": now, "updated_at": now}
            for i, (cid, name) in enumerate(zip(channels, channel_names, strict=True))
        ],
        # Everyone is in every channel, except the searcher (user 0): only the first 25.
        "channel_members": [
            {"id": make_id(now, next(serial)), "tenant_id": tenant, "channel_id": cid,
             "user_id": uid, "joined_at": now}
            for i, cid in enumerate(channels)
            for u, uid in enumerate(users)
            if u != 0 or i < SEARCHER_CHANNELS
        ],
    }  # fmt: skip
    return Workspace(tenant, users, names, channels, channel_names), rows


def message_chunks(
    workspace: Workspace, total: int, vocabulary: list[str], rng: random.Random
) -> Iterator[list[tuple[object, ...]]]:
    """Messages in chunks, oldest first, one a second ending now."""
    weights = zipf_weights()
    start = datetime.now(UTC) - timedelta(seconds=total)
    low, high = WORDS_PER_MESSAGE
    for first in range(0, total, CHUNK):
        count = min(CHUNK, total - first)
        lengths = [rng.randint(low, high) for _ in range(count)]
        words = rng.choices(vocabulary, cum_weights=weights, k=sum(lengths))
        chunk = []
        position = 0
        for offset, length in enumerate(lengths):
            serial = first + offset
            moment = start + timedelta(seconds=serial)
            content = " ".join(words[position : position + length]).capitalize() + "."
            position += length
            chunk.append(
                (
                    make_id(moment, serial),
                    workspace.tenant_id,
                    workspace.channel_ids[serial % CHANNELS],
                    workspace.user_ids[rng.randrange(USERS)],
                    content,
                    "default",
                    False,
                    False,
                    0,
                    moment,
                    moment,
                )
            )
        yield chunk


# --- loading --------------------------------------------------------------------------------


def sqlite_time(moment: object) -> object:
    """How SQLAlchemy stores a UTC datetime in SQLite (UtcDateTime: naive, in UTC)."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


def load_sqlite(path: Path, rows: dict[str, list[dict[str, object]]], chunks: Iterator) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA synchronous=OFF")
        for table, table_rows in rows.items():
            columns = list(table_rows[0])
            db.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})",
                [tuple(sqlite_time(r[c]) for c in columns) for r in table_rows],
            )
        insert = (
            f"INSERT INTO messages ({', '.join(MESSAGE_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in MESSAGE_COLUMNS)})"
        )
        for chunk in chunks:
            db.executemany(insert, [tuple(sqlite_time(v) for v in row) for row in chunk])
        db.commit()
        db.execute("ANALYZE")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def load_postgres(
    url: str, rows: dict[str, list[dict[str, object]]], chunks: Iterator
) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for table, table_rows in rows.items():
            columns = list(table_rows[0])
            records = [tuple(r[c] for c in columns) for r in table_rows]
            await connection.copy_records_to_table(table, records=records, columns=columns)
        await connection.execute("DROP INDEX ix_messages_search_vector")
        for chunk in chunks:
            await connection.copy_records_to_table(
                "messages", records=chunk, columns=list(MESSAGE_COLUMNS)
            )
        await connection.execute("SET maintenance_work_mem = '512MB'")
        await connection.execute(
            "CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)"
        )
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def postgres_database(server_url: str, name: str, *, drop: bool = False) -> None:
    import asyncpg

    connection = await asyncpg.connect(server_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        if drop:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


# --- querying -------------------------------------------------------------------------------


def queries(
    kind: str, count: int, vocabulary: list[str], ws: Workspace, rng: random.Random
) -> list[str]:
    medium = vocabulary[200:2000]
    made: list[str] = []
    for i in range(count):
        if kind == "common":
            made.append(vocabulary[i % 20])
        elif kind == "medium":
            made.append(rng.choice(medium))
        elif kind == "rare":
            made.append(rng.choice(vocabulary[10_000:]))
        elif kind == "two":
            made.append(f"{rng.choice(medium)} {rng.choice(medium)}")
        elif kind == "phrase":
            made.append(f'"{vocabulary[rng.randrange(10)]} {vocabulary[rng.randrange(10)]}"')
        elif kind == "prefix":
            word = rng.choice([w for w in medium if len(w) >= 6])
            made.append(word[: rng.choice((3, 4))])
        elif kind == "from":
            made.append(f"from:@{rng.choice(ws.usernames)} {rng.choice(medium)}")
        elif kind == "in":
            made.append(
                f"in:#{ws.channel_names[rng.randrange(SEARCHER_CHANNELS)]} {rng.choice(medium)}"
            )
        else:
            made.append(f"qqzx{secrets.token_hex(3)}")
    return made


@dataclass
class Timing:
    kind: str
    latencies_ms: list[float]
    results: list[int]


def measure(
    port: int, token: str, tenant_id: str, batches: dict[str, list[str]], warmup: list[str]
) -> list[Timing]:
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}

    def ask(q: str) -> tuple[float, int]:
        path = f"/api/tenant/{tenant_id}/search?" + urllib.parse.urlencode({"q": q})
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"{q!r}: {response.status} {body[:200]!r}")
        return elapsed, len(json.loads(body)["messages"])

    for q in warmup:
        ask(q)
    timings = []
    for kind, batch in batches.items():
        answers = [ask(q) for q in batch]
        timings.append(Timing(kind, [a[0] for a in answers], [a[1] for a in answers]))
    connection.close()
    return timings


def report(
    database: str, messages: int, load_secs: float, size: str, timings: list[Timing]
) -> None:
    print(f"\n{database}: {messages:,} messages loaded in {load_secs:.0f} s, {size}")
    print(f"{'kind':8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'results':>8}")
    for t in timings:
        print(
            f"{t.kind:8} {fmt(percentile(t.latencies_ms, 0.5), '8.1f')} "
            f"{fmt(percentile(t.latencies_ms, 0.99), '8.1f')} {max(t.latencies_ms):8.1f} "
            f"{sum(t.results) / len(t.results):8.1f}"
        )
    everything = [x for t in timings for x in t.latencies_ms]
    print(
        f"{'all':8} {fmt(percentile(everything, 0.5), '8.1f')} "
        f"{fmt(percentile(everything, 0.99), '8.1f')} {max(everything):8.1f}"
    )


def run(database: str, args: argparse.Namespace, workdir: Path) -> None:
    from roomler.auth.tokens import TokenIssuer
    from roomler.db.migrate import upgrade

    rng = random.Random(args.seed)
    vocabulary = make_vocabulary(rng)
    workspace, rows = workspace_rows()
    chunks = message_chunks(workspace, args.messages, vocabulary, rng)
    name = f"roomler_bench_search_{os.getpid()}"
    if database == "sqlite":
        path = workdir / "search.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        asyncio.run(postgres_database(args.postgres, name))
        url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        started = time.monotonic()
        if database == "sqlite":
            load_sqlite(path, rows, chunks)
            size = f"database file {path.stat().st_size / 2**20:,.0f} MiB"
        else:
            asyncio.run(load_postgres(url, rows, chunks))
            size = asyncio.run(postgres_size(url))
        load_secs = time.monotonic() - started
        print(f"{database}: loaded in {load_secs:.0f} s ({size})", flush=True)
        issuer = TokenIssuer(JWT_SECRET, "roomler", access_ttl=6 * 3600, refresh_ttl=86400)
        token = issuer.issue(workspace.user_ids[0], "access")
        batches = {k: queries(k, args.queries, vocabulary, workspace, rng) for k in KINDS}
        warmup = [q for k in KINDS for q in queries(k, 3, vocabulary, workspace, rng)]
        server = start_roomler(
            workdir,
            {"ROOMLER__DATABASE__URL": url, "ROOMLER__APP__DATA_DIR": str(workdir / "data")},
            log_name=f"{database}.log",
        )
        try:
            timings = measure(server.port, token, workspace.tenant_id, batches, warmup)
        finally:
            server.stop()
        report(database, args.messages, load_secs, size, timings)
    finally:
        if database == "postgresql":
            asyncio.run(postgres_database(args.postgres, name, drop=True))


async def postgres_size(url: str) -> str:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        table = await connection.fetchval("SELECT pg_total_relation_size('messages')")
        index = await connection.fetchval("SELECT pg_relation_size('ix_messages_search_vector')")
    finally:
        await connection.close()
    return f"messages {table / 2**20:,.0f} MiB with indexes, of which GIN {index / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100, help="of each kind")
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument(
        "--postgres",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="a server where a throw-away database may be created",
    )
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    print(machine_line(), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="roomler-search-") as tmp:
        for database in args.databases:
            run(database, args, Path(tmp))
            print(f"load average {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
