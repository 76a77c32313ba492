"""The sweep plan: everything a sweep needs, resolved once in the driver.

Plain data: preparing a sweep makes one and writes it to the sweep folder's ``sweep.json``
(``graft-hpo resume`` reads it back); running and finishing the sweep only read it. Values fixed
before the trials (the shared selection's cost) are in it, read once. A trial gets the smaller
:class:`~graft_hpo.sweep._trainable.TrialPlan` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from graft_hpo.config import PipelineConfig
from graft_hpo.config import config_from_dict
from graft_hpo.config import config_to_dict
from graft_hpo.space import SearchSpace
from graft_hpo.space import space_from_dict
from graft_hpo.sweep._folder import SweepFolder

__all__ = ["SweepPlan", "read_plan", "write_plan"]


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
    # what the shared selection cost (energy_kwh, co2_kg, duration_s); empty without one
    ranking_cost: dict[str, float] = field(default_factory=dict)

    @property
    def objectives(self) -> list[tuple[str, str]]:
        return [(o.metric, o.mode) for o in self.config.search.objectives]

    @property
    def folder(self) -> SweepFolder:
        return SweepFolder(self.sweep_dir)

    @property
    def optuna_storage(self) -> str:
        """The study's RDB URL: ``search.storage``, else sqlite in the sweep folder."""
        return self.config.search.storage or f"sqlite:///{self.folder.optuna_db}"


def write_plan(plan: SweepPlan) -> None:
    plan.folder.write_plan(
        {
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
            "ranking_cost": plan.ranking_cost,
        }
    )


def read_plan(folder: SweepFolder) -> SweepPlan:
    """The plan in ``folder``; ConfigError when it has none, or one that cannot be read."""

    def parse(data: dict[str, Any]) -> SweepPlan:
        cost = data.get("ranking_cost")
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
            # a plan written before it carried the cost: read it from the folder, once
            ranking_cost=folder.ranking_cost() if cost is None else dict(cost),
        )

    return folder.read_plan(parse)
