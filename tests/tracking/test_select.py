"""select_run on a real MLflow store: the sweep's objectives, its id, and bad input.

The policies themselves (parsing, max/min, knee, budget, floor against brute force) are tested
without MLflow in tests/pareto/test_policy.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from graft_hpo.exceptions import ConfigError
from graft_hpo.pareto import choose
from graft_hpo.tracking import TAG_OBJECTIVES
from graft_hpo.tracking import TAG_ROLE
from graft_hpo.tracking import RunLogger
from graft_hpo.tracking import pareto_front
from graft_hpo.tracking import select_run

DEFAULT = [("val_acc", "max"), ("co2_kg", "min")]


# ---------------------------------------------------------------- select_run on a real store


@pytest.mark.mlflow
def test_select_run_reads_the_sweeps_objectives(store_uri: str) -> None:
    experiment = "select"
    parent = RunLogger.start(
        store_uri,
        experiment,
        tags={
            TAG_ROLE: "sweep",
            "sweep_id": "select-s1",
            TAG_OBJECTIVES: json.dumps([["val_acc", "max"], ["duration_s", "min"]]),
        },
    )
    ids = {}
    trials = {  # name: (val_acc, co2_kg, duration_s)
        "a": (0.95, 3.0, 50.0),
        "b": (0.90, 1.0, 20.0),
        "c": (0.85, 2.0, 10.0),  # on the accuracy-duration front only
        "d": (0.60, 0.5, 60.0),  # on neither front (e dominates it on both)
        "e": (0.80, 0.4, 5.0),
    }
    for name, (acc, co2, seconds) in trials.items():
        with RunLogger.start(
            store_uri,
            experiment,
            run_name=name,
            parent_run_id=parent.run_id,
            tags={"sweep_id": "select-s1", "strategy": "graft"},
        ) as run:
            run.log_metrics({"val_acc": acc, "co2_kg": co2, "duration_s": seconds})
        ids[run.run_id] = name
    parent.end()

    def pick(policy: str, **kwargs: Any) -> str:
        return ids[
            select_run(policy, experiment=experiment, tracking_uri=store_uri, **kwargs).run_id
        ]

    # the sweep's tag makes duration an objective: c is on the front and wins the budget
    assert pick("budget:duration_s<=15") == "c"
    assert pick("budget:duration_s<=15", sweep_id="select-s1") == "c"
    assert pick("floor:val_acc>=0.88") == "b"
    assert pick("min:duration_s") == "e"
    objectives = [("val_acc", "max"), ("duration_s", "min")]
    front = pareto_front(experiment=experiment, tracking_uri=store_uri, objectives=objectives)
    assert sorted(ids[p.run_id] for p in front) == ["a", "b", "c", "e"]
    assert pick("knee") == ids[choose(front, "knee", objectives).run_id]
    # objectives given explicitly: accuracy vs CO2, where c is dominated by b
    assert pick("budget:duration_s<=15", objectives=DEFAULT) == "e"
    with pytest.raises(
        ConfigError, match=r"satisfies budget:duration_s<=1\.0; the closest is run"
    ):
        pick("budget:duration_s<=1")
    with pytest.raises(ConfigError, match="sweep_id 'nope' not found"):
        pick("knee", sweep_id="nope")
    with pytest.raises(ConfigError, match=r"^--policy must be one of"):
        select_run("best", tracking_uri="/nonexistent/dir/mlflow.db", key="--policy")
