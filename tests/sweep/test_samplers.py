"""Every sampler a pipeline can name drives a real multi-objective Optuna study."""

from __future__ import annotations

import optuna
import pytest

from graft_hpo.config import load_pipeline
from graft_hpo.sweep._search import _sampler
from graft_hpo.sweep._space import define_by_run
from graft_hpo.sweep._space import load_space


@pytest.mark.parametrize("name", ["tpe", "nsga2", "gp", "random"])
def test_sampler_runs_a_two_objective_study(name: str) -> None:
    config = load_pipeline("digits", [f"search.sampler={name}", "search.seed=3"])
    space = define_by_run(load_space("digits"))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=_sampler(config))
    for _ in range(6):
        trial = study.ask()
        space(trial)
        lr = trial.params["train.lr"]
        study.tell(trial, [lr, 1.0 / lr])  # a toy trade-off: both objectives conflict
    assert len(study.trials) == 6
    assert study.best_trials  # a non-empty Pareto set


def test_seeded_sampler_repeats_its_suggestions() -> None:
    config = load_pipeline("digits", ["search.sampler=tpe", "search.seed=7"])
    space = define_by_run(load_space("digits"))

    def suggestions() -> list[dict]:
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=_sampler(config))
        out = []
        for _ in range(4):
            trial = study.ask()
            space(trial)
            out.append(dict(trial.params))
            study.tell(trial, [trial.params["train.lr"], 1.0])
        return out

    assert suggestions() == suggestions()
