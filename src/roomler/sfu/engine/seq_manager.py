"""Continuous output numbering over an input with gaps and restarts, sans-I/O.

A consumer that drops packets (temporal layers it does not forward) or
switches between streams (simulcast encodings, each numbered on its own)
must still send the receiver one gap-free sequence: RTP sequence numbers
(RFC 3550 section 5.1: a gap reads as loss, and is NACKed), VP8 PictureIDs and
TL0PICIDX (RFC 7741 section 4.2: a gap reads as a lost picture).  The same
job as mediasoup's ``SeqManager``:

- :meth:`SeqManager.input` maps an input number to its output number;
- :meth:`SeqManager.drop` removes a number from the output space, so later
  inputs shift down by one (only numbers newer than any seen can be dropped:
  older ones may already have been sent);
- :meth:`SeqManager.sync` starts a new input space (another stream): its
  next input continues after the highest output, ``gap`` numbers later.

Inputs are extended to unbounded integers (wrap-around, RFC 3550 appendix
A.1 style) so drops are kept as sorted integers.
"""

from __future__ import annotations

from bisect import bisect_left, insort

__all__ = ["SeqManager"]

# How far behind the newest input a late input is still numbered (packets).
_REORDER_WINDOW = 1024


class SeqManager:
    __slots__ = (
        "_base",
        "_dropped",
        "_floor",
        "_half",
        "_window",
        "_mask",
        "_max_ext",
        "_pending_gap",
        "max_output",
    )

    def __init__(self, bits: int, initial_output: int = 0) -> None:
        if not 2 <= bits <= 32:
            raise ValueError(f"SeqManager bits must be 2..32, got {bits}")
        self._mask = (1 << bits) - 1
        self._half = 1 << (bits - 1)
        self._window = min(self._half, _REORDER_WINDOW)
        self._base = 0  # output = ext + base - (drops below ext), modulo 2**bits
        self._dropped: list[int] = []  # extended inputs, sorted
        self._floor = 0  # extended inputs below this are refused (older than a sync)
        self._max_ext = 0
        #: The output of the newest input so far (initially one before ``initial_output``).
        self.max_output = (initial_output - 1) & self._mask
        # A fresh input space starts at the next input, this many numbers after max_output.
        self._pending_gap: int | None = 0

    def sync(self, gap: int = 0) -> None:
        """The next input starts a new input space, output ``gap`` + 1 after the last."""
        self._pending_gap = gap

    def _extend(self, value: int) -> int:
        value &= self._mask
        if self._pending_gap is not None:
            # New input space: ``value`` maps to max_output + 1 + gap.
            self._base = self.max_output + 1 + self._pending_gap - value
            self._floor = value
            self._max_ext = value - 1  # so that ``value`` is newer than every input
            self._dropped.clear()
            self._pending_gap = None
            return value
        delta = (value - self._max_ext) & self._mask
        if delta >= self._half:
            delta -= self._mask + 1
        return self._max_ext + delta

    def input(self, value: int) -> int | None:
        """The output for ``value``; None if it was dropped or predates the last sync."""
        if self._pending_gap is None and not self._dropped:
            # The per-packet case: no drops to account for (same result as below).
            mask = self._mask
            delta = (value - self._max_ext) & mask
            if delta < self._half:
                ext = self._max_ext = self._max_ext + delta
                output = self.max_output = (ext + self._base) & mask
                return output
            ext = self._max_ext + delta - mask - 1
            return None if ext < self._floor else (ext + self._base) & mask
        return self._input_slow(value)

    def _input_slow(self, value: int) -> int | None:
        ext = self._extend(value)
        if ext < self._floor:
            return None
        index = bisect_left(self._dropped, ext)
        if index < len(self._dropped) and self._dropped[index] == ext:
            return None
        output = (ext + self._base - index) & self._mask
        if ext >= self._max_ext:
            self._max_ext = ext
            self.max_output = output
            self._forget_old_drops(ext)
        return output

    def drop(self, value: int) -> None:
        """Leave ``value`` out of the output (ignored unless newer than every input)."""
        ext = self._extend(value)
        if ext > self._max_ext:
            self._max_ext = ext
            insort(self._dropped, ext)

    def _forget_old_drops(self, ext: int) -> None:
        # Drops more than a reorder window behind are folded into the base, and
        # inputs older than that are refused: late packets that old are useless
        # to the receiver (the consumer answers its NACKs from its own buffer),
        # and the drop list stays short (bisect and insert stay cheap).
        horizon = ext - self._window
        count = bisect_left(self._dropped, horizon)
        if count:
            del self._dropped[:count]
            self._base -= count
            self._floor = max(self._floor, horizon)
