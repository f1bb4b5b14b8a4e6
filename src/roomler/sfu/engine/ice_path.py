"""IcePath: the peer addresses ICE validated, the one selected, and the ICE state, sans-I/O.

The ICE-lite agent (:mod:`roomler.sfu.ice`) answers each Binding request; the
transport tells this object about every authenticated one
(:meth:`IcePath.on_check`) and asks it where to send (:meth:`IcePath.destination`):

- an address that sent an authenticated check is *valid* (DTLS, SRTP and SRTCP
  are accepted from valid addresses only); the most recent
  ``MAX_VALID_ADDRESSES`` are kept, the selected one always among them;
- a nominating check (USE-CANDIDATE) *selects* its address; before any
  nomination we send to the most recently validated address, as mediasoup
  does, so a DTLS handshake can begin;
- the state (mediasoup's ``iceState``) is ``new`` -> ``connected`` (a valid
  check) -> ``completed`` (a nomination); ``disconnected`` when consent
  expired (RFC 7675), ``completed`` again on a check from the selected address;
  ``closed`` with the transport.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["MAX_VALID_ADDRESSES", "Address", "IceChange", "IcePath"]

Address = tuple[str, int]

#: Addresses remembered as ICE-valid (the peer's candidates that checked).
MAX_VALID_ADDRESSES = 8


class IceChange(NamedTuple):
    """What one check changed: the new ICE state (None: unchanged), a new selected address."""

    state: str | None
    selected: bool


class IcePath:
    """Valid and selected peer addresses of one transport, and its ICE state."""

    __slots__ = ("_max_valid", "selected", "state", "valid")

    def __init__(self, max_valid: int = MAX_VALID_ADDRESSES) -> None:
        #: Valid addresses, least recently checked first. Read per datagram (``in``).
        self.valid: dict[Address, float] = {}
        self.selected: Address | None = None
        self.state = "new"
        self._max_valid = max_valid

    def on_check(self, source: Address, nominated: bool, now: float) -> IceChange:
        """An authenticated Binding request from ``source`` (``nominated``: it selects it)."""
        self.valid.pop(source, None)
        self.valid[source] = now
        self._forget_oldest()
        if nominated:
            self.selected = source
            return IceChange(self._set("completed"), True)
        if self.state == "new":
            return IceChange(self._set("connected"), False)
        if self.state == "disconnected" and source == self.selected:
            return IceChange(self._set("completed"), False)
        return IceChange(None, False)

    def _forget_oldest(self) -> None:
        while len(self.valid) > self._max_valid:
            oldest = next(iter(self.valid))
            if oldest == self.selected:  # never forget the selected address: move it back
                self.valid[oldest] = self.valid.pop(oldest)
                oldest = next(iter(self.valid))
            del self.valid[oldest]

    def destination(self) -> Address | None:
        """Where to send: the selected address, else the most recently validated one."""
        if self.selected is not None:
            return self.selected
        if self.valid:
            return next(reversed(self.valid))
        return None

    def on_consent_check(self, alive: bool) -> str | None:
        """RFC 7675: consent lost on the selected address -> ``disconnected`` (else None)."""
        if alive or self.selected is None or self.state not in ("connected", "completed"):
            return None
        return self._set("disconnected")

    def close(self) -> None:
        self.state = "closed"

    def _set(self, state: str) -> str | None:
        if state == self.state:
            return None
        self.state = state
        return state
