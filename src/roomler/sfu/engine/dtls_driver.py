"""DtlsDriver: runs a transport's sans-I/O DTLS endpoint (:mod:`roomler.sfu.dtls`) on the loop.

The thin asyncio part of a transport's DTLS, apart from the transport:

- datagrams that arrive before ``transport.connect`` (a ClientHello can beat
  the connect request) are held, a few, and fed to the endpoint when it starts;
- datagrams the endpoint wants to send before ICE validated any address are
  held until :meth:`DtlsDriver.flush_held` (the transport calls it on the
  first valid check);
- the endpoint's retransmission timer runs as one ``loop.call_at``.

After every step the transport's ``on_step(endpoint)`` looks at the
endpoint's state (connected: build SRTP; failed: close; closed by the peer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from roomler.sfu.certificate import DtlsCertificate
from roomler.sfu.dtls import DtlsEndpoint

__all__ = ["MAX_PENDING_DTLS", "DtlsDriver"]

#: Datagrams from the peer held until the endpoint exists.
MAX_PENDING_DTLS = 8


class DtlsDriver:
    """One transport's DTLS endpoint, its timer, and the datagrams it cannot handle yet."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        send: Callable[[bytes], bool],
        on_step: Callable[[DtlsEndpoint], None],
        count_drop: Callable[[str], None],
    ) -> None:
        self._loop = loop
        self._send = send  # False: no address to send to yet
        self._on_step = on_step
        self._count_drop = count_drop
        self.endpoint: DtlsEndpoint | None = None
        self._inbox: list[bytes] = []
        self._outbox: list[bytes] = []
        self._timer: Any = None
        self._closed = False

    def create(self, certificate: DtlsCertificate, role: str, fingerprints: list[Any]) -> None:
        """The endpoint in ``role``, expecting one of the peer's ``fingerprints`` (ValueError)."""
        if self.endpoint is not None:
            raise ValueError("DTLS was already started")
        endpoint = DtlsEndpoint(certificate, role)
        endpoint.set_remote_fingerprints(fingerprints)
        self.endpoint = endpoint

    def start(self) -> None:
        """Begin the handshake and feed it what arrived before."""
        endpoint = self.endpoint
        if endpoint is None:
            raise RuntimeError("DtlsDriver.start() before create()")
        now = self._loop.time()
        endpoint.start(now)
        inbox, self._inbox = self._inbox, []
        for data in inbox:
            endpoint.receive(data, now)
        self._step(now)

    def receive(self, data: bytes, now: float) -> None:
        """A DTLS datagram from a valid address."""
        endpoint = self.endpoint
        if endpoint is None:
            if len(self._inbox) < MAX_PENDING_DTLS:
                self._inbox.append(data)
            else:
                self._count_drop("dtls_before_connect")
            return
        before = endpoint.dropped_datagrams
        endpoint.receive(data, now)
        if endpoint.dropped_datagrams != before:
            self._count_drop("invalid_dtls")
        self._step(now)

    def flush_held(self) -> None:
        """Send what waited for an address (ICE just validated one)."""
        outbox, self._outbox = self._outbox, []
        for index, datagram in enumerate(outbox):
            if not self._send(datagram):
                self._outbox = outbox[index:]
                return

    def close(self) -> None:
        """Say goodbye (close_notify) and stop the timer."""
        if self._closed:
            return
        if self.endpoint is not None:
            self.endpoint.close()
            self._flush(self.endpoint)
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _step(self, now: float) -> None:
        endpoint = self.endpoint
        if endpoint is None or self._closed:
            return
        self._flush(endpoint)
        self._on_step(endpoint)
        if not self._closed:
            self._schedule_timer(endpoint)

    def _flush(self, endpoint: DtlsEndpoint) -> None:
        for datagram in endpoint.datagrams_to_send():
            if self._outbox or not self._send(datagram):
                self._outbox.append(datagram)

    def _schedule_timer(self, endpoint: DtlsEndpoint) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = endpoint.get_timer()
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer, when)

    def _on_timer(self, when: float) -> None:
        self._timer = None
        if self._closed or self.endpoint is None:
            return
        now = max(self._loop.time(), when)
        self.endpoint.handle_timer(now)
        self._step(now)
