"""The UDP sockets of WebRTC transports: one non-blocking socket per transport, on a free port.

A plain socket watched with ``loop.add_reader`` (not an asyncio
``DatagramProtocol``): closing it releases the port at once, with the default
loop and with uvloop alike, and a full send buffer drops the datagram instead
of queueing it (it is real-time media).
"""

from __future__ import annotations

import ipaddress
import secrets
import socket

__all__ = ["SOCKET_BUFFER", "bind_udp_socket"]

#: Kernel receive and send buffer asked for each socket (the kernel may cap it).
SOCKET_BUFFER = 1 << 20


def bind_udp_socket(listen_ip: str, port_min: int, port_max: int, taken: set[int]) -> socket.socket:
    """A non-blocking UDP socket bound to a free port of ``port_min..port_max``.

    Ports in ``taken`` (ours already) are skipped; the others are tried from a
    random starting point, as other processes may hold some of them.
    """
    try:
        ip = ipaddress.ip_address(listen_ip)
    except ValueError:
        raise ValueError(f"listen_ip {listen_ip!r} is not an IP address") from None
    if not 1 <= port_min <= port_max <= 65535:
        raise ValueError(f"port range {port_min}..{port_max} is invalid (1..65535, min <= max)")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    count = port_max - port_min + 1
    start = secrets.randbelow(count)
    for step in range(count):
        port = port_min + (start + step) % count
        if port in taken:
            continue
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((listen_ip, port))
        except OSError:
            sock.close()
            continue
        _tune(sock)
        return sock
    raise ValueError(f"no free UDP port in {port_min}..{port_max} on {listen_ip}")


def _tune(sock: socket.socket) -> None:
    sock.setblocking(False)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        except OSError:  # pragma: no cover - capped by the kernel, not fatal
            pass
