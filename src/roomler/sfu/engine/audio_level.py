"""Who is speaking: audio levels and the dominant speaker of a router (sans-I/O).

The levels come from the `ssrc-audio-level` RTP header extension (RFC 6464): the sender
puts in every audio packet the level of its audio in -dBov (0 = loudest, 127 = silence),
so the SFU learns who is loud without decoding a thing. This module keeps mediasoup's
observer semantics:

- **AudioLevelObserver**: every `interval`, the producers whose average level over the
  interval is at least `threshold` dBov, loudest first, at most `max_entries`
  (`volumes`); when nobody is above it any more, one `silence`.
- **ActiveSpeakerObserver**: the *dominant* speaker changes with hysteresis: another
  producer takes over only after being the loudest for `switch_intervals` intervals in a
  row, at least `switch_margin` dB above the current one (or the current one silent), so
  a cough or a crosstalk does not flip the large tile. Silence keeps the last speaker.

Time is passed in; the router calls `report(now)` on its timer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# RFC 6464 section 3: the level field is 7 bits of -dBov; 127 is silence (or muted).
SILENT_LEVEL = 127
AUDIO_LEVEL_MASK = 0x7F


@dataclass(frozen=True, slots=True)
class Volume:
    producer_id: str
    # The average over the interval, in dBov (-127..0).
    volume: float


@dataclass(frozen=True, slots=True)
class LevelReport:
    """What one interval produced: the volumes (empty when silent), whether silence just
    began, and the new dominant speaker when it changed."""

    volumes: list[Volume]
    silence: bool = False
    dominant: str | None = None


def level_of(extension: bytes) -> int | None:
    """The level (0..127, -dBov) in an `ssrc-audio-level` element; None if it is empty."""
    if not extension:
        return None
    return extension[0] & AUDIO_LEVEL_MASK


@dataclass
class _Levels:
    total: float = 0.0
    count: int = 0

    def add(self, dbov: float) -> None:
        self.total += dbov
        self.count += 1

    def average(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass
class AudioLevels:
    """The levels of one router's audio producers and its dominant speaker."""

    threshold: float = -70.0
    max_entries: int = 16
    switch_intervals: int = 2
    switch_margin: float = 3.0
    dominant: str | None = None
    _levels: dict[str, _Levels] = field(default_factory=dict)
    _producers: set[str] = field(default_factory=set)
    _silent: bool = True
    _candidate: str | None = None
    _candidate_streak: int = 0

    def add_producer(self, producer_id: str) -> None:
        self._producers.add(producer_id)

    def remove_producer(self, producer_id: str) -> None:
        self._producers.discard(producer_id)
        self._levels.pop(producer_id, None)
        if self._candidate == producer_id:
            self._candidate, self._candidate_streak = None, 0
        if self.dominant == producer_id:
            self.dominant = None  # the next loudest takes over at once

    def add_level(self, producer_id: str, level: int) -> None:
        """One packet's level (0..127 -dBov) from the producer."""
        if producer_id in self._producers:
            self._levels.setdefault(producer_id, _Levels()).add(-float(level))

    def report(self) -> LevelReport:
        """Close the interval: its volumes, silence, and a dominant-speaker change."""
        averages = {
            producer_id: average
            for producer_id, levels in self._levels.items()
            if (average := levels.average()) is not None
        }
        self._levels.clear()
        loud = sorted(
            (Volume(p, v) for p, v in averages.items() if v >= self.threshold),
            key=lambda entry: entry.volume,
            reverse=True,
        )[: self.max_entries]
        silence = not loud and not self._silent
        self._silent = not loud
        return LevelReport(loud, silence, self._elect(loud, averages))

    def _elect(self, loud: list[Volume], averages: dict[str, float]) -> str | None:
        """The new dominant speaker, if this interval makes one; None otherwise."""
        if not loud:
            self._candidate, self._candidate_streak = None, 0
            return None
        loudest = loud[0]
        if loudest.producer_id == self.dominant:
            self._candidate, self._candidate_streak = None, 0
            return None
        current = averages.get(self.dominant) if self.dominant is not None else None
        if current is not None and current >= self.threshold:
            if loudest.volume - current < self.switch_margin:
                self._candidate, self._candidate_streak = None, 0
                return None
        if self._candidate == loudest.producer_id:
            self._candidate_streak += 1
        else:
            self._candidate, self._candidate_streak = loudest.producer_id, 1
        # The first speaker of a room needs no streak: nobody holds the tile yet.
        if self.dominant is not None and self._candidate_streak < self.switch_intervals:
            return None
        self.dominant = loudest.producer_id
        self._candidate, self._candidate_streak = None, 0
        return self.dominant
