"""The sweep plan: everything a sweep needs, resolved once in the driver.

Plain, picklable data: the driver writes it to ``sweep.json`` (``graft-hpo resume`` reads it
back) and sends it to every trial. Preparing a sweep makes one; running and finishing it only
read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graft_hpo.config import PipelineConfig
from graft_hpo.config import config_from_dict
from graft_hpo.config import config_to_dict
from graft_hpo.exceptions import ConfigError
from graft_hpo.space import SearchSpace
from graft_hpo.space import space_from_dict
from graft_hpo.sweep._folder import write_json

__all__ = ["SweepPlan", "optuna_storage", "plan_from_dict", "plan_to_dict", "read_plan"]

PLAN_FILE = "sweep.json"


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep needs, resolved in the driver; plain data, picklable."""

    config: PipelineConfig
    space: SearchSpace
    sweep_id: str
    sweep_dir: str  # absolute
    tracking_uri: str  # absolute
    experiment: str
    parent_run_id: str
    trials: int
    address: str | None
    owns_parent_run: bool = True  # False inside `mlflow run`, which ends its own run

    @property
    def objectives(self) -> list[tuple[str, str]]:
        return [(o.metric, o.mode) for o in self.config.search.objectives]


def optuna_storage(plan: SweepPlan) -> str:
    """The study's RDB URL: ``search.storage``, else sqlite in the sweep folder."""
    return plan.config.search.storage or f"sqlite:///{Path(plan.sweep_dir) / 'optuna.db'}"


def plan_to_dict(plan: SweepPlan) -> dict[str, Any]:
    return {
        "config": config_to_dict(plan.config),
        "space": plan.space.to_dict(),
        "space_source": plan.space.source,
        "sweep_id": plan.sweep_id,
        "sweep_dir": plan.sweep_dir,
        "tracking_uri": plan.tracking_uri,
        "experiment": plan.experiment,
        "parent_run_id": plan.parent_run_id,
        "trials": plan.trials,
        "address": plan.address,
        "owns_parent_run": plan.owns_parent_run,
    }


def plan_from_dict(data: dict[str, Any]) -> SweepPlan:
    return SweepPlan(
        config=config_from_dict(data["config"]),
        space=space_from_dict(data["space"], source=data.get("space_source")),
        sweep_id=data["sweep_id"],
        sweep_dir=data["sweep_dir"],
        tracking_uri=data["tracking_uri"],
        experiment=data["experiment"],
        parent_run_id=data["parent_run_id"],
        trials=data["trials"],
        address=data.get("address"),
        owns_parent_run=data.get("owns_parent_run", True),
    )


def write_plan(plan: SweepPlan) -> Path:
    path = Path(plan.sweep_dir) / PLAN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, plan_to_dict(plan), indent=2)
    return path


def read_plan(sweep_dir: str) -> SweepPlan:
    path = Path(sweep_dir) / PLAN_FILE
    if not path.is_file():
        raise ConfigError(f"SWEEP_DIR {sweep_dir!r} holds no sweep.json: not a sweep folder")
    try:
        return plan_from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"SWEEP_DIR {sweep_dir!r}: sweep.json is not a readable graft-hpo sweep plan "
            f"({type(err).__name__}: {err})"
        ) from err
