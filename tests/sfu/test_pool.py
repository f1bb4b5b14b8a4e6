"""Worker processes, the WorkerPool and the web-process proxies, with real subprocesses.

The worker runs `FakeHandler` (below) in place of the engine, so this layer is
tested on its own; `test_engine_router_and_transport_through_the_pool` runs the
real engine once it exists.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from roomler.sfu import Consumer, Producer, Router, WebRtcTransport, WorkerPool
from roomler.sfu.channel import Channel, ChannelClosedError, RequestFailedError
from roomler.sfu.pool import WorkerPoolSettings, describe_exit, split_port_range
from roomler.sfu.proxies import InvalidStateError, Worker

FAKE_HANDLER = f"{__name__}:FakeHandler"
# The directory from which `__name__` is importable, for the worker processes.
IMPORT_ROOT = Path(__file__).resolve().parents[len(__name__.split(".")) - 1]
CLOSE_MARK_ENV = "ROOMLER_TEST_FAKE_HANDLER_CLOSE_MARK"


class FakeHandler:
    """Stands in for the engine's WorkerHandler inside a real worker process."""

    def __init__(self, emit: Callable[[str, str, dict[str, Any]], None], loop: Any) -> None:
        self.emit = emit
        self.consumers_of: dict[str, list[str]] = {}

    async def handle(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        if method == "worker.dump":
            return {"engine": "fake"}  # merged into the worker's own dump
        if method == "router.create":
            return {"rtp_capabilities": {"codecs": [{"mimeType": "audio/opus"}]}}
        if method == "router.create_webrtc_transport":
            return self._transport(data)
        if method == "transport.produce":
            return {"type": "simple"}
        if method == "transport.consume":
            self.consumers_of.setdefault(data["producer_id"], []).append(data["consumer_id"])
            return {"kind": "video", "rtp_parameters": {"mid": "0"}, "producer_paused": False}
        if method in ("producer.close", "producer.pause"):
            # Like the engine: the consumers of the producer hear about it.
            event = (
                "consumer.producerclose" if method == "producer.close" else "consumer.producerpause"
            )
            for consumer_id in self.consumers_of.get(data["producer_id"], []):
                self.emit(event, consumer_id, {})
            return {}
        return await self._test_method(method, data)

    async def _test_method(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        if method.partition(".")[0] in ("router", "transport", "producer", "consumer"):
            return {}  # the rest of the contract: nothing to answer
        if not method.startswith("test."):
            raise ValueError(f"unknown method {method!r}")
        if method == "test.sleep":
            await asyncio.sleep(data["seconds"])
        elif method == "test.emit":
            self.emit(data["event"], data["target"], data.get("data", {}))
        elif method == "test.exit":
            os._exit(data["code"])
        elif method == "test.log":
            logging.getLogger("fake").warning("%s", data["text"])
        elif method == "test.garbage":
            # Bytes on the channel that are not a frame of JSON.
            channel_fd = int(sys.argv[sys.argv.index("--fd") + 1])
            os.write(channel_fd, b"\x00\x00\x00\x03abc")
        elif method == "test.fail":
            raise ValueError(f"bad input: {data.get('what')}")
        return {"method": method, "pid": os.getpid()}

    def _transport(self, data: dict[str, Any]) -> dict[str, Any]:
        ip = data["announced_ip"] or data["listen_ip"]
        candidate = {"foundation": "udpcandidate", "priority": 1, "ip": ip, "address": ip}
        candidate.update(port=data["port_min"], type="host", protocol="udp")
        return {
            "id": data["transport_id"],
            "ice_parameters": {"usernameFragment": "u", "password": "p", "iceLite": True},
            "ice_candidates": [candidate],
            "dtls_parameters": {"role": "auto", "fingerprints": []},
        }

    async def close(self) -> None:
        mark = os.environ.get(CLOSE_MARK_ENV)
        if mark:
            Path(mark).write_text("closed")


@pytest.fixture(autouse=True)
def _importable_fake_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(IMPORT_ROOT), path])))


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(2, "127.0.0.1", None, 41000, 41009, handler=FAKE_HANDLER)
    async with asyncio.timeout(20):
        await pool.start()
    yield pool
    async with asyncio.timeout(20):
        await pool.close()


def _worker_processes() -> set[int]:
    """Live (non-zombie) `roomler.sfu.worker` processes whose parent is this process."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid() and state != "Z" and b"roomler.sfu.worker" in cmdline:
            found.add(int(entry.name))
    return found


def _is_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


async def _until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


# --- pure helpers --------------------------------------------------------------------------


def test_port_range_is_split_into_disjoint_shares() -> None:
    assert split_port_range(40000, 49999, 2) == [(40000, 44999), (45000, 49999)]
    shares = split_port_range(40000, 40010, 3)
    assert shares == [(40000, 40003), (40004, 40007), (40008, 40010)]
    ports = [port for low, high in shares for port in range(low, high + 1)]
    assert ports == list(range(40000, 40011))  # every port once, none shared
    assert split_port_range(5000, 5000, 1) == [(5000, 5000)]


def test_port_range_errors() -> None:
    with pytest.raises(ValueError, match="has 2 ports, fewer than 3 workers"):
        split_port_range(40000, 40001, 3)
    with pytest.raises(ValueError, match="at least 1"):
        split_port_range(40000, 40001, 0)
    with pytest.raises(ValueError, match="not a valid UDP port range"):
        split_port_range(50000, 40000, 1)
    with pytest.raises(ValueError, match="fewer than 3 workers"):
        WorkerPool(3, rtc_min_port=40000, rtc_max_port=40001)


def test_exit_descriptions() -> None:
    assert describe_exit(-9) == "killed by signal 9 (SIGKILL)"
    assert describe_exit(-15) == "killed by signal 15 (SIGTERM)"
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(0) == "exited with code 0"


def test_pool_from_settings() -> None:
    settings = WorkerPoolSettings(
        num_workers=3, listen_ip="10.0.0.5", announced_ip="1.2.3.4", rtc_min_port=40000,
        rtc_max_port=40029,
    )  # fmt: skip
    pool = WorkerPool.from_settings(settings, handler=FAKE_HANDLER)
    assert (pool.num_workers, pool.listen_ip, pool.announced_ip) == (3, "10.0.0.5", "1.2.3.4")
    assert pool.handler == FAKE_HANDLER
    assert pool.workers == []


# --- the pool with real worker processes ---------------------------------------------------


async def test_routers_are_placed_round_robin_on_separate_processes(pool: WorkerPool) -> None:
    async with asyncio.timeout(20):
        first, second = pool.workers
        assert first.pid != second.pid and os.getpid() not in (first.pid, second.pid)
        routers = [await pool.create_router() for _ in range(4)]
        assert [router.worker for router in routers] == [first, second, first, second]
        assert routers[0].rtp_capabilities == {"codecs": [{"mimeType": "audio/opus"}]}
        dump = await first.dump()
        assert dump["pid"] == first.pid
        assert dump["routers"] == [routers[0].id, routers[2].id]
        assert dump["event_loop"] == "uvloop"
        assert dump["engine"] == "fake"
        assert (await second.request("test.echo"))["pid"] == second.pid


async def test_each_worker_binds_only_its_share_of_ports(pool: WorkerPool) -> None:
    first, second = pool.workers
    assert (first.port_min, first.port_max) == (41000, 41004)
    assert (second.port_min, second.port_max) == (41005, 41009)
    async with asyncio.timeout(20):
        for _ in range(2):
            router = await pool.create_router()
            transport = await router.create_webrtc_transport()
            (candidate,) = transport.ice_candidates
            worker = router.worker
            # The fake engine binds the lowest port it is offered.
            assert candidate["port"] == worker.port_min
            assert candidate["ip"] == "127.0.0.1"


async def test_killed_worker_is_reported_and_replaced(pool: WorkerPool) -> None:
    loop = asyncio.get_running_loop()
    deaths: asyncio.Queue[tuple[Worker, str, list[str]]] = asyncio.Queue()
    pool.on_worker_died(lambda worker, reason, ids: deaths.put_nowait((worker, reason, ids)))
    async with asyncio.timeout(20):
        routers = [await pool.create_router() for _ in range(4)]
        victim, survivor = pool.workers
        victim_routers = [router for router in routers if router.worker is victim]
        survivor_router = next(router for router in routers if router.worker is survivor)
        causes: list[str] = []
        victim_routers[0].on("workerclose", lambda: causes.append("workerclose"))
        slow = asyncio.create_task(victim.request("test.sleep", {"seconds": 30}, timeout=60))
        await asyncio.sleep(0.05)

        killed_at = loop.time()
        os.kill(victim.pid, signal.SIGKILL)
        with pytest.raises(
            ChannelClosedError, match=rf"worker {victim.pid} died: killed by signal 9"
        ):
            await slow
        assert loop.time() - killed_at < 3.0

        worker, reason, router_ids = await deaths.get()
        assert worker is victim and victim.died
        assert reason == "killed by signal 9 (SIGKILL)"
        assert sorted(router_ids) == sorted(router.id for router in victim_routers)
        assert all(router.closed for router in victim_routers) and causes == ["workerclose"]
        with pytest.raises(InvalidStateError, match="is closed"):
            await victim_routers[0].create_webrtc_transport()
        with pytest.raises(InvalidStateError, match=r"died \(killed by signal 9"):
            await victim.dump()

        # The other worker is unaffected.
        assert not survivor_router.closed
        transport = await survivor_router.create_webrtc_transport()
        assert transport.ice_candidates[0]["port"] == survivor.port_min

        # A replacement takes the dead worker's slot and port share.
        await _until(lambda: len(pool.workers) == 2, "a replacement worker")
        replacement = pool.workers[victim.slot]
        assert replacement.pid not in (victim.pid, survivor.pid)
        assert (replacement.port_min, replacement.port_max) == (victim.port_min, victim.port_max)
        assert (await replacement.dump())["routers"] == []
        placed = {(await pool.create_router()).worker for _ in range(2)}
        assert placed == {replacement, survivor}
        assert deaths.empty()


async def test_worker_exit_code_is_the_reason(pool: WorkerPool) -> None:
    reasons: list[str] = []
    async with asyncio.timeout(20):
        victim = pool.workers[0]
        victim.on("died", reasons.append)
        with pytest.raises(
            ChannelClosedError, match=rf"worker {victim.pid} died: exited with code 3"
        ):
            await victim.request("test.exit", {"code": 3})
        await _until(lambda: reasons == ["exited with code 3"], "the died event")


async def test_a_worker_sending_garbage_is_killed_and_replaced(pool: WorkerPool) -> None:
    reasons: list[str] = []
    pool.on_worker_died(lambda worker, reason, ids: reasons.append(reason))
    async with asyncio.timeout(20):
        victim = pool.workers[1]
        with pytest.raises(ChannelClosedError, match="protocol error: .* not valid JSON"):
            await victim.request("test.garbage")
        assert victim.died and not _is_running(victim.pid)
        assert reasons == [f"protocol error: {victim.channel.protocol_error}"]
        await _until(lambda: len(pool.workers) == 2, "a replacement worker")


async def test_create_router_waits_for_a_replacement_when_no_worker_is_live(
    pool: WorkerPool,
) -> None:
    async with asyncio.timeout(20):
        old = pool.workers
        for worker in old:
            os.kill(worker.pid, signal.SIGKILL)
        # Placement moves off workers found dead and waits for a replacement.
        router = await pool.create_router()
        assert router.worker not in old and not router.worker.closed
        assert router.id in (await router.worker.dump())["routers"]


async def test_close_leaves_no_child_processes() -> None:
    pool = WorkerPool(3, "127.0.0.1", None, 41000, 41099, handler=FAKE_HANDLER)
    async with asyncio.timeout(20):
        await pool.start()
        pids = {worker.pid for worker in pool.workers}
        assert len(pids) == 3 and pids <= _worker_processes()
        router = await pool.create_router()
        await pool.close()
    assert not any(_is_running(pid) for pid in pids)
    assert not _worker_processes() & pids
    assert pool.workers == [] and router.closed
    with pytest.raises(RuntimeError, match="WorkerPool is closed"):
        await pool.create_router()
    await pool.close()  # idempotent


async def test_a_worker_that_cannot_start_fails_start() -> None:
    pool = WorkerPool(2, "127.0.0.1", None, 41000, 41099, handler="roomler.sfu.nonexistent:X")
    async with asyncio.timeout(20):
        with pytest.raises(
            RuntimeError, match=r"failed to start: worker \d+ died: exited with code 1"
        ):
            await pool.start()
    assert not _worker_processes()


async def test_workers_exit_when_the_web_process_is_killed() -> None:
    script = (
        "import asyncio, json, sys\n"
        "from roomler.sfu.pool import WorkerPool\n"
        "async def main():\n"
        "    pool = WorkerPool(2, '127.0.0.1', None, 41000, 41009, handler=sys.argv[1])\n"
        "    await pool.start()\n"
        "    print(json.dumps([w.pid for w in pool.workers]), flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, FAKE_HANDLER, stdout=subprocess.PIPE
    )
    try:
        async with asyncio.timeout(20):
            assert parent.stdout is not None
            pids = json.loads(await parent.stdout.readline())
            assert len(pids) == 2 and all(_is_running(pid) for pid in pids)
            parent.kill()
            await parent.wait()
            await _until(lambda: not any(_is_running(pid) for pid in pids), "orphans to exit")
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()


# --- the worker process on its own ---------------------------------------------------------


async def _spawn_worker(
    handler: str = FAKE_HANDLER, env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, Channel]:
    ours, theirs = socket.socketpair()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "roomler.sfu.worker", "--fd", str(theirs.fileno()),
        "--handler", handler, pass_fds=(theirs.fileno(),), stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    theirs.close()
    channel = await Channel.connect(ours, name=f"worker {process.pid}")
    channel.start()
    return process, channel


async def test_worker_exits_when_its_channel_closes() -> None:
    async with asyncio.timeout(20):
        process, channel = await _spawn_worker()
        assert (await channel.request("worker.dump"))["pid"] == process.pid
        await channel.close()
        assert await process.wait() == 0


async def test_sigterm_stops_the_worker_gracefully(tmp_path: Path) -> None:
    mark = tmp_path / "closed"
    async with asyncio.timeout(20):
        process, channel = await _spawn_worker(env={CLOSE_MARK_ENV: str(mark)})
        await channel.request("test.log", {"text": "hello from the engine"})
        process.send_signal(signal.SIGINT)  # ignored: the web process decides
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0
        assert await channel.wait_closed() == "peer closed the channel"
        assert process.stderr is not None
        log = (await process.stderr.read()).decode()
    assert mark.read_text() == "closed"  # the handler was closed
    assert f"sfu-worker[{process.pid}] WARNING fake: hello from the engine" in log
    assert f"sfu-worker[{process.pid}] INFO roomler.sfu.worker: stopping: SIGTERM" in log
    await channel.close()


async def test_worker_with_a_bad_handler_exits_with_a_clear_error() -> None:
    async with asyncio.timeout(20):
        process, channel = await _spawn_worker(handler="no-colon")
        assert await process.wait() == 1
        assert process.stderr is not None
        log = (await process.stderr.read()).decode()
        await channel.close()
    assert "handler must look like 'package.module:Name', got 'no-colon'" in log


# --- proxies -------------------------------------------------------------------------------


async def _media(pool: WorkerPool) -> tuple[Router, WebRtcTransport, Producer, Consumer]:
    router = await pool.create_router()
    send = await router.create_webrtc_transport()
    recv = await router.create_webrtc_transport()
    producer = await send.produce("video", {"codecs": [], "encodings": [{"ssrc": 1111}]})
    consumer = await recv.consume(producer.id, {"codecs": []})
    return router, recv, producer, consumer


def _record(source: Any, *events: str) -> list[str]:
    seen: list[str] = []
    for event in events:
        source.on(event, lambda *args, event=event: seen.append(event))
    return seen


async def test_producer_close_reaches_its_consumers_once(pool: WorkerPool) -> None:
    async with asyncio.timeout(20):
        router, recv, producer, consumer = await _media(pool)
        assert (consumer.producer_id, consumer.kind, consumer.type) == (
            producer.id,
            "video",
            "simple",
        )
        seen = _record(consumer, "producerclose", "transportclose", "close")
        await producer.close()  # the fake engine also sends consumer.producerclose
        await producer.close()  # idempotent
        await router.dump()  # a round trip: every event sent before it has arrived
        assert seen == ["producerclose", "close"]
        assert consumer.closed and consumer.id not in recv.consumers
        with pytest.raises(
            InvalidStateError, match=f'Consumer {consumer.id} is closed; cannot call "pause"'
        ):
            await consumer.pause()
        with pytest.raises(ValueError, match="is not in router"):
            await recv.consume(producer.id, {"codecs": []})


async def test_producer_pause_reaches_its_consumers_once(pool: WorkerPool) -> None:
    async with asyncio.timeout(20):
        _, _, producer, consumer = await _media(pool)
        seen = _record(consumer, "producerpause", "producerresume")
        await producer.pause()  # the fake engine also sends consumer.producerpause
        await producer.pause()
        assert producer.paused and consumer.producer_paused
        await producer.resume()
        assert seen == ["producerpause", "producerresume"]
        assert not consumer.producer_paused


async def test_router_close_cascades(pool: WorkerPool) -> None:
    async with asyncio.timeout(20):
        router, recv, producer, consumer = await _media(pool)
        worker = router.worker
        transports = list(router.transports.values())
        seen = {
            "recv": _record(recv, "routerclose", "close"),
            "producer": _record(producer, "transportclose", "close"),
            "consumer": _record(consumer, "close"),
        }
        await router.close()
        assert seen["recv"] == ["routerclose", "close"]
        assert seen["producer"] == ["transportclose", "close"]
        assert seen["consumer"] == ["close"]
        assert all(transport.closed for transport in transports)
        assert router.id not in worker.routers
        assert (await worker.dump())["routers"] == []
        with pytest.raises(InvalidStateError, match='cannot call "produce"'):
            await recv.produce("audio", {"codecs": []})
        await router.close()


async def test_engine_events_update_proxies(pool: WorkerPool) -> None:
    async with asyncio.timeout(20):
        router, recv, producer, consumer = await _media(pool)
        worker = router.worker
        states: list[Any] = []
        recv.on("dtlsstatechange", states.append)
        recv.on("iceselectedtuplechange", states.append)
        selected = {"local_port": 41000, "remote_ip": "127.0.0.1", "remote_port": 5000}

        async def on_close() -> None:  # coroutine listeners run as tasks
            states.append("consumer closed")

        consumer.on("close", on_close)
        for event, target, data in [
            ("transport.dtlsstatechange", recv.id, {"dtls_state": "connected"}),
            ("transport.icestatechange", recv.id, {"ice_state": "completed"}),
            ("transport.iceselectedtuplechange", recv.id, {"ice_selected_tuple": selected}),
            ("producer.close", producer.id, {}),  # the engine closed it
            ("consumer.producerclose", consumer.id, {}),  # the copy for the consumer
            ("transport.dtlsstatechange", "no-such-target", {"dtls_state": "failed"}),
        ]:
            await worker.request("test.emit", {"event": event, "target": target, "data": data})
        await _until(lambda: "consumer closed" in states, "the coroutine listener")
        assert states == ["connected", selected, "consumer closed"]
        assert (recv.dtls_state, recv.ice_state) == ("connected", "completed")
        assert recv.ice_selected_tuple == selected
        assert producer.closed and consumer.closed
        assert not recv.closed


async def test_engine_errors_and_bad_arguments(pool: WorkerPool) -> None:
    async with asyncio.timeout(20):
        router = await pool.create_router()
        transport = await router.create_webrtc_transport()
        with pytest.raises(ValueError, match="kind must be 'audio' or 'video', got 'text'"):
            await transport.produce("text", {})
        with pytest.raises(RequestFailedError, match="test.fail failed: bad input: codec"):
            await router.worker.request("test.fail", {"what": "codec"})
        assert await router.worker.request("test.ok") == {
            "method": "test.ok",
            "pid": router.worker.pid,
        }


# --- with the real engine ------------------------------------------------------------------


async def test_engine_router_and_transport_through_the_pool() -> None:
    pytest.importorskip(
        "roomler.sfu.engine.handler",
        reason="the SFU engine (roomler.sfu.engine.handler) is not importable yet",
    )
    async with asyncio.timeout(30), WorkerPool(1, "127.0.0.1", None, 42000, 42099) as pool:
        router = await pool.create_router()
        assert router.rtp_capabilities["codecs"]
        transport = await router.create_webrtc_transport()
        assert transport.ice_parameters["iceLite"] is True
        assert transport.ice_parameters["usernameFragment"] and transport.ice_parameters["password"]
        (candidate,) = transport.ice_candidates
        assert (candidate["protocol"], candidate["type"]) == ("udp", "host")
        assert 42000 <= candidate["port"] <= 42099
        (fingerprint,) = transport.dtls_parameters["fingerprints"]
        assert fingerprint["algorithm"] == "sha-256"
        assert router.id in (await router.worker.dump())["routers"]
        await transport.close()
        await router.close()
        assert (await pool.workers[0].dump())["routers"] == []


def test_the_package_exports_what_callers_need() -> None:
    import roomler.sfu
    from roomler.sfu import channel, pool, proxies

    for name in roomler.sfu.__all__:
        defined_in = [module for module in (channel, pool, proxies) if name in module.__all__]
        assert len(defined_in) == 1, name
        assert getattr(roomler.sfu, name) is getattr(defined_in[0], name)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = roomler.sfu.Nope
