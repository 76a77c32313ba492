"""A trial finds its own earlier runs through the store's search (not by reading the sweep's
every run): the runs of its Ray trial id, newest first, and how ``_earlier_run`` reads them."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from graft_hpo.sweep._trainable import _earlier_run
from graft_hpo.sweep._trainable import trial_runs
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import _runs
from graft_hpo.tracking import ensure_experiment

pytestmark = pytest.mark.mlflow


def _run(uri: str, sweep_id: str, trial_id: str, status: str, **tags: str) -> str:
    run = RunLogger.start(
        uri, "trials", tags={"sweep_id": sweep_id, "ray_trial_id": trial_id, **tags}
    )
    if status != "RUNNING":
        run.end(status)
    time.sleep(0.01)  # distinct start times: newest first is well defined
    return run.run_id


def test_a_trial_reads_only_its_own_runs_newest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_experiment(uri, "trials")
    first = _run(uri, "s1", "a", "FINISHED", early_stopped="true")
    for i in range(5):
        _run(uri, "s1", f"other{i}", "FINISHED")
    _run(uri, "s2", "a", "FAILED")  # the same Ray trial id in another sweep
    plan: Any = SimpleNamespace(tracking_uri=uri, experiment="trials", sweep_id="s1")
    filters: list[str] = []
    search = _runs.search_records

    def seen(client: Any, ids: Any, filter_string: str = "", **kwargs: Any) -> Any:
        filters.append(filter_string)
        return search(client, ids, filter_string, **kwargs)

    monkeypatch.setattr(_runs, "search_records", seen)
    # stopped by an interrupted sweep, not by ASHA: read as KILLED, so it goes on
    earlier = _earlier_run(plan, "a")
    assert earlier is not None and earlier.run_id == first and earlier.status == "KILLED"
    assert filters == ["tags.`sweep_id` = 's1' AND tags.`ray_trial_id` = 'a'"]
    second = _run(uri, "s1", "a", "RUNNING")
    assert [r.run_id for r in trial_runs(plan, "a")] == [second, first]
    assert _earlier_run(plan, "new") is None
