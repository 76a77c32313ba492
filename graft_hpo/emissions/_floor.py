"""The least energy and CO2 a measured block can be charged: its duration at its power.

codecarbon integrates power between samples: one when it starts, one every
``measure_power_secs``, and one at ``flush()``/``stop()`` only if its last sample is over 50 ms
old. A block shorter than that is charged about nothing; and a sample its timer thread takes
late (a busy Python loop holds the GIL) loses the time it waited. Measured here: a 0.03 s busy
block was charged 1/25 of duration x power, a 3 s one 20% too little of its RAM energy.

So every figure is raised, part by part, to its floor::

    floor_kWh(part) = duration_s x power_W(part) / 3.6e6          part in cpu, gpu, ram
    energy_kWh     += sum of the raises                           (the parts already hold PUE)
    co2_kg         += sum of the raises x carbon intensity (kg/kWh, codecarbon's own)

and the parts raised by more than :data:`MEASURED_GAP` of their floor are named in
:attr:`EmissionsResult.estimated`: their figure is an estimate (duration x power), not
codecarbon's integration. The powers are the tracker's, times
its PUE (see :func:`graft_hpo.emissions._codecarbon.floor_powers`): for the CPU in codecarbon's
load mode, its per-CPU power times this process's CPU seconds over the block's duration; for
RAM, its RAM's power; for the GPU, the mean of NVML's power readings of the trial's device
(times its share where shared), and no GPU floor without them (codecarbon's mean GPU power
includes a sample over the first milliseconds, an energy-counter step over almost no time).
The arithmetic here is pure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from graft_hpo._names import CO2_KG
from graft_hpo._names import CPU_ENERGY_KWH
from graft_hpo._names import ENERGY_KWH
from graft_hpo._names import GPU_ENERGY_KWH
from graft_hpo._names import RAM_ENERGY_KWH

if TYPE_CHECKING:
    from graft_hpo.emissions._measure import EmissionsResult

__all__ = ["PARTS", "PowerFloor", "apply_floor", "no_decrease"]

J_PER_KWH = 3.6e6
# A part codecarbon measured within this share of its floor is raised to it but still called
# measured: its samples lose 1-4% of an ordinary trial's time (the time between them), and a
# tag on nearly every run would say nothing. Further below, the figure is mostly the floor's.
MEASURED_GAP = 0.1

# part name -> its EmissionsResult energy field (kWh)
PARTS = {"cpu": CPU_ENERGY_KWH, "gpu": GPU_ENERGY_KWH, "ram": RAM_ENERGY_KWH}


@dataclass(frozen=True)
class PowerFloor:
    """The power a block drew, over how long.

    Attributes:
        duration_s: the block's wall-clock seconds so far.
        cpu_w: mean CPU power over them, W (PUE included); None where unknown.
        gpu_w: mean GPU power, W (this process's share when attributed); None where unknown.
        ram_w: mean RAM power, W; None where unknown.
        kg_per_kwh: the carbon intensity codecarbon applies, kg CO2eq per kWh; None where
            unknown (CO2 is then left as measured).
    """

    duration_s: float
    cpu_w: float | None = None
    gpu_w: float | None = None
    ram_w: float | None = None
    kg_per_kwh: float | None = None

    def part_kwh(self, part: str) -> float:
        """``duration_s x power`` of ``part`` (``cpu``, ``gpu``, ``ram``), kWh; 0 if unknown.

        Example:
            >>> round(PowerFloor(duration_s=0.5, cpu_w=7.2).part_kwh("cpu") * J_PER_KWH, 9)
            3.6
        """
        watts = getattr(self, f"{part}_w")
        if watts is None or watts <= 0 or self.duration_s <= 0:
            return 0.0
        return float(watts) * self.duration_s / J_PER_KWH


def _joined(parts: set[str]) -> str | None:
    return ",".join(p for p in PARTS if p in parts) or None


def _named(estimated: str | None) -> set[str]:
    return set(estimated.split(",")) if estimated else set()


def apply_floor(result: EmissionsResult, floor: PowerFloor) -> EmissionsResult:
    """``result`` with every part raised to ``floor``'s, the totals to match.

    A result without a measured total (``energy_kwh`` None) is returned as is.

    Example:
        >>> from graft_hpo.emissions import EmissionsResult
        >>> r = EmissionsResult(energy_kwh=1e-6, cpu_energy_kwh=0.0, gpu_energy_kwh=0.0,
        ...                     ram_energy_kwh=1e-6, co2_kg=4e-7)
        >>> out = apply_floor(r, PowerFloor(duration_s=3.6, cpu_w=5.0, ram_w=0.5,
        ...                                 kg_per_kwh=0.4))
        >>> out.cpu_energy_kwh, out.ram_energy_kwh, out.estimated  # 5 W x 3.6 s = 5e-6 kWh
        (5e-06, 1e-06, 'cpu')
        >>> round(out.energy_kwh, 12), round(out.co2_kg, 12)
        (6e-06, 2.4e-06)
    """
    if result.energy_kwh is None:
        return result
    changes: dict[str, float | str | None] = {}
    raised: set[str] = set()
    extra = 0.0
    for part, attr in PARTS.items():
        least, have = floor.part_kwh(part), getattr(result, attr) or 0.0
        if least > have:
            changes[attr] = least
            extra += least - have
            if have < (1.0 - MEASURED_GAP) * least:  # mostly duration x power: an estimate
                raised.add(part)
    if not changes:
        return result
    changes[ENERGY_KWH] = result.energy_kwh + extra
    if result.co2_kg is not None and floor.kg_per_kwh is not None:
        changes[CO2_KG] = result.co2_kg + extra * floor.kg_per_kwh
    changes["estimated"] = _joined(raised | _named(result.estimated))
    return dataclasses.replace(result, **changes)  # type: ignore[arg-type]


def no_decrease(previous: EmissionsResult | None, current: EmissionsResult) -> EmissionsResult:
    """``current``, with no part, total or CO2 below ``previous``'s (cumulative figures).

    A part kept from ``previous`` keeps its estimated mark; the total rises by what the kept
    parts add, CO2 in proportion to the total (one grid, one carbon intensity).

    Example:
        >>> from graft_hpo.emissions import EmissionsResult
        >>> a = EmissionsResult(energy_kwh=3.0, cpu_energy_kwh=2.0, ram_energy_kwh=1.0,
        ...                     co2_kg=1.5, estimated="cpu")
        >>> b = EmissionsResult(energy_kwh=3.0, cpu_energy_kwh=1.0, ram_energy_kwh=2.0,
        ...                     co2_kg=1.5)
        >>> out = no_decrease(a, b)
        >>> out.cpu_energy_kwh, out.ram_energy_kwh, out.energy_kwh, out.co2_kg, out.estimated
        (2.0, 2.0, 4.0, 2.0, 'cpu')
    """
    if previous is None or previous.energy_kwh is None or current.energy_kwh is None:
        return current
    changes: dict[str, float | str | None] = {}
    estimated = _named(current.estimated)
    extra = 0.0
    for part, attr in PARTS.items():
        before, now = getattr(previous, attr), getattr(current, attr)
        if before is not None and before > (now or 0.0):
            changes[attr] = before
            extra += before - (now or 0.0)
            estimated.discard(part)
            estimated |= {part} & _named(previous.estimated)
    energy = max(current.energy_kwh + extra, previous.energy_kwh)
    if energy == current.energy_kwh and not changes:
        return current
    changes[ENERGY_KWH] = energy
    if current.co2_kg is not None:
        scaled = current.co2_kg * energy / current.energy_kwh if current.energy_kwh > 0 else 0.0
        changes[CO2_KG] = max(scaled, previous.co2_kg or 0.0)
    changes["estimated"] = _joined(estimated)
    return dataclasses.replace(current, **changes)  # type: ignore[arg-type]
