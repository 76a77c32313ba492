"""Every sampler a pipeline can name drives a real multi-objective Optuna study, sampling the
search space through Ray's OptunaSearch."""

from __future__ import annotations

import inspect
import pickle

import optuna
import pytest

from graft_hpo.config import SAMPLERS
from graft_hpo.config import load_pipeline
from graft_hpo.config._cross import STARTUP_SAMPLERS
from graft_hpo.exceptions import ConfigError
from graft_hpo.space import load_space
from graft_hpo.sweep._search import _OPTUNA_SAMPLERS
from graft_hpo.sweep._search import _sampler
from graft_hpo.sweep._search import define_by_run


def test_every_sampler_name_a_pipeline_may_give_builds_one_and_no_other() -> None:
    assert list(_OPTUNA_SAMPLERS) == list(SAMPLERS)
    with pytest.raises(ConfigError, match=r"search.sampler must be one of .*did you mean 'gp'"):
        load_pipeline("digits", ["search.sampler=gpp"])


def test_the_samplers_given_a_start_up_are_those_whose_optuna_class_takes_one() -> None:
    takes = [
        name
        for name, (cls, _) in _OPTUNA_SAMPLERS.items()
        if "n_startup_trials" in inspect.signature(getattr(optuna.samplers, cls)).parameters
    ]
    assert takes == list(STARTUP_SAMPLERS) == ["tpe", "gp"]


@pytest.mark.parametrize("name", STARTUP_SAMPLERS)
def test_startup_trials_reaches_the_built_sampler(name: str) -> None:
    default = _sampler(load_pipeline("digits", [f"search.sampler={name}"]))
    cls = type(default)
    optuna_default = inspect.signature(cls).parameters["n_startup_trials"].default
    assert default._n_startup_trials == optuna_default == 10  # null: Optuna's own default
    for value in (0, 30):
        config = load_pipeline(
            "digits", [f"search.sampler={name}", f"search.startup_trials={value}"]
        )
        assert config.search.startup_trials == value
        built = _sampler(config)
        assert type(built) is cls and built._n_startup_trials == value


def test_tpe_draws_at_random_through_its_start_up_only() -> None:
    """With 30 start-up trials, TPE's 12th suggestion is its random sampler's (as with Optuna's
    RandomSampler of the same seed), where with the default 10 its model has taken over."""
    space = define_by_run(load_space("digits"))

    def twelfth(overrides: list[str]) -> dict:
        sampler = _sampler(load_pipeline("digits", ["search.seed=5", *overrides]))
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        for _ in range(11):
            trial = study.ask()
            space(trial)
            study.tell(trial, [trial.params["train.lr"], 1.0 / trial.params["train.lr"]])
        trial = study.ask()
        space(trial)
        return dict(trial.params)

    assert twelfth(["search.startup_trials=30"]) == twelfth(["search.startup_trials=100"])
    assert twelfth([]) != twelfth(["search.startup_trials=30"])


@pytest.mark.parametrize("name", SAMPLERS)
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


def test_define_by_run_only_suggests_and_returns_none() -> None:
    space = load_space("digits")
    function = define_by_run(space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    trial = study.ask()
    assert function(trial) is None
    assert set(trial.params) <= set(space.names) and "selection.strategy" in trial.params
    assert pickle.loads(pickle.dumps(function)).space == space  # Ray pickles its searcher


def test_ray_optuna_search_hands_dotted_names_to_the_trainable() -> None:
    optuna_search = pytest.importorskip("ray.tune.search.optuna")
    space = load_space("digits")  # the bundled space with a condition on the strategy
    searcher = optuna_search.OptunaSearch(
        space=define_by_run(space),
        metric=["val_acc", "co2_kg"],
        mode=["max", "min"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    configs = [searcher.suggest(f"t{i}") for i in range(24)]
    for config in configs:
        assert set(config) <= set(space.names)  # flat dotted keys, not nested dicts
        assert {"train.lr", "selection.strategy"} <= set(config)
        subset = config["selection.strategy"] in ("graft", "random")
        assert ("selection.fraction" in config) == subset
        assert ("selection.prune_ratio" in config) == (config["selection.strategy"] == "infobatch")
    assert {c["selection.strategy"] for c in configs} == {"graft", "random", "full", "infobatch"}
