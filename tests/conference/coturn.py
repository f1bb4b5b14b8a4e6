"""A private coturn (Debian's `turnserver`) for the TURN tests, started and always stopped.

It checks credentials with `use-auth-secret` (the secret Roomler signs its time-limited
TURN credentials with), listens on a free 127.0.0.1 port, relays to loopback (where the
SFU is; coturn refuses that by default) from a port range the test names, and logs one
line per allocation, which tests read. With `tls` it listens for TLS over TCP only.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aioice import stun

REALM = "roomler.test"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


@dataclass
class Coturn:
    port: int
    log: Path
    tls: bool = False

    @property
    def url(self) -> str:
        if self.tls:
            return f"turns:127.0.0.1:{self.port}?transport=tcp"
        return f"turn:127.0.0.1:{self.port}"

    def allocations(self) -> set[str]:
        """The usernames of the allocations coturn granted (its verbose log)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        pattern = re.compile(r"user <([^>]+)>: incoming packet ALLOCATE processed, success")
        return set(pattern.findall(text))

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no log)"


def free_port() -> int:
    """A port free for UDP and for TCP: coturn listens on both, even with `no-tcp-relay`
    (a port free for UDP alone may be some TCP connection's local port)."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise AssertionError("no port is free for both UDP and TCP on 127.0.0.1")


def config(
    directory: Path,
    port: int,
    secret: str,
    relay_ports: tuple[int, int],
    tls: tuple[Path, Path] | None = None,
) -> str:
    """turnserver.conf; `tls` is (certificate, key) for a TLS-only listener."""
    listen = (
        [f"tls-listening-port={port}", "no-udp", "no-tcp", f"cert={tls[0]}", f"pkey={tls[1]}"]
        if tls is not None
        else [f"listening-port={port}", "no-tls"]
    )
    return "\n".join(
        [
            "listening-ip=127.0.0.1",
            *listen,
            "relay-ip=127.0.0.1",
            f"min-port={relay_ports[0]}",
            f"max-port={relay_ports[1]}",
            "use-auth-secret",
            f"static-auth-secret={secret}",
            f"realm={REALM}",
            # The SFU listens on loopback, which coturn refuses to relay to by default.
            "allow-loopback-peers",
            "no-cli",
            "no-dtls",
            "no-tcp-relay",
            "relay-threads=1",
            "fingerprint",
            # Verbose: one line per allocation, which tests read.
            "verbose",
            f"log-file={directory / 'turnserver.log'}",
            "simple-log",
            f"pidfile={directory / 'turnserver.pid'}",
            f"userdb={directory / 'turndb'}",
            "",
        ]
    )


def _answers_stun(port: int) -> bool:
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        sock.sendto(bytes(request), ("127.0.0.1", port))
        try:
            return bool(sock.recv(2048))
        except OSError:
            return False


def _accepts_tcp(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        time.sleep(0.1)
        return False


@contextmanager
def running_coturn(
    directory: Path,
    secret: str,
    relay_ports: tuple[int, int],
    tls: tuple[Path, Path] | None = None,
) -> Iterator[Coturn]:
    """turnserver in `directory`, ready (answering STUN, or accepting TLS connections)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = directory / "turnserver.conf"
    conf.write_text(config(directory, port, secret, relay_ports, tls))
    coturn = Coturn(port, directory / "turnserver.log", tls=tls is not None)
    ready = _accepts_tcp if tls is not None else _answers_stun
    with (directory / "stdout.log").open("wb") as out:
        process = subprocess.Popen(
            ["turnserver", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready(port):
            assert process.poll() is None, f"turnserver exited:\n{coturn.tail()}"
            assert time.monotonic() < deadline, f"turnserver did not start:\n{coturn.tail()}"
        yield coturn
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
