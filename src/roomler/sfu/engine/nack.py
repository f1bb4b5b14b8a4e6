"""Loss repair state (RFC 4585 section 6.2.1 generic NACK, RFC 4588 RTX), sans-I/O.

- :class:`RetransmissionBuffer` -- the sending side of one consumer: the last
  few hundred packets it sent, by output sequence number, so a receiver's
  NACK can be answered.
- :class:`NackGenerator` -- the receiving side of one producer stream: which
  sequence numbers are missing, which packets are duplicates, and which
  missing ones are due for a NACK now.

Time is always passed in (``now``, seconds on a monotonic clock).
"""

from __future__ import annotations

import math

__all__ = ["NackGenerator", "RetransmissionBuffer"]

# A resent packet is not resent again sooner than this (nor sooner than the round trip
# the caller passes in): the receiver's next NACK for it usually means the first
# retransmission is still on its way.
MIN_RESEND_INTERVAL = 0.04


def _signed16(delta: int) -> int:
    """A 16-bit sequence-number difference as -32768..32767 (RFC 3550 appendix A.1)."""
    return ((delta + 0x8000) & 0xFFFF) - 0x8000


_Entry = tuple[int, bytes, float, float]  # (seq, packet, sent at, last resent at or 0)


class RetransmissionBuffer:
    """The packets a consumer sent recently, indexed by their 16-bit sequence number.

    One tuple per slot: :meth:`store` runs once per forwarded packet and
    consumer, so it is a single list assignment.
    """

    __slots__ = ("_entries", "_max_age", "_size")

    def __init__(self, size: int, max_age: float) -> None:
        if size < 1:
            raise ValueError("RetransmissionBuffer size must be at least 1")
        self._size = size
        self._max_age = max_age
        self._entries: list[_Entry | None] = [None] * size

    def store(self, seq: int, packet: bytes, now: float) -> None:
        self._entries[seq % self._size] = (seq, packet, now, 0.0)

    def get(self, seq: int, now: float, resend_interval: float = 0.0) -> bytes | None:
        """The packet sent as ``seq`` if it may be resent now, else None.

        None when it was never stored, was overwritten, is older than the
        maximum age, or was resent less than ``resend_interval`` (at least
        ``MIN_RESEND_INTERVAL``) ago: mediasoup and libwebrtc resend a packet at
        most once per round trip -- behind a queue that round trip is long, and
        the receiver asks again long before the first copy could arrive.
        """
        slot = seq % self._size
        entry = self._entries[slot]
        if entry is None or entry[0] != seq:
            return None
        _, packet, sent, resent = entry
        if now - sent > self._max_age:
            return None
        if resent and now - resent < max(MIN_RESEND_INTERVAL, resend_interval):
            return None
        self._entries[slot] = (seq, packet, sent, now)
        return packet

    def peek(self, seq: int) -> bytes | None:
        """The packet stored as ``seq`` (a copy to probe with), without marking it resent."""
        entry = self._entries[seq % self._size]
        return entry[1] if entry is not None and entry[0] == seq else None

    def clear(self) -> None:
        self._entries = [None] * self._size


class _Missing:
    __slots__ = ("first_seen", "last_nack", "retries")

    def __init__(self, now: float) -> None:
        self.first_seen = now
        self.last_nack = -math.inf
        self.retries = 0


class NackGenerator:
    """Tracks one incoming stream's sequence numbers (extended to 64 bits internally).

    :meth:`receive` returns False for a packet that must not be forwarded: a
    duplicate, or one older than anything still awaited. A jump forward of
    more than ``max_missing`` packets is not NACKed (the sender restarted or
    a burst was lost beyond repair); :attr:`keyframe_needed` tells the caller
    to ask for a keyframe instead.
    """

    __slots__ = (
        "_highest",
        "_max_age",
        "_max_missing",
        "_max_retries",
        "_missing",
        "_retry_interval",
        "keyframe_needed",
    )

    def __init__(
        self,
        *,
        max_missing: int = 1000,
        max_age: float = 1.0,
        max_retries: int = 10,
        retry_interval: float = 0.1,
    ) -> None:
        self._highest: int | None = None
        self._missing: dict[int, _Missing] = {}
        self._max_missing = max_missing
        self._max_age = max_age
        self._max_retries = max_retries
        self._retry_interval = retry_interval
        self.keyframe_needed = False

    @property
    def missing_count(self) -> int:
        return len(self._missing)

    def receive(self, seq: int, now: float) -> bool:
        """Record packet ``seq``; False when it is a duplicate or obsolete."""
        highest = self._highest
        if highest is None:
            self._highest = seq
            return True
        ext = highest + _signed16(seq - highest)
        if ext > highest:
            self._on_gap(highest + 1, ext, now)
            self._highest = ext
            return True
        return self._missing.pop(ext, None) is not None

    def _on_gap(self, first: int, end: int, now: float) -> None:
        """Sequence numbers first..end-1 were skipped."""
        count = end - first
        if count <= 0:
            return
        if count > self._max_missing:
            self._missing.clear()
            self.keyframe_needed = True
            return
        for ext in range(first, end):
            self._missing[ext] = _Missing(now)
        overflow = len(self._missing) - self._max_missing
        if overflow > 0:
            for ext in sorted(self._missing)[:overflow]:
                del self._missing[ext]
            self.keyframe_needed = True

    def due(self, now: float, rtt: float | None = None) -> list[int]:
        """Sequence numbers (16-bit, ascending) to NACK now; expires the hopeless ones."""
        interval = self._retry_interval if rtt is None else max(rtt * 1.2, 0.02)
        result: list[int] = []
        expired: list[int] = []
        for ext, missing in self._missing.items():
            if now - missing.first_seen > self._max_age or missing.retries >= self._max_retries:
                expired.append(ext)
            elif now - missing.last_nack >= interval:
                missing.last_nack = now
                missing.retries += 1
                result.append(ext)
        for ext in expired:
            del self._missing[ext]
        if expired and not self._missing:
            # Whatever was lost for good broke the picture: ask for a fresh start.
            self.keyframe_needed = True
        result.sort()
        return [ext & 0xFFFF for ext in result]

    def expire(self, now: float) -> None:
        """Forget losses too old to repair (for streams that never NACK)."""
        for ext in [e for e, m in self._missing.items() if now - m.first_seen > self._max_age]:
            del self._missing[ext]
