"""codecarbon behind one module: every call into it, private ones included.

Two private corners of codecarbon are relied on, and ``tests/emissions/test_codecarbon.py``
fails loudly when an upgrade moves either:

- ``__wrapped__`` of ``OfflineEmissionsTracker.__init__``, ``start`` and ``stop``: codecarbon
  wraps them in a decorator that logs and swallows every exception, which would hide why
  nothing was measured, so the undecorated functions are called (on an instance made with
  ``__new__``, since calling the class runs the decorated ``__init__``).
- ``codecarbon.external.ram.RAM``: the machine's RAM power estimate, to charge a process only
  its share of it.

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
from collections.abc import Callable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from graft_hpo.exceptions import ConfigError

if TYPE_CHECKING:
    from graft_hpo.config import EmissionsConfig

__all__ = ["check_country", "start_tracker", "stop_tracker"]

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
    _unsuppressed(OfflineEmissionsTracker.__init__)(tracker, **kwargs)
    try:
        _unsuppressed(type(tracker).start)(tracker)
    except Exception:
        # start may have launched codecarbon's timer threads before failing: stop them
        with contextlib.suppress(Exception):
            tracker.stop()
        raise
    return tracker


def stop_tracker(tracker: Any) -> Any:
    """Stop a tracker; its final ``EmissionsData``. Raises what codecarbon raised."""
    _unsuppressed(type(tracker).stop)(tracker)
    data = getattr(tracker, "final_emissions_data", None)
    if data is None:
        raise RuntimeError("codecarbon returned no emissions data")
    return data
