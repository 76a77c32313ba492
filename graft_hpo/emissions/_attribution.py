"""A trial's share of a GPU's energy when several processes use the device at once.

codecarbon reads a GPU's energy from NVML for the whole device, so trials that share one
(``resources.gpu < 1``) are each charged all of it. While a trial trains on CUDA, an
:class:`NvmlSampler` samples the device every ``emissions.measure_power_secs``: its energy
counter (or its power draw), and per process the SM utilisation over the last window and the
memory held. :func:`attribute_gpu_energy` then charges the trial, interval by interval, the
device's energy times its share of that interval:

1. ``utilisation``: its SM utilisation over the sum of every process's, when any was busy;
2. ``memory``: else (the device idle in that window) its memory over all processes' memory;
3. ``equal``: else, or when NVML never lists this process (a container with its own PID
   namespace sees different PIDs than NVML reports), an equal share of the processes listed;
4. ``absent``: nothing for an interval in which NVML lists other processes but not this one,
   although it lists it in others (it was not on the device then);
5. ``whole``: when NVML lists no process at all, the whole interval, as codecarbon does.

The shares of the processes on a device add up to 1 in every interval, so the trials' attributed
energies add up to the device's. The arithmetic is pure (samples in, joules out) and tested
without a GPU; only the sampler talks to NVML (``nvidia-ml-py``, a codecarbon dependency).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import threading
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from graft_hpo.emissions._measure import EmissionsResult

__all__ = [
    "GpuAttribution",
    "GpuSample",
    "NvmlSampler",
    "attribute_gpu_energy",
    "gpu_index",
    "interval_energy_j",
    "interval_share",
    "with_attributed_gpu",
]

logger = logging.getLogger(__name__)

J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class GpuSample:
    """One reading of one GPU.

    Attributes:
        t_s: when, in seconds of a monotonic clock.
        energy_mj: the device's energy counter (mJ since the driver loaded), or None where
            NVML does not have one (before Volta).
        power_w: the device's power draw now, W, or None.
        util: process id -> SM utilisation in % over the window since the previous sample.
        memory: process id -> device memory the process holds, bytes.
    """

    t_s: float
    energy_mj: float | None = None
    power_w: float | None = None
    util: Mapping[int, float] = field(default_factory=dict)
    memory: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GpuAttribution:
    """One process's part of a device's energy over a run of samples.

    Attributes:
        energy_j: the energy charged to the process, J.
        device_j: the device's whole energy over the same time, J.
        shared: another process was seen on the device.
        method: the share rule that covered most of the energy: ``utilisation``,
            ``memory``, ``equal``, ``absent`` or ``whole`` (see the module docstring).
    """

    energy_j: float
    device_j: float
    shared: bool
    method: str

    @property
    def share(self) -> float:
        """``energy_j / device_j``, 1.0 when the device used no energy."""
        return self.energy_j / self.device_j if self.device_j > 0 else 1.0


def interval_energy_j(a: GpuSample, b: GpuSample) -> float:
    """The device's energy between two samples, J.

    The difference of the energy counters when both have one (and it did not go back, as after
    a driver reload); else the trapezoid of the two power readings (or the one there is) over
    the interval; else 0.

    Example:
        >>> interval_energy_j(GpuSample(0.0, power_w=100.0), GpuSample(2.0, power_w=300.0))
        400.0
    """
    if a.energy_mj is not None and b.energy_mj is not None and b.energy_mj >= a.energy_mj:
        return (b.energy_mj - a.energy_mj) / 1000.0
    dt = max(b.t_s - a.t_s, 0.0)
    powers = [p for p in (a.power_w, b.power_w) if p is not None]
    return dt * sum(powers) / len(powers) if powers else 0.0


def interval_share(sample: GpuSample, pid: int, *, visible: bool = True) -> tuple[float, str]:
    """Process ``pid``'s share of the interval that ends at ``sample``, and the rule used.

    Args:
        sample: the reading that ends the interval.
        pid: the process to charge.
        visible: whether NVML lists ``pid`` in any sample of the run; if not, its PID is not
            NVML's (a container) and it gets an equal share of every interval.

    Example:
        >>> interval_share(GpuSample(1.0, util={7: 60.0, 8: 20.0}), 7)
        (0.75, 'utilisation')
    """
    processes = set(sample.util) | set(sample.memory)
    if not processes:
        return 1.0, "whole"
    if pid not in processes:
        return (0.0, "absent") if visible else (1.0 / len(processes), "equal")
    busy = sum(sample.util.values())
    if busy > 0:
        return sample.util.get(pid, 0.0) / busy, "utilisation"
    held = sum(sample.memory.values())
    if held > 0:
        return sample.memory.get(pid, 0.0) / held, "memory"
    return 1.0 / len(processes), "equal"


def attribute_gpu_energy(samples: Sequence[GpuSample], pid: int) -> GpuAttribution:
    """Process ``pid``'s part of the device energy over consecutive ``samples``.

    Each interval between two samples is charged with the share of the later one (NVML's
    utilisation is reported over the window that ends at a reading).

    Args:
        samples: readings of one device in time order; fewer than two give zero energy.
        pid: the process to charge (this process: ``os.getpid()``).

    Returns:
        The process's energy and the device's, in J.
    """
    energy = device = 0.0
    by_method: dict[str, float] = {}
    shared = any(len(set(s.util) | set(s.memory)) > 1 for s in samples)
    visible = any(pid in s.util or pid in s.memory for s in samples)
    for a, b in itertools.pairwise(samples):
        joules = interval_energy_j(a, b)
        share, method = interval_share(b, pid, visible=visible)
        energy += share * joules
        device += joules
        by_method[method] = by_method.get(method, 0.0) + joules
    method = max(by_method, key=lambda m: by_method[m]) if by_method else "whole"
    return GpuAttribution(energy, device, shared, method)


def with_attributed_gpu(
    result: EmissionsResult, attribution: GpuAttribution, *, pue: float = 1.0
) -> EmissionsResult:
    """``result`` with its GPU energy replaced by ``attribution``'s, and the totals to match.

    codecarbon's parts already hold its PUE, NVML's joules do not: the attributed energy is
    multiplied by ``pue`` (the tracker's) before it replaces the GPU part, and the total
    changes by the difference. CO2 changes in proportion to the total (one grid, one carbon
    intensity), the mean GPU power in proportion to the GPU energy. A result without a
    measured total is returned as is.

    Example:
        >>> from graft_hpo.emissions import EmissionsResult
        >>> r = EmissionsResult(energy_kwh=3.0, cpu_energy_kwh=1.0, gpu_energy_kwh=2.0,
        ...                     ram_energy_kwh=0.0, co2_kg=1.5)
        >>> a = GpuAttribution(energy_j=0.5 * J_PER_KWH, device_j=2.0 * J_PER_KWH,
        ...                    shared=True, method="utilisation")
        >>> out = with_attributed_gpu(r, a)
        >>> out.gpu_energy_kwh, out.energy_kwh, out.co2_kg, out.gpu_energy_share
        (0.5, 1.5, 0.75, 0.25)
        >>> with_attributed_gpu(r, a, pue=1.5).gpu_energy_kwh  # the parts hold the PUE
        0.75
    """
    if result.energy_kwh is None:
        return result
    gpu_kwh = attribution.energy_j / J_PER_KWH * pue
    old_gpu = result.gpu_energy_kwh or 0.0
    energy = max(result.energy_kwh + (gpu_kwh - old_gpu), 0.0)
    scale = energy / result.energy_kwh if result.energy_kwh > 0 else 1.0
    power = result.gpu_power_w
    return dataclasses.replace(
        result,
        gpu_energy_kwh=gpu_kwh,
        energy_kwh=energy,
        co2_kg=None if result.co2_kg is None else result.co2_kg * scale,
        gpu_power_w=None if power is None or old_gpu <= 0 else power * gpu_kwh / old_gpu,
        gpu_energy_share=attribution.share,
        gpu_attribution=attribution.method,
    )


class NvmlSampler:
    """Samples one CUDA device through NVML on a background thread (see the module docstring).

    Never raises: if NVML or the device cannot be read, it logs why once and holds no samples,
    and the trial keeps codecarbon's whole-device figure.

    Args:
        device: the torch device index (as in ``cuda:N``); mapped to NVML's device by UUID, so
            ``CUDA_VISIBLE_DEVICES`` (which Ray sets) is respected.
        period_s: seconds between samples.
    """

    def __init__(self, device: int, *, period_s: float = 1.0) -> None:
        self.device = device
        self.period_s = period_s
        self._samples: list[GpuSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: Any = None
        self._handle: Any = None
        self._last_us = 0

    def start(self) -> NvmlSampler:
        """Take a first sample and start sampling; returns ``self``."""
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = _nvml_handle(pynvml, self.device)
            self._last_us = int(time.time() * 1e6)
            self._sample()
        except Exception as err:  # no NVML, no such device: nothing is attributed
            logger.info("GPU energy is not attributed per process (%s)", err)
            self._close()
            return self
        self._thread = threading.Thread(target=self._run, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def samples(self) -> list[GpuSample]:
        """The samples so far, oldest first."""
        with self._lock:
            return list(self._samples)

    def stop(self) -> list[GpuSample]:
        """Take a last sample, stop, and return every sample."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._safe_sample()
        self._close()
        return self.samples()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._safe_sample()

    def _safe_sample(self) -> None:
        try:
            self._sample()
        except Exception as err:  # one failed reading is a gap, not a failed trial
            logger.debug("NVML sample failed: %s", err)

    def _sample(self) -> None:
        nvml, handle = self._nvml, self._handle
        now = time.monotonic()
        energy = _optional(lambda: float(nvml.nvmlDeviceGetTotalEnergyConsumption(handle)))
        power = _optional(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0)
        memory = {
            int(p.pid): float(p.usedGpuMemory or 0)
            for p in nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        }
        util: dict[int, list[float]] = {}
        try:
            for s in nvml.nvmlDeviceGetProcessUtilization(handle, self._last_us):
                util.setdefault(int(s.pid), []).append(float(s.smUtil))
                self._last_us = max(self._last_us, int(s.timeStamp))
        except nvml.NVMLError:  # no process sample in this window (NOT_FOUND)
            pass
        mean_util = {pid: sum(v) / len(v) for pid, v in util.items()}
        sample = GpuSample(now, energy, power, mean_util, memory)
        with self._lock:
            self._samples.append(sample)

    def _close(self) -> None:
        if self._nvml is not None:
            _optional(self._nvml.nvmlShutdown)
            self._nvml = None


def _optional(read: Any) -> Any:
    try:
        return read()
    except Exception:
        return None


def _nvml_handle(pynvml: Any, device: int) -> Any:
    """NVML's handle of torch's CUDA device ``device``: by UUID, else by visible index."""
    import torch

    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    if uuid is not None:
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
        except Exception as err:
            logger.debug("no NVML device with UUID GPU-%s (%s); using the index", uuid, err)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    index = int(ids[device]) if visible and device < len(ids) and ids[device].isdigit() else device
    return pynvml.nvmlDeviceGetHandleByIndex(index)


def gpu_index(device: Any) -> int | None:
    """The CUDA device index of ``device`` (``"cuda"``, ``"cuda:1"``, a torch device), or None
    for any other device."""
    text = str(device)
    if not text.startswith("cuda"):
        return None
    _, _, index = text.partition(":")
    if index:
        return int(index)
    import torch

    return int(torch.cuda.current_device())
