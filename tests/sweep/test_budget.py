"""The budget gate: measured totals read from a real store once per session, then kept from the
trials' reports (no store read per decision); time over sessions."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Any

import pytest
from ray import cloudpickle
from ray.tune.search import Searcher

from graft_hpo.sweep import _budget
from graft_hpo.sweep._budget import Budgets
from graft_hpo.sweep._budget import Ledger
from graft_hpo.sweep._budget import budget_gate
from graft_hpo.sweep._budget import exhausted
from graft_hpo.sweep._folder import SweepFolder
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import ensure_experiment
from graft_hpo.tracking import sweep_runs

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


def _gate(store: str, sweep_dir: Path, budgets: Budgets, **kwargs: Any) -> Any:
    """The gate around a searcher that always has a configuration, two trials at a time."""
    ledger = Ledger(
        budgets,
        tracking_uri=store,
        experiment="budget",
        sweep_id="s1",
        sweep_dir=str(sweep_dir),
        **kwargs,
    )
    return budget_gate(_Always(), 2, ledger)


class _Always(Searcher):
    def suggest(self, trial_id: str) -> dict[str, Any]:
        return {"x": 1}

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        pass


@pytest.fixture
def store_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read of a sweep's runs from the store by the gate (the sweep id each time)."""
    reads: list[str] = []

    def counted(**kwargs: Any) -> Any:
        reads.append(kwargs["sweep_id"])
        return sweep_runs(**kwargs)

    monkeypatch.setattr(_budget, "sweep_runs", counted)
    return reads


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
def test_a_starting_gate_counts_the_trials_already_in_the_store_running_ones_included(
    store: str, tmp_path: Path, budgets: Budgets, reason: str | None
) -> None:
    # a resumed sweep: the gate's first decision counts what earlier sessions measured
    got = _gate(store, tmp_path, budgets).suggest("t1")
    if reason is None:
        assert got == {"x": 1} and SweepFolder(tmp_path).read_stop() is None
    else:
        stop = SweepFolder(tmp_path).read_stop()
        assert got == Searcher.FINISHED and stop is not None and stop.startswith(reason), stop


def test_the_gate_reads_the_store_once_then_counts_what_trials_report(
    store: str, tmp_path: Path, store_reads: list[str]
) -> None:
    (running,) = [r for r in sweep_runs(experiment="budget", sweep_id="s1", tracking_uri=store)
                  if r.status == "RUNNING"]  # fmt: skip
    gate = _gate(store, tmp_path, Budgets(energy_kwh=5e-5))  # 3e-5 kWh in the store
    for i in range(20):  # every report cumulative: a trial counts with its largest
        assert gate.suggest(f"t{i}") == {"x": 1}
        gate.on_trial_result(f"t{i}", {"energy_kwh": 1e-7, "mlflow_run_id": f"r{i}"})
        gate.on_trial_complete(f"t{i}", {"energy_kwh": 5e-7, "mlflow_run_id": f"r{i}"})
    assert store_reads == ["s1"]  # one read for twenty decisions
    # the running trial of the earlier session reports again: its newer figure, not added
    gate.on_trial_result("old", {"energy_kwh": 1.1e-5, "mlflow_run_id": running.run_id})
    assert gate.ledger.spending.totals()["energy_kwh"] == pytest.approx(4.1e-5)
    # a failed trial's last report carries no figures: what it reported before still counts
    gate.suggest("big")
    gate.on_trial_result("big", {"energy_kwh": 1e-5, "mlflow_run_id": "rb"})
    gate.on_trial_complete("big", {"trial_failed": "nan loss", "mlflow_run_id": "rb"})
    assert gate.suggest("next") == Searcher.FINISHED
    stop = SweepFolder(tmp_path).read_stop()
    assert stop is not None and stop.startswith("energy budget reached: 5.1e-05 kWh"), stop
    assert store_reads == ["s1"]


def test_the_shared_selection_counts_in_the_budgets(store: str, tmp_path: Path) -> None:
    budgets = Budgets(energy_kwh=3.5e-5)  # the trials measured 3e-5 kWh: not reached alone
    assert _gate(store, tmp_path, budgets).suggest("t1") == {"x": 1}
    shared = {"energy_kwh": 1e-5, "co2_kg": 4e-6}  # what ranking the data cost first
    assert _gate(store, tmp_path, budgets, shared=shared).suggest("t1") == Searcher.FINISHED
    stop = SweepFolder(tmp_path).read_stop()
    assert stop is not None and stop.startswith("energy budget reached: 4e-05 kWh measured")


def test_a_restored_gate_reads_the_store_again_not_its_saved_totals(
    store: str, tmp_path: Path, store_reads: list[str]
) -> None:
    gate = _gate(store, tmp_path, Budgets(energy_kwh=3.5e-5))
    frozen = cloudpickle.dumps(gate)  # what Tune pickles before the first trial
    gate.suggest("t1")
    gate.on_trial_result("t1", {"energy_kwh": 6e-6, "mlflow_run_id": "not-in-the-store"})
    state = gate.get_state()  # what Tune saves of it as the sweep goes
    assert "ledger" not in state
    restored = pickle.loads(frozen)
    restored.set_state(state)
    # reported but never logged (the sweep was killed): the store is what counts
    assert restored.suggest("t2") == {"x": 1}
    assert restored.ledger.spending.totals()["energy_kwh"] == pytest.approx(3e-5)
    assert store_reads == ["s1", "s1"]
    assert gate.suggest("t3") == Searcher.FINISHED  # 3e-5 + 6e-6 in the first one


def test_the_time_budget_alone_never_reads_the_store(
    tmp_path: Path, store_reads: list[str]
) -> None:
    SweepFolder(tmp_path).session_started()
    gate = _gate("sqlite:///unused.db", tmp_path, Budgets(time_s=3600))
    assert gate.suggest("t1") == {"x": 1}
    assert store_reads == []


def test_time_counts_running_sessions_only(tmp_path: Path) -> None:
    now = time.time()
    # an earlier session of 100 s, then a pause of an hour (not charged)
    (tmp_path / "sessions.json").write_text(json.dumps([[now - 3700, now - 3600]]))
    SweepFolder(tmp_path).session_started()
    assert 100 <= SweepFolder(tmp_path).wall_s() < 110
    assert exhausted(Budgets(time_s=200), {}, sweep_dir=str(tmp_path)) is None
    reason = exhausted(Budgets(time_s=90), {}, sweep_dir=str(tmp_path))
    assert reason is not None and reason.startswith("time budget reached: 10")
    SweepFolder(tmp_path).session_ended()
    ended = SweepFolder(tmp_path).wall_s()
    time.sleep(0.05)
    assert SweepFolder(tmp_path).wall_s() == ended  # a closed session stops the clock


def test_a_session_whose_driver_was_killed_ends_when_the_folder_last_changed(
    tmp_path: Path,
) -> None:
    import os

    now = time.time()
    # a session started 2 h ago, its driver SIGKILLed (never closed) an hour and 58 min ago:
    # its last write to the sweep folder (Tune's state) was 120 s after it started
    (tmp_path / "sessions.json").write_text(json.dumps([[now - 7200, None]]))
    os.utime(tmp_path / "sessions.json", (now - 7200, now - 7200))
    state = tmp_path / "ray" / "experiment_state.json"
    state.parent.mkdir()
    state.write_text("{}")
    os.utime(state, (now - 7080, now - 7080))
    SweepFolder(tmp_path).session_started()  # the resume, now
    first, second = json.loads((tmp_path / "sessions.json").read_text())
    assert first[1] == pytest.approx(now - 7080)
    assert second[1] is None
    assert 120 <= SweepFolder(tmp_path).wall_s() < 130  # not 7200: the pause is not charged
