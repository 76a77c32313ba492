"""Energy and CO2 of a block of code, measured by codecarbon's offline tracker.

codecarbon is imported only inside :func:`measure_emissions`, so importing this module is cheap.
Measurement never kills training: if codecarbon cannot be imported, started or stopped, the
body still runs and the result says why nothing was measured. No figure falls below the block's
duration at its measured power, however short the block (:mod:`graft_hpo.emissions._floor`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from graft_hpo._names import CO2_KG
from graft_hpo._names import CPU_ENERGY_KWH
from graft_hpo._names import ENERGY_KWH
from graft_hpo._names import GPU_ENERGY_KWH
from graft_hpo._names import RAM_ENERGY_KWH

if TYPE_CHECKING:
    from graft_hpo.config import EmissionsConfig

from graft_hpo.emissions._attribution import NvmlSampler
from graft_hpo.emissions._attribution import attribute_gpu_energy
from graft_hpo.emissions._attribution import with_attributed_gpu
from graft_hpo.emissions._codecarbon import check_country
from graft_hpo.emissions._codecarbon import floor_powers
from graft_hpo.emissions._codecarbon import process_cpu_s
from graft_hpo.emissions._codecarbon import start_tracker
from graft_hpo.emissions._codecarbon import stop_tracker
from graft_hpo.emissions._codecarbon import tracker_pue
from graft_hpo.emissions._floor import apply_floor
from graft_hpo.emissions._floor import no_decrease

__all__ = ["EmissionsMeasurement", "EmissionsResult", "check_country", "measure_emissions"]

_logger = logging.getLogger(__name__)

# the EmissionsResult fields logged as metrics: each field is named as its metric (DESIGN.md 3)
_METRIC_FIELDS = (
    ENERGY_KWH,
    CPU_ENERGY_KWH,
    GPU_ENERGY_KWH,
    RAM_ENERGY_KWH,
    CO2_KG,
    "gpu_energy_share",
)


@dataclass(frozen=True)
class EmissionsResult:
    """What codecarbon measured over one block of code.

    Every quantity is ``None`` when it was not measured; ``error`` then says why.

    Attributes:
        energy_kwh: total energy, kWh (CPU + GPU + RAM, times the PUE).
        cpu_energy_kwh: CPU energy, kWh (this process and its children, by CPU time share).
        gpu_energy_kwh: GPU energy, kWh (whole devices, from NVML; 0 without a GPU).
        ram_energy_kwh: RAM energy, kWh.
        co2_kg: emissions, kg CO2eq (energy times the country's grid carbon intensity).
        duration_s: wall-clock seconds covered: codecarbon's own when it measured, else the
            block's duration measured here.
        cpu_power_w: mean CPU power, W.
        gpu_power_w: mean GPU power, W.
        ram_power_w: mean RAM power, W.
        gpu_energy_share: set when the GPU was shared with other processes: the share of the
            device's energy charged to this block (``gpu_energy_kwh`` is then that share,
            see :mod:`graft_hpo.emissions._attribution`); None otherwise.
        gpu_attribution: the share rule used then (``utilisation``, ``memory``, ``equal``).
        estimated: the parts (``cpu``, ``gpu``, ``ram``, comma-separated) whose codecarbon
            figure fell below the block's duration times the part's power and was raised to
            it: an estimate, not a measurement (:mod:`graft_hpo.emissions._floor`); None when
            every part is codecarbon's own figure.
        error: ``None`` when measured; else ``"disabled"`` or ``"<ExceptionType>: <message>"``.
    """

    energy_kwh: float | None = None
    cpu_energy_kwh: float | None = None
    gpu_energy_kwh: float | None = None
    ram_energy_kwh: float | None = None
    co2_kg: float | None = None
    duration_s: float | None = None
    cpu_power_w: float | None = None
    gpu_power_w: float | None = None
    ram_power_w: float | None = None
    gpu_energy_share: float | None = None
    gpu_attribution: str | None = None
    estimated: str | None = None
    error: str | None = None

    def metrics(self) -> dict[str, float]:
        """The measured quantities under the project's metric names.

        Returns:
            A subset of ``energy_kwh``, ``cpu_energy_kwh``, ``gpu_energy_kwh``,
            ``ram_energy_kwh`` (kWh) and ``co2_kg`` (kg CO2eq); quantities that were not
            measured are left out.
        """
        out: dict[str, float] = {}
        for name in _METRIC_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class EmissionsMeasurement:
    """The handle :func:`measure_emissions` yields; its :attr:`result` is set on exit."""

    def __init__(self) -> None:
        self._result: EmissionsResult | None = None
        self._tracker: Any = None
        self._latest: Any = None  # the EmissionsData codecarbon handed our output handler
        self._gpu: NvmlSampler | None = None  # samples the shared GPU, for attribution
        self._started = time.perf_counter()  # the block's start, and its CPU seconds then
        self._cpu_s0: float | None = None
        self._last: EmissionsResult | None = None  # the last figure handed out

    def flushed(self, totals: Any) -> None:
        """codecarbon's running totals at a ``flush()``, kept for :meth:`snapshot`."""
        self._latest = totals

    def snapshot(self) -> EmissionsResult | None:
        """The energy and CO2 measured so far, while the ``with`` block runs.

        Uses codecarbon's ``flush()``, which measures up to now and hands the running totals
        to the output handler installed by :func:`measure_emissions`; nothing is written.
        Returns None when nothing is being measured or the measurement fails (it never
        raises: measurement must not kill training).
        """
        if self._tracker is None:
            return None
        reading = self._reading()
        try:
            self._tracker.flush()
        except Exception as exc:
            _logger.debug("codecarbon flush failed: %s", _error_text(exc))
            return None
        if self._latest is None:
            return None
        tracker = self._tracker
        attributed = self._attributed(_result_from(self._latest), tracker)
        return self._floored(tracker, attributed, reading)

    def _begin(self) -> None:
        """The measurement starts now (its duration and CPU seconds count from here)."""
        self._started, self._cpu_s0 = time.perf_counter(), process_cpu_s()

    def _reading(self) -> tuple[float, float | None]:
        """Seconds since :meth:`_begin`, and this process's CPU seconds over them."""
        cpu_s = process_cpu_s()
        used = None if cpu_s is None or self._cpu_s0 is None else cpu_s - self._cpu_s0
        return time.perf_counter() - self._started, used

    def _floored(
        self, tracker: Any, result: EmissionsResult, reading: tuple[float, float | None]
    ) -> EmissionsResult:
        """``result`` raised to the block's floor and to the last figure handed out.

        The floor's duration is the longer of the measurement's so far (from before the
        tracker started) and codecarbon's; its CPU seconds are the measurement's.
        """
        try:
            block_s, cpu_s = reading
            duration_s = max(block_s, result.duration_s or 0.0)
            gpu_w = self._gpu_power_w(result)
            floor = floor_powers(tracker, result, duration_s=duration_s, cpu_s=cpu_s, gpu_w=gpu_w)
            result = apply_floor(result, floor)
        except Exception as exc:  # a floor is a safeguard: never a failed measurement
            _logger.warning("energy floor not applied (%s)", _error_text(exc))
        self._last = result = no_decrease(self._last, result)
        return result

    def _gpu_power_w(self, result: EmissionsResult) -> float | None:
        """Mean NVML power of the block's GPU, times its share where shared; W or None."""
        samples = self._gpu.samples() if self._gpu is not None else []
        powers = [s.power_w for s in samples if s.power_w is not None]
        if not powers:
            return None
        share = 1.0 if result.gpu_energy_share is None else result.gpu_energy_share
        return sum(powers) / len(powers) * share

    def _attributed(self, result: EmissionsResult, tracker: Any) -> EmissionsResult:
        """``result`` with this process's share of the GPU's energy, if others used it too."""
        samples = self._gpu.samples() if self._gpu is not None else []
        attribution = attribute_gpu_energy(samples, os.getpid())
        if not attribution.shared:
            return result
        return with_attributed_gpu(result, attribution, pue=tracker_pue(tracker))

    @property
    def result(self) -> EmissionsResult:
        """The measurement, available once the ``with`` block has exited.

        Raises:
            RuntimeError: if read inside the ``with`` block.
        """
        if self._result is None:
            raise RuntimeError("the emissions result is available after the with block exits")
        return self._result


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _to_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _result_from(data: Any) -> EmissionsResult:
    def get(attr: str) -> float | None:  # attributes of codecarbon's EmissionsData
        return _to_float(getattr(data, attr, None))

    return EmissionsResult(
        energy_kwh=get("energy_consumed"),
        cpu_energy_kwh=get("cpu_energy"),
        gpu_energy_kwh=get("gpu_energy"),
        ram_energy_kwh=get("ram_energy"),
        co2_kg=get("emissions"),
        duration_s=get("duration"),
        cpu_power_w=get("cpu_power"),
        gpu_power_w=get("gpu_power"),
        ram_power_w=get("ram_power"),
    )


@contextlib.contextmanager
def measure_emissions(
    cfg: EmissionsConfig,
    *,
    project_name: str = "graft-hpo",
    output_dir: str | None = None,
    tracker_kwargs: Mapping[str, Any] | None = None,
    gpu_device: int | None = None,
) -> Iterator[EmissionsMeasurement]:
    """Measure the energy and CO2 of the ``with`` block with codecarbon's offline tracker.

    The tracker runs in ``process`` mode (this process and its children), makes no network
    calls and writes no files. If ``cfg.enabled`` is false, or codecarbon cannot be imported,
    started or stopped, the block still runs to completion, ``result.error`` says why and a
    warning is logged. An exception raised by the block itself propagates once the tracker is
    stopped (the result is filled in first).

    Args:
        cfg: ``emissions`` section of the pipeline config (country, sampling period in s).
        project_name: codecarbon's project name.
        output_dir: folder codecarbon is pointed at (created if missing); nothing is written
            there. ``None`` -> the system's temporary folder.
        tracker_kwargs: extra keyword arguments for ``codecarbon.OfflineEmissionsTracker``,
            overriding the defaults (tests pass ``force_cpu_power``, ``force_ram_power`` in W,
            ``force_carbon_intensity_g_co2e_kwh``).
        gpu_device: the CUDA device index the block runs on, if any: NVML samples it, and if
            other processes use it too, the block is charged its share of the device's energy
            instead of all of it (``result.gpu_energy_share``).

    Yields:
        A handle whose ``result`` (:class:`EmissionsResult`) is set when the block exits.

    Example:
        >>> from graft_hpo.config import EmissionsConfig
        >>> with measure_emissions(EmissionsConfig(enabled=False)) as m:
        ...     pass
        >>> m.result.error
        'disabled'
    """
    handle = EmissionsMeasurement()
    started_at = time.perf_counter()

    def _fallback(error: str) -> EmissionsResult:
        return EmissionsResult(duration_s=time.perf_counter() - started_at, error=error)

    if not cfg.enabled:
        try:
            yield handle
        finally:
            handle._result = _fallback("disabled")
        return

    tracker: Any = None
    start_error: str | None = None
    handle._begin()  # the floor covers the whole measurement, the tracker's start and stop too
    try:
        tracker = start_tracker(cfg, project_name, output_dir, tracker_kwargs, handle.flushed)
        handle._tracker = tracker
    except Exception as exc:  # measurement must never kill training
        start_error = _error_text(exc)
        _logger.warning(
            "energy and CO2 are not measured: codecarbon failed to start (%s)", start_error
        )
    if tracker is not None and gpu_device is not None:
        handle._gpu = NvmlSampler(gpu_device, period_s=cfg.measure_power_secs).start()
    started_at = time.perf_counter()
    try:
        yield handle
    finally:
        handle._tracker = None
        if handle._gpu is not None:
            handle._gpu.stop()
        if tracker is None:
            handle._result = _fallback(start_error or "RuntimeError: no tracker")
        else:
            measured = handle._attributed(_stop_tracker(tracker, _fallback), tracker)
            handle._result = handle._floored(tracker, measured, handle._reading())


@functools.cache
def warm_up(cfg: EmissionsConfig) -> None:
    """Pay codecarbon's one-off cost in this process now, outside any measurement.

    The first tracker of a process probes the hardware (CPU model and TDP table, GPUs; about
    1.1 s here) and loads codecarbon's static data; later trackers reuse both. Without a
    warm-up that second is charged to whichever trial runs first on a worker, and identical
    configurations get different CO2 on the front. Starts and stops one tracker, once per
    process and configuration; a failure is left for :func:`measure_emissions` to report.
    """
    if not cfg.enabled:
        return
    try:
        tracker = start_tracker(cfg, "graft-hpo-warm-up", None, None)
    except Exception:  # reported by the measurement that follows
        return
    with contextlib.suppress(Exception):
        tracker.stop()


def _stop_tracker(tracker: Any, fallback: Callable[[str], EmissionsResult]) -> EmissionsResult:
    try:
        data = stop_tracker(tracker)
        result = _result_from(data)
        if result.energy_kwh is None or result.co2_kg is None:
            raise RuntimeError(
                f"codecarbon returned non-finite energy {data.energy_consumed!r} kWh "
                f"or emissions {data.emissions!r} kg"
            )
    except Exception as exc:
        error = _error_text(exc)
        _logger.warning("energy and CO2 are not measured: codecarbon failed to stop (%s)", error)
        return fallback(error)
    return result
