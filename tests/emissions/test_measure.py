"""measure_emissions against real codecarbon measurements with forced powers."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import psutil
import pytest

from graft_hpo.config import EmissionsConfig
from graft_hpo.emissions import EmissionsResult
from graft_hpo.emissions import check_country
from graft_hpo.emissions import measure_emissions
from graft_hpo.exceptions import ConfigError

J_PER_KWH = 3.6e6
CPU_W = 10.0
RAM_W = 5.0
# A sampling period longer than the bodies below: codecarbon then samples only at start and
# stop. With short periods its timer threads, starved of the GIL by a busy Python loop, can
# overlap and count the same interval twice (seen: 2-3x RAM energy at 0.2 s).
SLOW_SAMPLING = EmissionsConfig(country_iso_code="USA", measure_power_secs=30.0)
FORCED = {"force_cpu_power": CPU_W, "force_ram_power": RAM_W}


def _busy(seconds: float) -> float:
    """Spin one thread for ``seconds`` of wall time; return the process CPU seconds used."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pass
    return time.process_time() - cpu0


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An empty working directory and HOME, to check codecarbon writes into neither."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    return work, home


def test_real_measurement_matches_power_times_time(
    isolated: tuple[Path, Path], tmp_path: Path
) -> None:
    intensity_g_per_kwh = 400.0
    outer = time.perf_counter()
    with measure_emissions(
        SLOW_SAMPLING,
        output_dir=str(tmp_path / "cc_out"),
        tracker_kwargs={**FORCED, "force_carbon_intensity_g_co2e_kwh": intensity_g_per_kwh},
    ) as m:
        t0 = time.perf_counter()
        cpu_s = _busy(1.0)
        wall_s = time.perf_counter() - t0
    outer_s = time.perf_counter() - outer  # the body, and the tracker's start and stop
    r = m.result
    assert r.error is None
    assert r.energy_kwh is not None and r.energy_kwh > 0
    assert r.cpu_energy_kwh is not None and r.ram_energy_kwh is not None
    assert r.gpu_energy_kwh is not None and r.duration_s is not None and r.co2_kg is not None
    assert 1.0 <= r.duration_s < 1.5
    # RAM: forced constant power over at least the body and at most the whole measurement
    # (the floor charges the tracker's start and stop too: a few ms idle, more under load)
    assert r.ram_power_w == pytest.approx(RAM_W)
    assert RAM_W * wall_s <= r.ram_energy_kwh * J_PER_KWH <= RAM_W * outer_s * 1.01
    # CPU in process mode: forced power times this process's share of all cores. Our CPU
    # seconds cover the body only; codecarbon's window adds its start/stop bookkeeping and its
    # timer threads (a few % of 1 s), hence 20%. A load-blind estimate would be 2x off on 2 cores.
    expected_cpu_j = CPU_W * cpu_s / psutil.cpu_count()
    assert r.cpu_energy_kwh * J_PER_KWH == pytest.approx(expected_cpu_j, rel=0.2)
    total = r.cpu_energy_kwh + r.gpu_energy_kwh + r.ram_energy_kwh
    assert r.energy_kwh == pytest.approx(total, rel=1e-9)
    assert r.co2_kg == pytest.approx(r.energy_kwh * intensity_g_per_kwh / 1000.0, rel=1e-9)
    assert r.metrics() == {
        "energy_kwh": r.energy_kwh,
        "cpu_energy_kwh": r.cpu_energy_kwh,
        "gpu_energy_kwh": r.gpu_energy_kwh,
        "ram_energy_kwh": r.ram_energy_kwh,
        "co2_kg": r.co2_kg,
    }
    # no emissions.csv, lock file or .codecarbon.config anywhere we can see
    work, home = isolated
    assert list(work.iterdir()) == []
    assert list(home.iterdir()) == []
    assert list((tmp_path / "cc_out").iterdir()) == []


def test_country_grid_intensity_sets_co2(isolated: tuple[Path, Path]) -> None:
    ratios = {}
    for country in ("USA", "FRA"):
        cfg = EmissionsConfig(country_iso_code=country, measure_power_secs=30.0)
        with measure_emissions(cfg, tracker_kwargs=FORCED) as m:
            _busy(0.3)
        r = m.result
        assert r.error is None and r.energy_kwh and r.co2_kg
        ratios[country] = r.co2_kg / r.energy_kwh  # kg CO2eq per kWh
    # Published grid intensities: US ~0.37 kg/kWh, France (nuclear) well under 0.15.
    assert 0.2 < ratios["USA"] < 0.6
    assert 0.0 < ratios["FRA"] < 0.15


def test_unknown_country_is_an_error_not_a_world_average() -> None:
    check_country("FRA")
    with pytest.raises(ConfigError) as info:
        check_country("usa")
    assert str(info.value) == (
        "emissions.country_iso_code must be an ISO 3166-1 alpha-3 code known to codecarbon, "
        "such as USA, FRA or DEU (did you mean 'USA'?); got 'usa'"
    )
    with measure_emissions(EmissionsConfig(country_iso_code="XXQ")) as m:
        ran = True
    assert ran
    assert m.result.error is not None
    assert m.result.error.startswith("ConfigError: emissions.country_iso_code must be")
    assert m.result.metrics() == {}


def test_disabled_measures_nothing() -> None:
    with measure_emissions(EmissionsConfig(enabled=False)) as m:
        time.sleep(0.05)
        with pytest.raises(RuntimeError, match="after the with block"):
            _ = m.result
    assert m.result.error == "disabled"
    assert m.result.metrics() == {}
    assert m.result.duration_s is not None and m.result.duration_s >= 0.05


def test_start_failure_lets_the_body_finish(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import codecarbon

    def broken_start(self: object) -> None:
        raise RuntimeError("no sensors")

    monkeypatch.setattr(codecarbon.OfflineEmissionsTracker, "start", broken_start)
    ran = False
    with (
        caplog.at_level(logging.WARNING, logger="graft_hpo.emissions"),
        measure_emissions(SLOW_SAMPLING, tracker_kwargs=FORCED) as m,
    ):
        ran = True
    assert ran
    assert m.result.error == "RuntimeError: no sensors"
    assert m.result.metrics() == {}
    assert "failed to start (RuntimeError: no sensors)" in caplog.text


def test_import_failure_lets_the_body_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    with measure_emissions(SLOW_SAMPLING) as m:
        ran = True
    assert ran
    assert m.result.error is not None
    assert m.result.error.startswith("ModuleNotFoundError: import of codecarbon halted")


def test_stop_failure_is_tagged(monkeypatch: pytest.MonkeyPatch) -> None:
    import codecarbon

    real_stop = codecarbon.OfflineEmissionsTracker.stop

    def broken_stop(self: codecarbon.OfflineEmissionsTracker) -> None:
        real_stop(self)  # stop codecarbon's timer threads, then fail
        raise OSError("disk full")

    monkeypatch.setattr(codecarbon.OfflineEmissionsTracker, "stop", broken_stop)
    with measure_emissions(SLOW_SAMPLING, tracker_kwargs=FORCED) as m:
        _busy(0.05)
    assert m.result.error == "OSError: disk full"
    assert m.result.energy_kwh is None and m.result.metrics() == {}


def test_tracker_that_swallows_its_errors_is_tagged(monkeypatch: pytest.MonkeyPatch) -> None:
    import codecarbon

    class SilentTracker:  # codecarbon's own decorators log and swallow every exception
        def __init__(self, **kwargs: object) -> None:
            self.kwargs = kwargs

        def start(self) -> None:
            pass

        def stop(self) -> None:
            pass

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", SilentTracker)
    with measure_emissions(SLOW_SAMPLING) as m:
        pass
    assert m.result.error == "RuntimeError: codecarbon returned no emissions data"


def test_body_exception_propagates_after_stopping(isolated: tuple[Path, Path]) -> None:
    outer = time.perf_counter()
    with (
        pytest.raises(ValueError, match="diverged"),
        measure_emissions(SLOW_SAMPLING, tracker_kwargs=FORCED) as m,
    ):
        t0 = time.perf_counter()
        _busy(0.2)
        wall_s = time.perf_counter() - t0
        raise ValueError("loss diverged")
    outer_s = time.perf_counter() - outer
    # the tracker was stopped and measured the work done before the failure: at least the
    # body, at most the whole measurement with the tracker's start and stop
    assert m.result.error is None
    assert m.result.ram_energy_kwh is not None
    assert RAM_W * wall_s <= m.result.ram_energy_kwh * J_PER_KWH <= RAM_W * outer_s * 1.01


def test_result_metrics_leave_out_unmeasured() -> None:
    r = EmissionsResult(energy_kwh=2e-6, co2_kg=1e-6, error=None)
    assert r.metrics() == {"energy_kwh": 2e-6, "co2_kg": 1e-6}


def test_snapshot_reports_running_totals_below_the_final_result() -> None:
    with measure_emissions(EmissionsConfig(measure_power_secs=1.0)) as handle:
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            sum(range(1000))
        first = handle.snapshot()
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            sum(range(1000))
        second = handle.snapshot()
    assert first is not None and second is not None
    assert first.energy_kwh is not None and second.energy_kwh is not None
    assert 0 < first.energy_kwh < second.energy_kwh <= handle.result.energy_kwh
    assert handle.snapshot() is None  # nothing is measured once the block has ended


def test_snapshot_is_none_when_disabled() -> None:
    with measure_emissions(EmissionsConfig(enabled=False)) as handle:
        assert handle.snapshot() is None
