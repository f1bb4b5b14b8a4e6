"""What the benchmarks share: the machine, the processes, a lean WebSocket client, the report.

Each benchmark (`ws_fanout.py`, `cluster_fanout.py`, `join_storm.py`, `register_load.py`,
`sfu_forward.py`) is run as a script from the repository root
(`.venv/bin/python benchmarks/NAME.py`), so this module is imported by its plain name.
It holds what more than one of them needs:

- statistics: nearest-rank percentiles and a one-line summary of a series;
- the machine: its description, how busy it is (`/proc/stat`), waiting for it to go quiet,
  the open-files limit;
- load-generator processes commanded over pipes (`LoadProcesses`, `run_load_process`);
- processes: RSS and CPU seconds from `/proc`, a `roomler serve` subprocess started with
  the benchmark's settings and stopped again (`RoomlerServer`), its `/metrics` and the
  event-loop lag probe there (`LoopLag`), and a wrapper that times the server's garbage
  collections (`python benchmarks/harness.py --gc-log-run -m roomler serve`);
- `WsClient`: an RFC 6455 client as an asyncio Protocol (handshake, frame parser, masked
  sends, ping -> pong) that hands each text message and its read time to a callback --
  cheap enough that thousands of them in one process measure the server, not the client;
- the report: number formatting and ratios.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# --- statistics -------------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least `q` of them at or below it.

    `q` is a fraction (0.99 for p99); `samples` need not be sorted; none gives NaN.
    """
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


def quantiles(samples: Sequence[float], unit: str = "ms") -> str:
    """'p50 .., p95 .., p99 .., max .., mean ..' of a series, or 'no samples'."""
    if not samples:
        return "no samples"
    return (
        f"p50 {percentile(samples, 0.5):.1f} {unit}, p95 {percentile(samples, 0.95):.1f} {unit}, "
        f"p99 {percentile(samples, 0.99):.1f} {unit}, max {max(samples):.1f} {unit}, "
        f"mean {statistics.fmean(samples):.1f} {unit}"
    )


def fmt(value: float, spec: str) -> str:
    """`value` formatted with `spec`, or an em dash when it is NaN."""
    return "—" if math.isnan(value) else format(value, spec)


def ratio(a: float, b: float) -> str:
    """'a/b×' to two decimals, or an em dash when either is missing or b is 0."""
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "—"
    return f"{a / b:.2f}×"


# --- the machine ------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown CPU" when it cannot be read)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def machine_info() -> dict[str, str]:
    """The machine a figure was measured on: CPU, cores, RAM, Python, kernel."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "ram": f"{memory:.1f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def machine_line() -> str:
    info = machine_info()
    return (
        f"{info['cores']} cores ({info['cpu']}), {info['ram']} RAM, Linux {info['kernel']}, "
        f"CPython {info['python']}"
    )


def package_versions(names: Sequence[str]) -> str:
    """'name version, ...' for those of `names` that are installed."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in names:
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{name} {version(name)}")
    return ", ".join(found)


def machine_busy_secs() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat, proc(5)).

    Interrupt and softirq time are left out: on loopback most of it is the network stack
    carrying the benchmark's own traffic, which no process is charged for.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = map(int, fields[:8])
    return (user + nice + system + steal) / CLOCK_TICKS


def busy_cores(secs: float = 1.0) -> float:
    """How many cores' worth of CPU the whole machine used over the next `secs`."""
    before = machine_busy_secs()
    time.sleep(secs)
    return (machine_busy_secs() - before) / secs


def wait_for_quiet_machine(max_secs: float, quiet_cores: float = 0.15) -> float:
    """Wait (at most `max_secs`) until the machine uses under `quiet_cores`; the last reading."""
    deadline = time.monotonic() + max_secs
    while True:
        busy = busy_cores()
        if busy < quiet_cores or time.monotonic() >= deadline:
            return busy


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one (children inherit it); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# --- processes --------------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    """VmRSS of a process in KiB (/proc/PID/status); 0 once it has gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_secs(pid: int) -> float:
    """User + system CPU seconds of a process (/proc/PID/stat); 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime and stime are fields 14 and 15 of proc(5); [0] here is field 3
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The direct children of a process (the SFU workers of `roomler serve`)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(p) for p in path.read_text().split()]
    return []


def stop_process(process: subprocess.Popen[bytes], secs: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not gone after `secs`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(secs)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_http(url: str, process: subprocess.Popen[bytes], secs: float, log: Path | None) -> None:
    """Until `url` answers at all (any status), while `process` lives; bounded by `secs`."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
            raise RuntimeError(f"{process.args} exited with {process.returncode}\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.request.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.05)
    stop_process(process)
    raise RuntimeError(f"{url} did not answer within {secs:.0f} s (log: {log})")


# --- a Roomler server -------------------------------------------------------------------------

JWT_SECRET = "roomler-benchmark-secret-" + "x" * 16  # >= 32 bytes (RFC 7518 section 3.2)
SERVER_START_SECS = 60.0


@dataclass
class RoomlerServer:
    """`roomler serve` (or another ASGI server) as a subprocess of the benchmark."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    gc_log: Path | None = None  # with `gc_log_command`: the collections' timings

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kb(self) -> int:
        return rss_kb(self.process.pid)

    def cpu_secs(self) -> float:
        return cpu_secs(self.process.pid)

    def metrics(self) -> dict[str, float]:
        """Its /metrics ({} when it has none: metrics off, or not Roomler)."""
        return scrape_metrics(f"{self.base}/metrics")

    def full_collections(self) -> list[float]:
        """The seconds of each generation-2 collection so far, in order (with a GC log)."""
        return full_collections(self.gc_log) if self.gc_log is not None else []

    def stop(self) -> None:
        stop_process(self.process)


def roomler_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any ROOMLER__ setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMLER__")}
    env.update(settings)
    return env


def start_roomler(
    workdir: Path,
    settings: Mapping[str, str],
    *,
    port: int | None = None,
    command: Sequence[str] | None = None,
    log_name: str = "server.log",
    gc_log: Path | None = None,
    ready_path: str = "/health",
) -> RoomlerServer:
    """Start `roomler serve` on 127.0.0.1 with `settings` (ROOMLER__KEY: value) and wait for it.

    `command` replaces `python -m roomler serve` (a baseline server); with `gc_log`, the
    server runs under `gc_log_command` and its collections are timed into that file.
    """
    port = port or free_port(HOST)
    env = roomler_env(
        {
            "ROOMLER__APP__HOST": HOST,
            "ROOMLER__APP__PORT": str(port),
            "ROOMLER__JWT__SECRET": JWT_SECRET,
            **settings,
        }
    )
    argv = list(command) if command is not None else ["-m", "roomler", "serve"]
    if gc_log is not None:
        env[GC_LOG_ENV] = str(gc_log)
        argv = gc_log_command(argv)
    else:
        argv = [sys.executable, *argv]
    log = workdir / log_name
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=env, cwd=workdir, stdout=out, stderr=out)
    server = RoomlerServer(process, port, log, gc_log)
    wait_http(f"{server.base}{ready_path}", process, SERVER_START_SECS, log)
    return server


async def create_postgres_database(server_url: str) -> str:
    """A new, empty database on the PostgreSQL server of `server_url`; its URL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from roomler.db.engine import create_engine

    name = f"roomler_bench_{os.getpid()}_{os.urandom(3).hex()}"
    engine = create_engine(server_url)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(server_url: str, url: str) -> None:
    """Drop the database `create_postgres_database` made (its connections closed first)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from roomler.db.engine import create_engine

    engine = create_engine(server_url)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        name = make_url(url).database
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


def scrape_metrics(url: str, timeout: float = 10.0) -> dict[str, float]:
    """A Prometheus text-format page as {'name{labels}': value}; {} if it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
    except OSError:
        return {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                samples[name] = float(value)
    return samples


@dataclass(frozen=True)
class LoopLag:
    """The server's event-loop lag probe (roomler.metrics) between two scrapes.

    `max_ms` is the largest sample between them when it beat the largest before them;
    otherwise (`max_is_bound`) the smallest histogram bucket that holds all of them.
    """

    samples: int = 0
    over_100ms: int = 0  # samples later than 100 ms: stalls
    max_ms: float = math.nan
    max_is_bound: bool = False

    @classmethod
    def between(cls, before: dict[str, float], after: dict[str, float]) -> LoopLag:
        name = "roomler_event_loop_lag_samples_seconds"
        count = f"{name}_count"
        if count not in after:
            return cls()

        def delta(key: str) -> float:
            return after.get(key, 0.0) - before.get(key, 0.0)

        samples = delta(count)
        over = samples - delta(f'{name}_bucket{{le="0.1"}}')
        largest = "roomler_event_loop_lag_max_seconds"
        if after.get(largest, 0.0) > before.get(largest, 0.0):
            return cls(int(samples), int(over), 1000 * after[largest])
        bounds = sorted(
            float(key.split('le="', 1)[1].rstrip('"}'))
            for key in after
            if key.startswith(f"{name}_bucket") and "+Inf" not in key
        )
        bound = next(
            (b for b in bounds if delta(f'{name}_bucket{{le="{b}"}}') >= samples), math.inf
        )
        return cls(int(samples), int(over), 1000 * bound, max_is_bound=True)

    def describe(self) -> str:
        if self.samples == 0:
            return "—"
        return f"{'≤ ' if self.max_is_bound else ''}{self.max_ms:,.0f}"


# --- timing a server's garbage collections ----------------------------------------------------

GC_LOG_RUN = "--gc-log-run"
GC_LOG_ENV = "ROOMLER_BENCH_GC_LOG"


def gc_log_command(target: Sequence[str]) -> list[str]:
    """The command that runs `target` (`-m module args` or `script args`) with GC timing."""
    return [sys.executable, str(Path(__file__).resolve()), GC_LOG_RUN, *target]


def run_with_gc_log(target: list[str]) -> None:
    """Run `-m module args...` or `script args...` here, timing every garbage collection.

    Per generation: count, total and longest seconds, and every generation-2 collection's
    seconds in order, written to the file named by $ROOMLER_BENCH_GC_LOG twice a second,
    so the benchmark can tell how long the server stood still in the collector.
    """
    import gc
    import runpy
    import threading

    log = Path(os.environ[GC_LOG_ENV])
    stats: dict[str, dict[str, Any]] = {
        str(g): {"count": 0, "total_secs": 0.0, "max_secs": 0.0} for g in range(3)
    }
    full: list[float] = []
    stats["2"]["each"] = full
    started = [0.0]

    def timing(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        gen = stats[str(info["generation"])]
        gen["count"] += 1
        gen["total_secs"] += took
        gen["max_secs"] = max(gen["max_secs"], took)
        if info["generation"] == 2:
            full.append(took)

    def dump() -> None:
        while True:
            time.sleep(0.5)
            scratch = log.with_suffix(".tmp")
            scratch.write_text(json.dumps(stats))
            scratch.replace(log)

    gc.callbacks.append(timing)
    threading.Thread(target=dump, daemon=True).start()
    if target[0] == "-m":
        sys.argv = target[1:]
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = target
        runpy.run_path(target[0], run_name="__main__")


def full_collections(gc_log: Path) -> list[float]:
    """The seconds of each generation-2 collection recorded in `gc_log` so far."""
    try:
        each: list[float] = json.loads(gc_log.read_text())["2"]["each"]
        return each
    except (OSError, ValueError, KeyError):
        return []


# --- load-generator processes -----------------------------------------------------------------

STOP = "stop"
LoadTarget = Callable[..., None]
Handler = Callable[[str, Any], Awaitable[Any]]


class LoadProcesses:
    """Load-generator processes (spawned), each commanded over its own pipe.

    Process k runs `target(pipe, *args[k])`, typically `run_load_process`. The parent
    sends `(command, payload)` and each process answers once per command; an answer that
    is a `LoadError` is raised here, so a failing generator never leaves the parent waiting.
    """

    def __init__(self, target: LoadTarget, args: Sequence[tuple[Any, ...]]) -> None:
        context = mp.get_context("spawn")
        self.pipes: list[Any] = []
        self.processes: list[Any] = []
        for process_args in args:
            parent, child = context.Pipe()
            process = context.Process(target=target, args=(child, *process_args), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def cpu_secs(self) -> float:
        return sum(cpu_secs(pid) for pid in self.pids)

    def send(self, command: str, payloads: Sequence[Any] | None = None) -> None:
        """`command` to every process, with its own payload (or None)."""
        for k, pipe in enumerate(self.pipes):
            pipe.send((command, None if payloads is None else payloads[k]))

    def reply(self, k: int, timeout: float) -> Any:
        pipe = self.pipes[k]
        if not pipe.poll(timeout):
            raise RuntimeError(f"load generator {k} did not answer within {timeout:.0f} s")
        answer = pipe.recv()
        if isinstance(answer, LoadError):
            raise RuntimeError(f"load generator {k} failed: {answer.text}")
        return answer

    def ask_one(self, k: int, command: str, payload: Any, timeout: float) -> Any:
        """`command` to process k alone; its answer."""
        self.pipes[k].send((command, payload))
        return self.reply(k, timeout)

    def ask(self, command: str, payloads: Sequence[Any] | None, timeout: float) -> list[Any]:
        """`command` to all at once; their answers in process order."""
        self.send(command, payloads)
        return [self.reply(k, timeout) for k in range(len(self.pipes))]

    def close(self, timeout: float = 30.0) -> None:
        """Ask each to stop (it closes its connections), then make sure it has gone."""
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send((STOP, None))
        for pipe in self.pipes:
            with contextlib.suppress(OSError, EOFError):
                if pipe.poll(timeout):
                    pipe.recv()
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)


@dataclass(frozen=True)
class LoadError:
    """What a load process answers instead when a command failed."""

    text: str


def run_load_process(pipe: Any, handler: Callable[[], Awaitable[Handler]]) -> None:
    """The body of a load process: uvloop, then answer commands until `stop`.

    `handler()` builds the process's state in its event loop and returns the coroutine
    function that answers one `(command, payload)`; it is called with `stop` last, to
    close what it holds, before the process answers that too.
    """
    raise_fd_limit()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and stops us
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def serve() -> None:
        handle = await handler()
        while True:
            command, payload = await asyncio.to_thread(pipe.recv)
            try:
                answer = await handle(command, payload)
            except Exception as exc:  # reported to the parent, which raises it
                answer = LoadError(f"{command}: {type(exc).__name__}: {exc}")
            pipe.send(answer)
            if command == STOP:
                return

    asyncio.run(serve())


# --- a lean WebSocket client (RFC 6455) -------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def mask_payload(payload: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte masking key (RFC 6455 section 5.3), one big-int operation."""
    n = len(payload)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode_client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return header + key + mask_payload(payload, key)


def accept_value(key: str) -> bytes:
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest())


class WsClient(asyncio.Protocol):
    """A WebSocket client connection that hands each text message to `on_text`.

    `on_text(payload, now_ns)` gets the message bytes and the monotonic time at which the
    read that completed it returned. Pings are answered (RFC 6455 section 5.5.2); a close
    frame is answered and its code kept in `close_code` (-1: the client gave up).
    """

    def __init__(self, target: str, port: int, on_text: Callable[[bytes, int], None]) -> None:
        self.target = target
        self.port = port
        self.on_text = on_text
        self.transport: Any = None  # asyncio's or uvloop's TCP transport
        self.open = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._key = base64.b64encode(os.urandom(16)).decode()
        self._buffer = bytearray()
        self._handshaken = False
        self._fragments: list[bytes] = []
        self.failure = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(  # type: ignore[attr-defined]
            f"GET {self.target} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {self._key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.failure and self.close_code is None:
            self.failure = f"connection lost ({exc})"
        if not self.lost.done():
            self.lost.set_result(None)

    def send_text(self, payload: bytes) -> None:
        if self.transport is not None and self.open:
            self.transport.write(encode_client_frame(OP_TEXT, payload))

    def send_json(self, message: Any) -> None:
        self.send_text(json.dumps(message).encode())

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        self._buffer += data
        if not self._handshaken and not self._finish_handshake():
            return
        try:
            self._parse_frames(now)
        except ValueError as exc:
            self._fail(str(exc))

    def _finish_handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > 16384:
                self._fail("handshake response too long")
            return False
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        status = head[0].split(" ", 2)
        if len(status) < 2 or status[1] != "101":
            self._fail(f"upgrade refused: {head[0]}")
            return False
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head)}
        if headers.get("sec-websocket-accept", "").encode() != accept_value(self._key):
            self._fail("wrong Sec-WebSocket-Accept (RFC 6455 section 4.2.2)")
            return False
        self._handshaken = self.open = True
        return True

    def _parse_frames(self, now: int) -> None:
        buf = self._buffer
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            if b1 & 0x80:
                raise ValueError("server frames must not be masked (RFC 6455 section 5.1)")
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            end = pos + head + length
            if end > size:
                break
            self._frame(b0 & 0x80, b0 & 0x0F, bytes(buf[pos + head : end]), now)
            pos = end
        del buf[:pos]

    def _frame(self, fin: int, opcode: int, payload: bytes, now: int) -> None:
        if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            if not fin:
                self._fragments.append(payload)
                return
            if self._fragments:
                payload = b"".join((*self._fragments, payload))
                self._fragments.clear()
            self.on_text(payload, now)
        elif opcode == OP_PING and self.transport is not None:
            self.transport.write(encode_client_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.close_reason = payload[2:].decode(errors="replace")
            if self.transport is not None:
                self.transport.write(encode_client_frame(OP_CLOSE, payload[:2]))
                self.transport.close()

    def _fail(self, reason: str) -> None:
        self.close_code = -1
        self.failure = reason
        if self.transport is not None:
            self.transport.abort()


if __name__ == "__main__":
    if sys.argv[1:2] == [GC_LOG_RUN]:
        run_with_gc_log(sys.argv[2:])
    else:
        sys.exit(f"usage: {sys.argv[0]} {GC_LOG_RUN} -m module args... | script args...")
