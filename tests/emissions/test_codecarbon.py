"""The corners of codecarbon graft-hpo relies on: an upgrade that moves one fails here, by name.

See graft_hpo/emissions/_codecarbon.py for why each is needed.
"""

from __future__ import annotations

import inspect

import pytest

codecarbon = pytest.importorskip("codecarbon")


@pytest.mark.parametrize("method", ["__init__", "start", "stop"])
def test_the_trackers_methods_still_expose_their_undecorated_function(method: str) -> None:
    from codecarbon import OfflineEmissionsTracker

    decorated = getattr(OfflineEmissionsTracker, method)
    assert callable(getattr(decorated, "__wrapped__", None)), (
        f"OfflineEmissionsTracker.{method} has no __wrapped__: codecarbon changed how it "
        "swallows exceptions; a failed measurement would go unexplained "
        "(graft_hpo/emissions/_codecarbon.py)"
    )


def test_the_tracker_takes_the_keywords_graft_hpo_passes() -> None:
    from codecarbon import OfflineEmissionsTracker

    accepted: set[str] = set()
    for klass in inspect.getmro(OfflineEmissionsTracker):
        if "__init__" in klass.__dict__:
            accepted |= set(inspect.signature(klass.__dict__["__init__"]).parameters)
    needed = {
        "country_iso_code",
        "tracking_mode",
        "log_level",
        "measure_power_secs",
        "project_name",
        "output_dir",
        "allow_multiple_runs",
        "emissions_endpoint",
        "electricitymaps_api_token",
        "output_handlers",
        "force_ram_power",
    }
    assert needed <= accepted, f"codecarbon no longer takes {sorted(needed - accepted)}"


def test_the_ram_estimate_and_the_output_hook_are_where_they_were() -> None:
    from codecarbon.external.ram import RAM
    from codecarbon.output_methods.base_output import BaseOutput

    assert float(RAM(tracking_mode="machine").total_power().W) > 0
    assert list(inspect.signature(BaseOutput.out).parameters) == ["self", "total", "delta"]


def test_the_tracker_internals_behind_the_energy_floor_are_where_they_were() -> None:
    from graft_hpo.config import EmissionsConfig
    from graft_hpo.emissions._codecarbon import _grid_intensity
    from graft_hpo.emissions._codecarbon import start_tracker
    from graft_hpo.emissions._codecarbon import stop_tracker

    cfg = EmissionsConfig(country_iso_code="USA", measure_power_secs=30.0)
    tracker = start_tracker(cfg, "corners", None, {"force_cpu_power": 10.0})
    try:
        # our serialised sampler replaced codecarbon's, and its timer calls ours
        assert callable(getattr(type(tracker), "_measure_power_and_energy", None))
        assert "_measure_power_and_energy" in vars(tracker)
        assert tracker._scheduler.function is tracker._measure_power_and_energy
        hardware = {type(h).__name__: h for h in tracker._hardware}
        cpu, ram = hardware["CPU"], hardware["RAM"]
        assert (cpu._mode, cpu._tracking_mode) == ("cpu_load", "process")
        assert float(cpu._tdp) == 10.0 and int(cpu._cpu_count) >= 1
        assert float(ram.total_power().W) > 0 and float(tracker._pue) == 1.0
        assert 0.2 < (_grid_intensity(tracker) or 0.0) < 0.6  # US grid, kg CO2eq/kWh
    finally:
        stop_tracker(tracker)


def test_every_part_codecarbon_reports_already_holds_its_pue() -> None:
    # with_attributed_gpu multiplies NVML's joules by the PUE because codecarbon's own parts
    # hold it (and the total is their sum): a real tracker with PUE 1.5 and a forced RAM power
    import time

    from graft_hpo.config import EmissionsConfig
    from graft_hpo.emissions._codecarbon import start_tracker
    from graft_hpo.emissions._codecarbon import stop_tracker
    from graft_hpo.emissions._codecarbon import tracker_pue
    from graft_hpo.emissions._measure import _result_from

    cfg = EmissionsConfig(country_iso_code="USA", measure_power_secs=30.0)
    kwargs = {"force_cpu_power": 10.0, "force_ram_power": 6.0, "pue": 1.5}
    tracker = start_tracker(cfg, "pue", None, kwargs)
    assert tracker_pue(tracker) == 1.5
    time.sleep(0.3)
    result = _result_from(stop_tracker(tracker))
    assert result.ram_power_w == pytest.approx(6.0 * 1.5)
    ram_j = result.ram_energy_kwh * 3.6e6
    assert ram_j == pytest.approx(6.0 * 1.5 * result.duration_s, rel=0.05)
    parts = result.cpu_energy_kwh + result.gpu_energy_kwh + result.ram_energy_kwh
    assert result.energy_kwh == pytest.approx(parts, rel=1e-9)
