"""Failed picks the robot reported: where not to send it again for the next few cycles.

A grasp can be right about the instance and still fail: the surface under the cup is tilted or
crumpled, the product is in unstable equilibrium (thesis Section 5.3.3 lists these). Nothing in
the next image tells the network so, and a pile that did not move gives the same grasp again, so
a cell without feedback repeats the failure until an operator steps in. With the PLC's
`pick_outcome` (registers.toml; its values are the map's `pick_outcome` enumeration, decoded by
`edge.plc`), the appliance remembers each failed grasp's point for
`forget_after_cycles` cycles and offers another instance meanwhile (`edge.ranking.selection`).
One class serves the supervisor and the simulated cell's depth baselines, so every method of
`binpick simcell` gets the same memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class FailedSpot:
    u: float  # camera pixels
    v: float
    cycles_left: int


class FailedPickMemory:
    """Camera-pixel points of recently failed grasps, each forgotten after a number of cycles."""

    def __init__(self, forget_after_cycles: int, radius_px: float, remember_published: int = 64):
        self.forget_after_cycles = int(forget_after_cycles)
        self.radius_px = float(radius_px)
        self._published: OrderedDict[int, tuple[float, float]] = OrderedDict()
        self._remember_published = remember_published
        self.spots: list[FailedSpot] = []

    @property
    def enabled(self) -> bool:
        return self.forget_after_cycles > 0

    def published(self, sequence_id: int, u: float, v: float) -> None:
        """A grasp went out under `sequence_id` (camera pixels): an outcome may name it later."""
        self._published[sequence_id] = (u, v)
        self._published.move_to_end(sequence_id)
        while len(self._published) > self._remember_published:
            self._published.popitem(last=False)

    def outcome(self, sequence_id: int, failed: bool) -> bool:
        """Record the PLC's report on a published grasp (`failed`: the pick failed); True when it
        added a failed spot."""
        point = self._published.get(sequence_id)
        if not self.enabled or not failed or point is None:
            return False
        self.spots.append(FailedSpot(point[0], point[1], self.forget_after_cycles))
        return True

    def failed_at(self, u: float, v: float) -> None:
        """A failed grasp at a known point (callers that hold no sequence ids: the cell's baselines)."""
        if self.enabled:
            self.spots.append(FailedSpot(u, v, self.forget_after_cycles))

    def clear(self) -> None:
        """Forget every failed spot and every published grasp (a new bin: the old points mean
        nothing there). The published grasps go too: the PLC reports the old bin's last pick
        after the swap, and that report must not mark a spot in the new bin."""
        self.spots.clear()
        self._published.clear()

    def begin_cycle(self) -> list[tuple[float, float]]:
        """The points to avoid in this cycle; each spot counts this cycle against its lifetime."""
        live = [s for s in self.spots if s.cycles_left > 0]
        for spot in live:
            spot.cycles_left -= 1
        self.spots = [s for s in live if s.cycles_left > 0]
        return [(s.u, s.v) for s in live]


def waits(
    u: float,
    v: float,
    label: int,
    labels: np.ndarray | None,
    avoid: Sequence[tuple[float, float]],
    radius: float,
) -> bool:
    """True when a grasp at (u, v) on region `label` of `labels` should wait its turn: the region
    holds a recently failed point, or the grasp lies within `radius` of one (the product may have
    slid a little). Same pixels for all arguments; `labels` None checks the radius only."""
    for a, b in avoid:
        if (u - a) ** 2 + (v - b) ** 2 < radius**2:
            return True
        row, col = round(b), round(a)
        inside = labels is not None and 0 <= row < labels.shape[0] and 0 <= col < labels.shape[1]
        if inside and labels[row, col] == label:
            return True
    return False
