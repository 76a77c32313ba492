"""codecarbon behind one module: every call into it, private ones included.

Two private corners of codecarbon are relied on, and ``tests/emissions/test_codecarbon.py``
fails loudly when an upgrade moves either:

- ``__wrapped__`` of ``OfflineEmissionsTracker.__init__``, ``start`` and ``stop``: codecarbon
  wraps them in a decorator that logs and swallows every exception, which would hide why
  nothing was measured, so the undecorated functions are called (on an instance made with
  ``__new__``, since calling the class runs the decorated ``__init__``).
- ``codecarbon.external.ram.RAM``: the machine's RAM power estimate, to charge a process only
  its share of it.
- ``_measure_power_and_energy``, which its timer thread and ``flush``/``stop`` call unlocked:
  each integrates power since the last sample, so two that overlap count the same interval
  twice. An instance attribute set before ``__init__`` (which hands it to the timer) makes
  them take turns (:func:`_serialise_sampling`).
- The tracker's ``_hardware`` (its ``RAM``'s ``total_power()``; on its ``CPU`` in load mode,
  ``_mode``, ``_tracking_mode``, ``_tdp`` and ``_cpu_count``) and ``_pue``: the power behind
  a block's floor
  (:func:`floor_powers`, :mod:`graft_hpo.emissions._floor`); its ``_emissions`` and ``_geo``
  for the grid's carbon intensity before anything was charged. Where one is missing, the floor
  falls back on the mean powers codecarbon reports.

The rest is codecarbon's public surface: ``OfflineEmissionsTracker``'s keyword arguments
(checked against its signature), ``BaseOutput.out``, ``EmissionsData``'s fields and the
energy-mix table behind ``country_iso_code``.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from graft_hpo.emissions._floor import PowerFloor
from graft_hpo.exceptions import ConfigError

if TYPE_CHECKING:
    from graft_hpo.config import EmissionsConfig
    from graft_hpo.emissions._measure import EmissionsResult

__all__ = ["check_country", "floor_powers", "process_cpu_s", "start_tracker", "stop_tracker"]

_logger = logging.getLogger(__name__)


def check_country(country_iso_code: str) -> None:
    """Check that codecarbon knows the grid of a country.

    codecarbon itself only logs an unknown code and then uses the world's average carbon
    intensity, which would make every CO2 figure quietly wrong. Imports codecarbon.

    Args:
        country_iso_code: ISO 3166-1 alpha-3 code, upper case (``USA``, ``FRA``, ``DEU``).

    Raises:
        ConfigError: an unknown code (with the closest known code, if any).
    """
    from codecarbon.input import DataSource

    known = DataSource().get_global_energy_mix_data()
    if country_iso_code in known:
        return
    close = difflib.get_close_matches(str(country_iso_code).upper(), list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        "emissions.country_iso_code must be an ISO 3166-1 alpha-3 code known to codecarbon, "
        f"such as USA, FRA or DEU{hint}; got {country_iso_code!r}"
    )


def _unsuppressed(method: Callable[..., Any]) -> Callable[..., Any]:
    # codecarbon wraps __init__, start and stop in a decorator that logs and swallows every
    # exception, which would hide why nothing was measured; call the undecorated function.
    return getattr(method, "__wrapped__", method)


def _tracker_kwargs(
    cfg: EmissionsConfig,
    tracker_cls: type,
    project_name: str,
    output_dir: str,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "country_iso_code": cfg.country_iso_code,
        "tracking_mode": "process",
        "log_level": "error",
        "measure_power_secs": cfg.measure_power_secs,
        "project_name": project_name,
        # Nothing is written there (no output method); codecarbon only requires it to exist.
        "output_dir": output_dir,
        # The lock file (/tmp/.codecarbon.lock) and its SIGINT/SIGTERM handlers are only used
        # when multiple runs are disallowed; parallel trials each run a tracker.
        "allow_multiple_runs": True,
        # Explicit values beat ~/.codecarbon.config, ./.codecarbon.config and CODECARBON_*
        # variables, which could otherwise switch on HTTP outputs or the Electricity Maps API.
        "emissions_endpoint": None,
        "electricitymaps_api_token": "",
    }
    # OfflineEmissionsTracker.__init__ forwards **kwargs to its base: look at every __init__
    accepted: set[str] = set()
    for klass in inspect.getmro(tracker_cls):
        init = klass.__dict__.get("__init__")
        if init is not None:
            with contextlib.suppress(TypeError, ValueError):
                accepted.update(inspect.signature(init).parameters)
    if "output_methods" in accepted:
        kwargs["output_methods"] = []  # save_to_* flags are deprecated in codecarbon 3.x
    else:
        kwargs["save_to_file"] = False
    ram_w = _process_ram_power_w()
    if ram_w is not None and "force_ram_power" in accepted:
        kwargs["force_ram_power"] = ram_w
    kwargs.update(extra or {})
    return kwargs


def _process_ram_power_w() -> float | None:
    """This process's share of the machine's RAM power, by resident memory.

    codecarbon's process mode charges every process at least two DIMMs (10 W on x86) whatever
    its size, so concurrent trials together would claim more RAM power than the machine has.
    Charging each its share of the machine's estimate (share = the process's RSS / total
    memory, taken when measuring starts; a trial starts no child processes) keeps the sum
    within the machine's.
    """
    try:
        import psutil
        from codecarbon.external.ram import RAM

        machine_w = float(RAM(tracking_mode="machine").total_power().W)
        rss = psutil.Process().memory_info().rss
        return machine_w * min(1.0, rss / psutil.virtual_memory().total)
    except Exception as err:  # an estimate only: codecarbon's own then applies
        _logger.debug("no process RAM share (%s); codecarbon estimates RAM power", err)
        return None


def start_tracker(
    cfg: EmissionsConfig,
    project_name: str,
    output_dir: str | None,
    extra: Mapping[str, Any] | None,
    on_flush: Callable[[Any], None] | None = None,
) -> Any:
    """A started ``OfflineEmissionsTracker``; raises what codecarbon raised (see module doc).

    Args:
        on_flush: receives the running totals (codecarbon's ``EmissionsData``) at each
            ``tracker.flush()``.
    """
    from codecarbon import OfflineEmissionsTracker
    from codecarbon.output_methods.base_output import BaseOutput

    class _Latest(BaseOutput):
        """Hands the running totals codecarbon reports on flush() to ``on_flush``."""

        def out(self, total: Any, delta: Any) -> None:
            assert on_flush is not None
            on_flush(total)

    check_country(cfg.country_iso_code)
    folder = os.path.abspath(output_dir) if output_dir is not None else tempfile.gettempdir()
    os.makedirs(folder, exist_ok=True)
    kwargs = _tracker_kwargs(cfg, OfflineEmissionsTracker, project_name, folder, extra)
    level = kwargs.get("log_level")
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if isinstance(numeric, int):
        # codecarbon applies log_level only late in __init__; warnings logged before it
        # (e.g. "multiple instances allowed") would otherwise leak through.
        logging.getLogger("codecarbon").setLevel(numeric)
    if on_flush is not None:
        kwargs["output_handlers"] = [*kwargs.get("output_handlers", []), _Latest()]
    tracker = OfflineEmissionsTracker.__new__(OfflineEmissionsTracker)
    _serialise_sampling(tracker)
    _unsuppressed(OfflineEmissionsTracker.__init__)(tracker, **kwargs)
    try:
        _unsuppressed(type(tracker).start)(tracker)
    except Exception:
        # start may have launched codecarbon's timer threads before failing: stop them
        with contextlib.suppress(Exception):
            tracker.stop()
        raise
    return tracker


def _serialise_sampling(tracker: Any) -> None:
    """Make codecarbon's samples of ``tracker`` take turns (see the module docstring).

    Each sample charges the power times the time since the previous one; the timer thread's
    and a ``flush()``'s, overlapping, both charged it (seen: 1.9x the energy of a 1 s busy
    block sampled every 1 s; a 3 s one, 17 J of RAM for 15 J forced). Under one lock, the
    second starts after the first has moved the last sample's time.
    """
    sample = getattr(type(tracker), "_measure_power_and_energy", None)
    if sample is None:
        _logger.debug("codecarbon has no _measure_power_and_energy; samples may overlap")
        return
    lock = threading.Lock()

    def one_at_a_time() -> None:
        with lock:
            # a timer sample queued behind stop(), which clears the start time: nothing left
            # to charge (it raised a TypeError in codecarbon's thread at short periods)
            if getattr(tracker, "_start_time", 0.0) is not None:
                sample(tracker)

    tracker._measure_power_and_energy = one_at_a_time


def stop_tracker(tracker: Any) -> Any:
    """Stop a tracker; its final ``EmissionsData``. Raises what codecarbon raised."""
    _unsuppressed(type(tracker).stop)(tracker)
    data = getattr(tracker, "final_emissions_data", None)
    if data is None:
        raise RuntimeError("codecarbon returned no emissions data")
    return data


def process_cpu_s() -> float | None:
    """CPU seconds (user + system) of this process and its children, ended ones included;
    None if psutil cannot read them.

    Each process counts its own seconds and those of the children it has reaped (the kernel's
    ``children_user``/``children_system``): a child that ends inside a block (a DataLoader
    worker, a subprocess) moves its seconds to its parent's count instead of taking them away,
    so the count does not fall as children come and go.
    """
    try:
        import psutil

        me = psutil.Process()
        total = 0.0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        return total
    except Exception as err:
        _logger.debug("no process CPU time (%s); the CPU floor uses codecarbon's power", err)
        return None


def floor_powers(
    tracker: Any,
    result: EmissionsResult,
    *,
    duration_s: float,
    cpu_s: float | None,
    gpu_w: float | None = None,
) -> PowerFloor:
    """The powers ``tracker`` charged over a block, for its floor (module ``_floor``).

    CPU: in codecarbon's load mode with process tracking, its power is the CPU's power (TDP or
    ``force_cpu_power``) times the process's CPU seconds over wall seconds over the CPU count,
    times the PUE: that over the block's ``cpu_s`` and ``duration_s``. Otherwise (RAPL, machine
    tracking), the mean CPU power codecarbon reports. RAM: its RAM's power now (constant when
    forced, as :func:`start_tracker` does), times the PUE; the mean it reports is not used where
    the RAM's own is known (samples that overlapped inflated it: 7.5 W reported for 5 W
    forced). GPU: ``gpu_w`` times the PUE; codecarbon's mean GPU power is not used, as its
    first sample divides an energy-counter step by a few milliseconds. Carbon intensity:
    ``result``'s CO2 over its energy, else the tracker's own lookup for its grid.

    Args:
        tracker: a started or stopped ``OfflineEmissionsTracker``.
        result: what it measured so far.
        duration_s: the block's wall-clock seconds so far.
        cpu_s: the CPU seconds of this process and its children over them, or None.
        gpu_w: the GPU power charged to the block (NVML's readings of its device, times its
            share), W before PUE; None: no GPU floor.
    """
    cpu_w, ram_w, pue = result.cpu_power_w, result.ram_power_w, tracker_pue(tracker)
    hardware = {type(h).__name__: h for h in getattr(tracker, "_hardware", [])}
    cpu, ram = hardware.get("CPU"), hardware.get("RAM")
    try:
        if ram is not None:
            ram_w = float(ram.total_power().W) * pue
        load_mode = (getattr(cpu, "_mode", None), getattr(cpu, "_tracking_mode", None))
        if (
            cpu is not None
            and load_mode == ("cpu_load", "process")
            and cpu_s is not None
            and duration_s > 0
        ):
            per_cpu_w = float(cpu._tdp) / int(cpu._cpu_count)
            cpu_w = per_cpu_w * pue * max(cpu_s, 0.0) / duration_s
    except Exception as err:  # a floor only: codecarbon's mean powers then apply
        _logger.debug("codecarbon's power model moved (%s); using its mean powers", err)
    energy, co2 = result.energy_kwh, result.co2_kg
    if energy is not None and co2 is not None and energy > 0 and co2 > 0:
        intensity: float | None = co2 / energy
    else:
        intensity = _grid_intensity(tracker)
    gpu_w = None if gpu_w is None else gpu_w * pue
    return PowerFloor(duration_s, cpu_w, gpu_w, ram_w, intensity)


def tracker_pue(tracker: Any) -> float:
    """The PUE ``tracker`` multiplies every part's energy by (codecarbon's ``_pue``); 1.0 where
    it has none. Energy measured beside codecarbon (NVML's joules) needs it too."""
    try:
        return float(getattr(tracker, "_pue", 1.0) or 1.0)
    except (TypeError, ValueError):
        return 1.0


def _grid_intensity(tracker: Any) -> float | None:
    """kg CO2eq per kWh of the tracker's grid (or its forced intensity), or None."""
    try:
        from codecarbon.core.units import Energy

        tracker._ensure_geo_metadata()
        tracker._ensure_emissions_engine()
        one_kwh = Energy.from_energy(kWh=1.0)
        return float(tracker._emissions.get_private_infra_emissions(one_kwh, tracker._geo))
    except Exception as err:
        _logger.debug("no carbon intensity from codecarbon (%s); CO2 is not floored", err)
        return None
