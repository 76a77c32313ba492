"""The budget gate's arithmetic: measured totals from a real store, time over sessions."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from graft_hpo.sweep._budget import Budgets
from graft_hpo.sweep._budget import exhausted
from graft_hpo.sweep._folder import session_ended
from graft_hpo.sweep._folder import session_started
from graft_hpo.sweep._folder import sweep_wall_s
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import ensure_experiment

pytestmark = pytest.mark.mlflow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sweep with a parent run (not counted) and two trial runs, one still RUNNING."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('budget') / 'mlflow.db'}"
    ensure_experiment(uri, "budget")
    tags = {"sweep_id": "s1", "graft_hpo.role": "trial"}
    parent = RunLogger.start(uri, "budget", tags={"sweep_id": "s1", "graft_hpo.role": "sweep"})
    parent.log_metrics({"energy_kwh": 100.0, "co2_kg": 100.0})  # a parent's totals never count
    done = RunLogger.start(uri, "budget", tags=tags)
    done.log_metrics({"energy_kwh": 2e-5, "co2_kg": 7e-6})
    done.end("FINISHED")
    running = RunLogger.start(uri, "budget", tags=tags)  # its energy so far counts too
    running.log_metrics({"energy_kwh": 1e-5, "co2_kg": 3e-6}, step=0)
    other = RunLogger.start(uri, "budget", tags={**tags, "sweep_id": "s2"})
    other.log_metrics({"energy_kwh": 1.0, "co2_kg": 1.0})  # another sweep's
    return uri


@pytest.mark.parametrize(
    ("budgets", "reason"),
    [
        (Budgets(energy_kwh=3.5e-5), None),  # 3e-5 kWh measured
        (Budgets(energy_kwh=3e-5), "energy budget reached: 3e-05 kWh measured"),
        (Budgets(co2_kg=1.1e-5), None),  # 1e-5 kg measured
        (Budgets(co2_kg=9e-6), "CO2 budget reached: 1e-05 kg measured"),
        (Budgets(co2_kg=1.0, energy_kwh=1e-6), "energy budget reached"),
        (Budgets(), None),
    ],
)
def test_totals_count_this_sweeps_trials_running_ones_included(
    store: str, tmp_path: Path, budgets: Budgets, reason: str | None
) -> None:
    got = exhausted(
        budgets, tracking_uri=store, experiment="budget", sweep_id="s1", sweep_dir=str(tmp_path)
    )
    if reason is None:
        assert got is None
    else:
        assert got is not None and got.startswith(reason), got


def test_the_shared_selection_counts_in_the_budgets(store: str, tmp_path: Path) -> None:
    where = {"tracking_uri": store, "experiment": "budget", "sweep_id": "s1"}
    budgets = Budgets(energy_kwh=3.5e-5)  # the trials measured 3e-5 kWh: not reached alone
    assert exhausted(budgets, sweep_dir=str(tmp_path), **where) is None
    shared = {"energy_kwh": 1e-5, "co2_kg": 4e-6}  # what ranking the data cost first
    reason = exhausted(budgets, sweep_dir=str(tmp_path), shared=shared, **where)
    assert reason is not None and reason.startswith("energy budget reached: 4e-05 kWh measured")


def test_time_counts_running_sessions_only(tmp_path: Path) -> None:
    now = time.time()
    # an earlier session of 100 s, then a pause of an hour (not charged)
    (tmp_path / "sessions.json").write_text(json.dumps([[now - 3700, now - 3600]]))
    session_started(str(tmp_path))
    assert 100 <= sweep_wall_s(str(tmp_path)) < 110
    where = {"tracking_uri": "unused", "experiment": "x", "sweep_id": "x"}
    assert exhausted(Budgets(time_s=200), sweep_dir=str(tmp_path), **where) is None
    reason = exhausted(Budgets(time_s=90), sweep_dir=str(tmp_path), **where)
    assert reason is not None and reason.startswith("time budget reached: 10")
    session_ended(str(tmp_path))
    ended = sweep_wall_s(str(tmp_path))
    time.sleep(0.05)
    assert sweep_wall_s(str(tmp_path)) == ended  # a closed session stops the clock
