"""How `roomler serve` keeps full garbage collections short: long-lived objects are frozen.

A generation-2 collection walks every container object the process tracks and stops the
event loop meanwhile. At 10,000 WebSockets that is ~1.5 M objects (the modules, classes
and SQLAlchemy metadata of start-up, ~160 k, and ~120 per connection: uvicorn's
protocol, websockets' state, the ASGI scope, Roomler's `Connection` and its tasks), and
one walk took up to 3.2 s on the 2-core machine of docs/performance.md. Almost all of
them live as long as the process or their connection; walking them again finds nothing.

`gc.freeze()` moves everything tracked into a permanent generation that collections do
not walk (reference counting still frees frozen objects that are no longer used). So:

- after start-up: one full collection, then freeze (what lives for the process);
- every `FREEZE_PERIOD_SECS`, if connections were opened since the last freeze: a young
  collection (generations 0 and 1, cheap) and a freeze, so the new connections' objects
  leave the walk too. Nothing is frozen while no connection opens: a broadcast's
  short-lived objects stay young and are collected as usual.
- A closed connection leaves ~70 objects in reference cycles (uvicorn's protocol and its
  transport, the tasks and their frames), which only a collection can free, and a
  frozen one is never walked. Once as many connections have closed since the last thaw
  as `THAW_FRACTION` of those open (at least `THAW_MIN_CLOSES`), everything is unfrozen,
  collected once and frozen again. That is the same rule CPython itself uses to decide
  a full collection (long-lived objects grown by a quarter), applied to what died instead
  of what was born: one full walk per quarter of the connections replaced, where the
  collector alone did one per quarter added, and again and again during broadcasts.

The collector stays on and its thresholds are CPython's: young collections still free
every short-lived cycle, and a full collection still runs when its own rule says so, over
the objects not frozen (those of the last `FREEZE_PERIOD_SECS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time

from roomler.realtime.counters import WsCounters

logger = logging.getLogger(__name__)

FREEZE_PERIOD_SECS = 1.0
THAW_FRACTION = 0.25
THAW_MIN_CLOSES = 1000


class FrozenHeap:
    """Freezes what start-up and each wave of new connections left; thaws after churn."""

    def __init__(
        self,
        counters: WsCounters,
        *,
        period_secs: float = FREEZE_PERIOD_SECS,
        thaw_fraction: float = THAW_FRACTION,
        thaw_min_closes: int = THAW_MIN_CLOSES,
    ) -> None:
        self.counters = counters
        self.period_secs = period_secs
        self.thaw_fraction = thaw_fraction
        self.thaw_min_closes = thaw_min_closes
        self.freezes = 0
        self.thaws = 0
        self._opened_at_freeze = 0
        self._closed_at_thaw = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Collect and freeze what start-up built; check again every `period_secs`."""
        gc.collect()
        self.freeze()
        self._closed_at_thaw = self.counters.closed
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        gc.unfreeze()

    def freeze(self) -> None:
        gc.collect(1)  # young garbage is freed, not frozen
        gc.freeze()
        self.freezes += 1
        self._opened_at_freeze = self.counters.opened

    def thaw(self) -> None:
        """Unfreeze, collect everything once (frees the closed connections), freeze again."""
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        self.thaws += 1
        self._closed_at_thaw = self.counters.closed
        self.freeze()
        logger.info(
            "full collection after churn: %d unreachable objects, %.0f ms",
            found,
            1000 * (time.perf_counter() - started),
        )

    def check(self) -> None:
        """One period's decision: thaw after churn, else freeze after new connections."""
        counters = self.counters
        open_now = counters.opened - counters.closed
        closed = counters.closed - self._closed_at_thaw
        if closed >= max(self.thaw_min_closes, self.thaw_fraction * open_now):
            self.thaw()
        elif counters.opened != self._opened_at_freeze:
            self.freeze()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period_secs)
            self.check()
