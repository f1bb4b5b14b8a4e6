"""Sharing one transport's bandwidth estimate among its consumers, sans-I/O.

:class:`BitrateAllocator` takes the transport's estimate (from
:class:`roomler.sfu.engine.gcc.GccEstimator`) and every consumer's demand --
its kind, its priority class and what each of its layers costs -- and picks,
for each video consumer, the highest layers that fit:

1. audio first: every audio consumer gets what it uses, whatever is left;
2. then video by class: screen shares, then the active speaker, then other
   video.  Every video consumer first gets its lowest layer if that fits, in
   class order; then the classes are filled in order, each round-robin one
   layer step at a time, so consumers of one class share fairly.

Without hysteresis a steady link would flap between two layers, because
the estimate itself saw-tooths around the capacity (AIMD cuts to 85 % of
the throughput, and a probe may cause such a cut).  So a layer a consumer
already had is kept until its cost exceeds the budget by more than
1/``KEEP_MARGIN``, a step above it is only taken when it fits with
``UPGRADE_HEADROOM`` to spare, and not within ``UPGRADE_HOLD`` seconds of a
downgrade forced on that consumer.

A consumer whose encoding goes quiet (the consumer leaves an encoding without a
packet for a second out of its demand) is moved below it, but that encoding stays
held for ``HELD_SILENCE`` seconds: back within that time it is kept, not an upgrade
to earn again -- an encoder short of CPU sends an encoding at a few frames a second,
with gaps of a second now and then.

An upgrade may also be limited by ``upgrade_limit`` (what the link has been seen to
carry: acknowledged throughput or a probe's measurement): the estimate alone climbs
past a bottleneck between two over-use detections, and an upgrade on that guess
would freeze the receiver until the next downgrade.  And an upgrade is judged by
the most the layer cost over the last ``PEAK_WINDOW`` seconds, not by its cost
this instant: the costs are measured at the producer, and an encoding the sender
starves for a moment (its CPU, its own estimate) measures far below what it
costs a second later -- an upgrade on that dip overfills the receiver's link.

When some consumer could use more than fits, :attr:`Allocation.probe_bitrate`
is the total rate to probe at (what is allocated plus that consumer's next
step, times ``PROBE_MARGIN`` so that a successful probe clears the
headroom): the transport sends a burst at that rate
(:class:`roomler.sfu.engine.gcc.Prober`) to learn whether the link carries it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["Allocation", "BitrateAllocator", "Demand", "Layers", "Priority"]

UPGRADE_HEADROOM = 1.15
UPGRADE_HOLD = 2.0
KEEP_MARGIN = 0.9
PROBE_MARGIN = 1.3
PEAK_WINDOW = 5.0
HELD_SILENCE = 3.0

Layers = tuple[int, int]  # (spatial, temporal)


class Priority(enum.IntEnum):
    """Who is served first when the estimate does not cover everyone."""

    AUDIO = 0
    SCREEN = 1
    SPEAKER = 2
    VIDEO = 3


@dataclass(frozen=True)
class Demand:
    """One consumer's wants.

    ``layers`` maps each (spatial, temporal) the consumer may receive -- up
    to its preferred layers -- to the bitrate (bps) it costs; an audio
    consumer has the single entry (0, 0).  A paused consumer is left out.
    """

    consumer_id: str
    priority: Priority
    layers: dict[Layers, float]
    paused: bool = False


@dataclass
class Allocation:
    layers: dict[str, Layers | None] = field(default_factory=dict)
    allocated: float = 0.0
    probe_bitrate: float | None = None


def _steps(
    demand: Demand, peaks: dict[Layers, float]
) -> tuple[list[tuple[Layers, float]], list[float]]:
    """The consumer's layers from the lowest up, and each one's peak cost.

    Ordered by layer, not by cost: the costs are measured, and a higher encoding the sender
    starves for a moment (CPU, its own estimate) may measure below a lower one; ordered by
    cost it would become the base layer and be sent to a receiver that cannot carry it.
    A layer is a step when its *peak* (``peaks``, the most it cost lately) is above the
    step below: a dip of the layer a consumer holds must not drop it from the steps (a
    free receiver was moved off the top encoding whenever the sender's encoder, short of
    CPU, sent that encoding at a few frames a second). A step's cost and peak are at least
    those of the step below (switching up never sends less), so an increment is never
    negative.
    """
    steps: list[tuple[Layers, float]] = []
    step_peaks: list[float] = []
    for layers, bitrate in sorted(demand.layers.items()):
        peak = max(peaks.get(layers, bitrate), bitrate)
        if not steps:
            steps.append((layers, bitrate))
            step_peaks.append(peak)
        elif peak > step_peaks[-1]:
            steps.append((layers, max(bitrate, steps[-1][1])))
            step_peaks.append(peak)
    return steps, step_peaks


class BitrateAllocator:
    """Per transport: remembers what each consumer had, for hysteresis."""

    def __init__(self) -> None:
        self._had: dict[str, Layers | None] = {}  # consumer -> the layers it had last time
        self._downgraded_at: dict[str, float] = {}
        self._silent_since: dict[str, float] = {}  # consumer -> when the layer it held went
        self._upgrade_slack = 0.0  # how much less than the estimate upgrades may use
        # consumer -> layers -> [(when, cost)], the costs seen within PEAK_WINDOW
        self._seen: dict[str, dict[Layers, list[tuple[float, float]]]] = {}
        self._peaks: dict[str, list[float]] = {}  # consumer -> peak cost of each step
        self._steps: dict[str, list[tuple[Layers, float]]] = {}  # consumer -> its steps now

    def allocate(
        self,
        estimate: float,
        demands: list[Demand],
        now: float,
        upgrade_limit: float | None = None,
    ) -> Allocation:
        result = Allocation()
        budget = estimate
        self._upgrade_slack = 0.0 if upgrade_limit is None else max(0.0, estimate - upgrade_limit)
        video: list[tuple[Demand, list[tuple[Layers, float]]]] = []
        for demand in sorted(demands, key=lambda d: d.priority):
            if demand.paused or not demand.layers:
                result.layers[demand.consumer_id] = None
            elif demand.priority is Priority.AUDIO:
                layers, cost = max(demand.layers.items())
                result.layers[demand.consumer_id] = layers
                result.allocated += cost
                budget -= cost
            else:
                steps, peaks = _steps(demand, self._peak_costs(demand, now))
                self._peaks[demand.consumer_id] = peaks
                self._steps[demand.consumer_id] = steps
                video.append((demand, steps))
        chosen = {demand.consumer_id: -1 for demand, _ in video}
        budget = self._give_base_layers(video, chosen, budget, now)
        wanting: tuple[Demand, float] | None = None
        for priority in (Priority.SCREEN, Priority.SPEAKER, Priority.VIDEO):
            members = [(d, s) for d, s in video if d.priority is priority]
            budget, blocked = self._fill(members, chosen, budget, now)
            if wanting is None and blocked is not None:
                wanting = blocked
        for demand, steps in video:
            index = chosen[demand.consumer_id]
            result.layers[demand.consumer_id] = steps[index][0] if index >= 0 else None
            result.allocated += steps[index][1] if index >= 0 else 0.0
            self._remember(demand, steps[index][0] if index >= 0 else None, now)
        if wanting is not None:
            result.probe_bitrate = result.allocated + wanting[1] * PROBE_MARGIN
        self._forget_gone({d.consumer_id for d in demands})
        return result

    def _peak_costs(self, demand: Demand, now: float) -> dict[Layers, float]:
        """Each layer's cost at its highest within ``PEAK_WINDOW``."""
        seen = self._seen.setdefault(demand.consumer_id, {})
        for layers, cost in demand.layers.items():
            history = seen.setdefault(layers, [])
            history.append((now, cost))
            while history[0][0] < now - PEAK_WINDOW:
                del history[0]
        return {layers: max(c for _, c in seen[layers]) for layers in demand.layers}

    def _charge(
        self,
        consumer_id: str,
        index: int,
        cost: float,
        budget: float,
        now: float,
        peak: float | None = None,
    ) -> float | None:
        """What taking step ``index`` (costing ``cost``, ``peak`` at most lately) uses of
        ``budget``; None: no."""
        had = self._had.get(consumer_id)
        if had is not None and self._steps[consumer_id][index][0] <= had:
            # Kept: counted at KEEP_MARGIN of its cost, so it goes only when clearly short.
            charge = cost * KEEP_MARGIN
            return charge if charge <= budget else None
        if now - self._downgraded_at.get(consumer_id, -UPGRADE_HOLD) < UPGRADE_HOLD:
            return None
        judged = max(cost, peak or 0.0)
        return cost if judged * UPGRADE_HEADROOM <= budget - self._upgrade_slack else None

    def _give_base_layers(
        self,
        video: list[tuple[Demand, list[tuple[Layers, float]]]],
        chosen: dict[str, int],
        budget: float,
        now: float,
    ) -> float:
        for demand, steps in video:
            peak = self._peaks[demand.consumer_id][0]
            charge = self._charge(demand.consumer_id, 0, steps[0][1], budget, now, peak)
            if charge is not None:
                chosen[demand.consumer_id] = 0
                budget -= charge
        return budget

    def _fill(
        self,
        members: list[tuple[Demand, list[tuple[Layers, float]]]],
        chosen: dict[str, int],
        budget: float,
        now: float,
    ) -> tuple[float, tuple[Demand, float] | None]:
        """Round-robin one step at a time; returns the budget left and who wanted more."""
        blocked: tuple[Demand, float] | None = None
        progress = True
        while progress:
            progress = False
            for demand, steps in members:
                index = chosen[demand.consumer_id]
                if index < 0 or index + 1 >= len(steps):
                    continue
                cost = steps[index + 1][1] - steps[index][1]
                peak = self._peaks[demand.consumer_id][index + 1] - steps[index][1]
                charge = self._charge(demand.consumer_id, index + 1, cost, budget, now, peak)
                if charge is not None:
                    chosen[demand.consumer_id] = index + 1
                    budget -= charge
                    progress = True
                elif blocked is None:
                    # A probe must show what the upgrade is judged by: the peak.
                    blocked = (demand, max(cost, peak))
        for demand, steps in members:
            if chosen[demand.consumer_id] < 0 and blocked is None:
                blocked = (demand, max(steps[0][1], self._peaks[demand.consumer_id][0]))
        return budget, blocked

    def _remember(self, demand: Demand, layers: Layers | None, now: float) -> None:
        consumer_id = demand.consumer_id
        had = self._had.get(consumer_id)
        if had is not None and (layers is None or layers < had):
            if had[0] not in {spatial for spatial, _ in demand.layers}:
                # The encoding it holds went quiet (not outbid): still held for a while.
                silent_since = self._silent_since.setdefault(consumer_id, now)
                if now - silent_since < HELD_SILENCE:
                    return
            self._downgraded_at[consumer_id] = now
        self._silent_since.pop(consumer_id, None)
        self._had[consumer_id] = layers

    def _forget_gone(self, present: set[str]) -> None:
        for consumer_id in [c for c in self._had if c not in present]:
            del self._had[consumer_id]
            self._downgraded_at.pop(consumer_id, None)
            self._silent_since.pop(consumer_id, None)
        for consumer_id in [c for c in self._seen if c not in present]:
            del self._seen[consumer_id]
            self._peaks.pop(consumer_id, None)
            self._steps.pop(consumer_id, None)
