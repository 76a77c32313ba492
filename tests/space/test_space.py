"""Search spaces: parsing, every kind of bad input, sampling with real Optuna, config paths."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from graft_hpo.config import PipelineConfig
from graft_hpo.config import bundled_names
from graft_hpo.config import load_pipeline
from graft_hpo.exceptions import ConfigError
from graft_hpo.space import Condition
from graft_hpo.space import ParamSpec
from graft_hpo.space import SearchSpace
from graft_hpo.space import load_space
from graft_hpo.space import space_from_dict
from graft_hpo.space import validate_space
from graft_hpo.sweep._prepare import check_sweep

REPO = Path(__file__).resolve().parents[2]
optuna.logging.set_verbosity(optuna.logging.WARNING)

MNIST_LIKE = """\
# a comment
params:
  train.lr:            {type: float, low: 1.0e-3, high: 0.3, log: true}
  train.batch_size:    {type: categorical, choices: [64, 128, 256]}
  model.options.width: {type: int, low: 16, high: 48, step: 16}
  selection.strategy:  {type: categorical, choices: [graft, random, full]}
  selection.fraction:
    {type: float, low: 0.05, high: 0.5, when: "selection.strategy != 'full'"}
  selection.alignment_threshold:
    {type: float, low: 0.5, high: 0.99, when: "selection.strategy == 'graft'"}
  selection.rank:
    {type: categorical, choices: [null, 8, 16], when: "selection.strategy == 'graft'"}
  selection.select_every: {type: int, low: 1, high: 8, log: true}
"""


def _yaml(text: str) -> Any:
    return yaml.safe_load(text)


def _space(params: dict[str, Any], source: str | None = None) -> SearchSpace:
    return space_from_dict({"params": params}, source=source)


def _errors(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        space_from_dict(data)
    return info.value.errors


# --- parsing ------------------------------------------------------------------------------


def test_parses_every_type(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(MNIST_LIKE, encoding="utf-8")
    space = load_space(str(path))
    assert space.source == str(path.resolve())
    assert space.names == (
        "train.lr",
        "train.batch_size",
        "model.options.width",
        "selection.strategy",
        "selection.fraction",
        "selection.alignment_threshold",
        "selection.rank",
        "selection.select_every",
    )
    lr, batch, width, strategy, fraction, threshold, rank, every = space.params
    assert lr == ParamSpec("train.lr", "float", low=1e-3, high=0.3, log=True)
    assert type(lr.low) is float and type(lr.high) is float
    assert batch == ParamSpec("train.batch_size", "categorical", choices=(64, 128, 256))
    assert width == ParamSpec("model.options.width", "int", low=16, high=48, step=16)
    assert type(width.low) is int
    assert strategy.choices == ("graft", "random", "full") and strategy.when == ()
    assert fraction.when == (Condition("selection.strategy", ("full",), negated=True),)
    assert threshold.when == (Condition("selection.strategy", ("graft",)),)
    assert rank.choices == (None, 8, 16)
    assert every == ParamSpec("selection.select_every", "int", low=1, high=8, log=True)


def test_float_bounds_given_as_ints_become_floats_and_steps_are_kept() -> None:
    (spec,) = _space({"a.b": {"type": "float", "low": 0, "high": 1, "step": 0.25}}).params
    assert (spec.low, spec.high, spec.step) == (0.0, 1.0, 0.25)
    assert all(type(v) is float for v in (spec.low, spec.high, spec.step))


def test_to_dict_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(MNIST_LIKE, encoding="utf-8")
    space = load_space(path)
    data = space.to_dict()
    assert data["params"]["train.lr"] == {"type": "float", "low": 1e-3, "high": 0.3, "log": True}
    assert data["params"]["selection.fraction"]["when"] == "selection.strategy != 'full'"
    assert list(data["params"]) == list(space.names)
    assert space_from_dict(data, source=space.source) == space


def test_load_space_by_bundled_name_and_relative_to_base_dir(tmp_path: Path) -> None:
    bundled = load_space("mnist")
    assert bundled.source == str(REPO / "search_spaces" / "mnist.yaml")
    (tmp_path / "mine.yaml").write_text(
        "params:\n  train.lr: {type: float, low: 0.01, high: 0.1}\n", encoding="utf-8"
    )
    assert load_space("mine.yaml", base_dir=str(tmp_path)).names == ("train.lr",)
    with pytest.raises(ConfigError, match=r"search space 'mnst' .*did you mean 'mnist'"):
        load_space("mnst")


def test_errors_name_the_file_once_and_come_together(tmp_path: Path) -> None:
    path = tmp_path / "mnist.yaml"
    path.write_text(
        "params:\n"
        "  train.lr: {type: float, low: 0.3, high: 0.001, log: true}\n"
        "  train.momentum: {type: flaot, low: 0.1, high: 0.9}\n"
        "  train.epochs: {type: int, low: 1, high: 5, lgo: true}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_space(path)
    assert info.value.errors == [
        f"search space {path}: params.train.lr.low must be < high; got low=0.3, high=0.001",
        "params.train.momentum.type must be one of float, int, categorical; got 'flaot' "
        "(did you mean 'float'?)",
        "unknown key 'params.train.epochs.lgo' (did you mean 'log'?); an int parameter takes "
        "type, low, high, log, step, when",
    ]
    assert str(info.value).startswith(f"search space {path}: params.train.lr.low")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("params:\n  a.b: {type: float\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: invalid YAML at line 3"):
        load_space(path)


# --- bad spaces: (data, the one expected message) ------------------------------------------

F = {"type": "float", "low": 0.1, "high": 0.9}
C = {"type": "categorical", "choices": ["graft", "random", "full"]}

BAD_SPACES: list[tuple[str, Any, str]] = [
    ("not-a-mapping", ["params"], "must be a mapping with the key 'params'; got ['params']"),
    ("empty-file", None, "must be a mapping with the key 'params'; got None"),
    ("no-params", {}, "params is required: a mapping of dotted config paths to parameter specs"),
    (
        "params-empty",
        {"params": {}},
        "params must be a non-empty mapping of dotted config paths to parameter specs; got {}",
    ),
    (
        "params-list",
        {"params": [F]},
        "params must be a non-empty mapping of dotted config paths to parameter specs; got [{",
    ),
    (
        "top-level-typo",
        {"params": {"a.b": F}, "parms": 1},
        "unknown key 'parms' (did you mean 'params'?); a search space has only the key 'params'",
    ),
    (
        "bad-key",
        {"params": {"train..lr": F}},
        "params keys must be dotted config paths like "
        "'selection.fraction' (parts of letters, digits and '_' joined by '.'); got 'train..lr'",
    ),
    ("slash-key", {"params": {"train/lr": F}}, "got 'train/lr'"),
    ("int-key", {"params": {3: F}}, "params keys must be dotted config paths"),
    (
        "spec-not-mapping",
        {"params": {"a.b": 0.1}},
        "params.a.b must be a mapping like {type: float, low: 0.01, high: 0.1}; got 0.1",
    ),
    (
        "no-type",
        {"params": {"a.b": {"low": 0.1, "high": 0.2}}},
        "params.a.b.type is required (one of float, int, categorical)",
    ),
    (
        "type-typo",
        {"params": {"a.b": {**F, "type": "flaot"}}},
        "params.a.b.type must be one of "
        "float, int, categorical; got 'flaot' (did you mean 'float'?)",
    ),
    (
        "type-not-str",
        {"params": {"a.b": {**F, "type": 3}}},
        "params.a.b.type must be one of float, int, categorical; got 3",
    ),
    (
        "unknown-field",
        {"params": {"a.b": {**F, "lgo": True}}},
        "unknown key 'params.a.b.lgo' "
        "(did you mean 'log'?); a float parameter takes type, low, high, log, step, when",
    ),
    (
        "field-of-other-type",
        {"params": {"a.b": {**C, "low": 1}}},
        "unknown key 'params.a.b.low'; a categorical parameter takes type, choices, when",
    ),
    (
        "low>=high",
        {"params": {"a.b": {**F, "low": 0.3, "high": 0.001}}},
        "params.a.b.low must be < high; got low=0.3, high=0.001",
    ),
    (
        "low==high",
        {"params": {"a.b": {"type": "int", "low": 2, "high": 2}}},
        "params.a.b.low must be < high; got low=2, high=2",
    ),
    (
        "missing-high",
        {"params": {"a.b": {"type": "float", "low": 0.1}}},
        "params.a.b.high is required (a float parameter needs low and high)",
    ),
    (
        "low-not-number",
        {"params": {"a.b": {**F, "low": "0.1"}}},
        "params.a.b.low must be a number; got '0.1'",
    ),
    (
        "low-bool",
        {"params": {"a.b": {**F, "low": True}}},
        "params.a.b.low must be a number; got True",
    ),
    (
        "high-inf",
        {"params": {"a.b": {**F, "high": float("inf")}}},
        "params.a.b.high must be a finite number; got inf",
    ),
    (
        "int-low-float",
        {"params": {"a.b": {"type": "int", "low": 1.5, "high": 4}}},
        "params.a.b.low must be an integer; got 1.5",
    ),
    (
        "log-not-bool",
        {"params": {"a.b": {**F, "log": "yes"}}},
        "params.a.b.log must be true or false; got 'yes'",
    ),
    (
        "log-low-zero",
        {"params": {"a.b": {**F, "low": 0.0, "log": True}}},
        "params.a.b.low must be > 0 when log is true; got 0.0",
    ),
    (
        "int-log-low-zero",
        {"params": {"a.b": {"type": "int", "low": 0, "high": 4, "log": True}}},
        "params.a.b.low must be > 0 when log is true; got 0",
    ),
    ("step-zero", {"params": {"a.b": {**F, "step": 0}}}, "params.a.b.step must be > 0; got 0"),
    (
        "step-negative",
        {"params": {"a.b": {"type": "int", "low": 1, "high": 9, "step": -2}}},
        "params.a.b.step must be > 0; got -2",
    ),
    (
        "int-step-float",
        {"params": {"a.b": {"type": "int", "low": 1, "high": 9, "step": 0.5}}},
        "params.a.b.step must be an integer; got 0.5",
    ),
    (
        "step-and-log",
        {"params": {"a.b": {**F, "log": True, "step": 0.1}}},
        "params.a.b.step must be omitted when log is true; got 0.1",
    ),
    (
        "int-step-and-log",
        {"params": {"a.b": {"type": "int", "low": 1, "high": 9, "step": 2, "log": True}}},
        "params.a.b.step must be omitted when log is true; got 2",
    ),
    (
        "step-not-dividing",
        {"params": {"a.b": {"type": "int", "low": 16, "high": 50, "step": 16}}},
        "params.a.b.step must divide high - low = 34; got 16",
    ),
    (
        "float-step-not-dividing",
        {"params": {"a.b": {**F, "step": 0.3}}},
        "params.a.b.step must divide high - low = 0.8; got 0.3",
    ),
    (
        "no-choices",
        {"params": {"a.b": {"type": "categorical"}}},
        "params.a.b.choices is required (a list of strings, finite numbers, true, false or null)",
    ),
    (
        "empty-choices",
        {"params": {"a.b": {**C, "choices": []}}},
        "params.a.b.choices must be a "
        "non-empty list of strings, finite numbers, true, false or null; got []",
    ),
    (
        "choices-not-list",
        {"params": {"a.b": {**C, "choices": "graft"}}},
        "params.a.b.choices must be a non-empty list of strings, finite numbers, true, false or "
        "null; got 'graft'",
    ),
    (
        "choice-not-scalar",
        {"params": {"a.b": {**C, "choices": [1, [2, 3]]}}},
        "params.a.b.choices[1] must be a string, a finite number, true, false or null; got [2, 3]",
    ),
    (
        "choice-nan",
        {"params": {"a.b": {**C, "choices": [1.0, float("nan")]}}},
        "params.a.b.choices[1] must be a string, a finite number, true, false or null; got nan",
    ),
    (
        "duplicate-choices",
        {"params": {"a.b": {**C, "choices": [1, 2, 1.0]}}},
        "params.a.b.choices must be distinct (Optuna does not tell 1, 1.0 and true apart); "
        "got 1 and 1.0 in [1, 2, 1.0]",
    ),
    ("true-and-1", {"params": {"a.b": {**C, "choices": [True, 1]}}}, "got True and 1"),
    (
        "when-not-str",
        {"params": {"s.s": C, "a.b": {**F, "when": True}}},
        "params.a.b.when must be a condition string like \"selection.strategy == 'graft'\"; "
        "got True",
    ),
    (
        "when-syntax",
        {"params": {"s.s": C, "a.b": {**F, "when": "s.s != full"}}},
        "params.a.b.when has invalid syntax at column 8: expected a quoted string, a finite "
        "number, true, false or null; found 'full' (quote strings: 'full'); in 's.s != full'",
    ),
    (
        "when-eval",
        {"params": {"s.s": C, "a.b": {**F, "when": "__import__('os')"}}},
        "params.a.b.when has invalid syntax at column 1: expected a clause (name == value, "
        "name != value, name in [values] or name not in [values]); found \"__import__('os')\"",
    ),
    (
        "when-or",
        {"params": {"s.s": C, "a.b": {**F, "when": "s.s == 'graft' or s.s == 'full'"}}},
        "params.a.b.when has invalid syntax at column 16: 'or' is not supported: for one "
        "parameter write 'name in [a, b]'; found \"or s.s == 'full'\"",
    ),
    (
        "when-unknown",
        {"params": {"s.s": C, "a.b": {**F, "when": "s.t == 'full'"}}},
        "params.a.b.when must name only parameters declared before a.b; got 's.t', not a "
        "parameter of this space (did you mean 's.s'?)",
    ),
    (
        "when-later",
        {"params": {"a.b": {**F, "when": "s.s == 'full'"}, "s.s": C}},
        "params.a.b.when must name only parameters declared before a.b; got 's.s', declared "
        "after a.b",
    ),
    (
        "when-itself",
        {"params": {"a.b": {**F, "when": "a.b == 0.5"}}},
        "params.a.b.when must name only parameters declared before a.b; got 'a.b', the parameter "
        "itself",
    ),
    (
        "when-not-a-choice",
        {"params": {"s.s": C, "a.b": {**F, "when": "s.s in ['graft', 'ful']"}}},
        "params.a.b.when must compare s.s with one of its choices ('graft', 'random', 'full'); "
        "got 'ful' (did you mean 'full'?)",
    ),
    (
        "when-typed-choice",
        {"params": {"s.s": {**C, "choices": [1, 2]}, "a.b": {**F, "when": "s.s == '1'"}}},
        "params.a.b.when must compare s.s with one of its choices (1, 2); got '1'",
    ),
    (
        "when-number-param",
        {"params": {"n.n": F, "a.b": {**F, "when": "n.n != 'x'"}}},
        "params.a.b.when must compare n.n (a float parameter) with numbers; got 'x'",
    ),
]


@pytest.mark.parametrize(("data", "message"), [pytest.param(d, m, id=i) for i, d, m in BAD_SPACES])
def test_bad_spaces_are_rejected_with_key_and_value(data: Any, message: str) -> None:
    errors = _errors(data)
    assert len(errors) == 1, errors
    assert errors[0].startswith("search space: ")
    assert message in errors[0]


def test_a_condition_may_name_an_invalid_earlier_parameter_without_a_second_error() -> None:
    errors = _errors({"params": {"s.s": {**C, "choices": []}, "a.b": {**F, "when": "s.s == 1"}}})
    assert len(errors) == 1 and "params.s.s.choices must be a non-empty list" in errors[0]


def test_several_problems_in_one_parameter_are_all_reported() -> None:
    errors = _errors(
        {"params": {"a.b": {"type": "float", "low": "x", "high": 0.2, "log": 1, "step": -1}}}
    )
    assert [e.removeprefix("search space: ") for e in errors] == [
        "params.a.b.low must be a number; got 'x'",
        "params.a.b.log must be true or false; got 1",
        "params.a.b.step must be > 0; got -1",
    ]


# --- sampling with real Optuna ---------------------------------------------------------------


def test_sample_gives_only_active_params_within_range() -> None:
    space = space_from_dict(_yaml(MNIST_LIKE))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_strategies, seen_ranks = set(), set()
    for _ in range(150):
        trial = study.ask()
        values = space.sample(trial)
        strategy = values["selection.strategy"]
        seen_strategies.add(strategy)
        expected = ["train.lr", "train.batch_size", "model.options.width", "selection.strategy"]
        expected += {
            "graft": ["selection.fraction", "selection.alignment_threshold", "selection.rank"],
            "random": ["selection.fraction"],
            "full": [],
        }[strategy]
        assert list(values) == [*expected, "selection.select_every"]
        assert 1e-3 <= values["train.lr"] <= 0.3
        assert values["train.batch_size"] in (64, 128, 256)
        assert values["model.options.width"] in (16, 32, 48)
        assert 1 <= values["selection.select_every"] <= 8
        assert isinstance(values["selection.select_every"], int)
        if "selection.fraction" in values:
            assert 0.05 <= values["selection.fraction"] <= 0.5
        if strategy == "graft":
            assert 0.5 <= values["selection.alignment_threshold"] <= 0.99
            seen_ranks.add(values["selection.rank"])
        # dotted names are Optuna's parameter names, unchanged
        assert trial.params == values
        study.tell(trial, 0.0)
    assert seen_strategies == {"graft", "random", "full"}
    assert seen_ranks == {None, 8, 16}  # Optuna accepts null among the choices
    assert set(study.trials[0].distributions) == set(study.trials[0].params)


def test_log_scale_is_used_for_log_params() -> None:
    space = _space({"a.b": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    draws = [space.sample(study.ask())["a.b"] for _ in range(400)]
    below = sum(d < 1e-2 for d in draws) / len(draws)
    assert 0.4 < below < 0.6  # half the log range; a uniform draw would give ~1%


def test_a_param_conditioned_on_an_inactive_param_is_inactive() -> None:
    space = _space(
        {
            "a.a": {"type": "categorical", "choices": ["x", "y"]},
            "b.b": {"type": "int", "low": 0, "high": 1, "when": "a.a == 'x'"},
            "c.c": {"type": "float", "low": 0.0, "high": 1.0, "when": "b.b != 1"},
        }
    )
    assert space.sample(optuna.trial.FixedTrial({"a.a": "y"})) == {"a.a": "y"}
    assert space.sample(optuna.trial.FixedTrial({"a.a": "x", "b.b": 1})) == {"a.a": "x", "b.b": 1}
    assert space.sample(optuna.trial.FixedTrial({"a.a": "x", "b.b": 0, "c.c": 0.5})) == {
        "a.a": "x",
        "b.b": 0,
        "c.c": 0.5,
    }


def test_parsing_does_not_import_optuna() -> None:
    code = (
        "import sys\n"
        "from graft_hpo.space import load_space\n"
        "load_space('mnist')\n"
        "assert 'optuna' not in sys.modules and 'ray' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


# --- config paths --------------------------------------------------------------------------


@pytest.mark.parametrize("name", bundled_names("search_spaces"))
def test_bundled_spaces_validate_against_their_pipelines(name: str) -> None:
    # cifar10's files may be absent here: download=true checks none (and downloads nothing)
    pipeline = load_pipeline(name, ["data.download=true"])
    assert pipeline.search.space == name
    space = load_space(pipeline.search.space)
    validate_space(space, pipeline)
    check_sweep(pipeline)  # and the sweep-level rules (e.g. no threshold over a shared ranking)
    assert "selection.strategy" in space.names and "train.lr" in space.names
    # GRAFT's alignment threshold shrinks a subset below its budget (to 23-50% at 0.8-0.95 per
    # trial, 4-39% over a shared ranking): a searched threshold compares emptied subsets
    assert "selection.alignment_threshold" not in space.names
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    strategies = set()
    for _ in range(40):  # every sampled point is a valid override of the pipeline
        sampled = space.sample(study.ask())
        strategies.add(sampled["selection.strategy"])
        load_pipeline(name, overrides=sampled)
    assert strategies == {"graft", "random", "full", "infobatch"}  # none left out by construction


def test_every_bundled_pipeline_has_a_bundled_space() -> None:
    assert set(bundled_names("search_spaces")) == {"mnist", "digits", "cifar10"}
    assert not (REPO / "search_spaces" / ".keep").exists()
    for name in bundled_names("pipelines"):
        load_space(load_pipeline(name).search.space or "")


def _validate_errors(params: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_space(_space(params, source="s.yaml"), PipelineConfig())
    return info.value.errors


def test_a_key_that_is_not_a_config_path_is_rejected() -> None:
    assert _validate_errors({"train.lrr": F}) == [
        "search space s.yaml: params.train.lrr: unknown key 'train.lrr' (did you mean 'train.lr'?)"
    ]


def test_bad_values_and_types_name_the_param_and_the_bound() -> None:
    errors = _validate_errors(
        {
            "selection.fraction": {"type": "float", "low": 0.1, "high": 1.5},
            "train.batch_size": {"type": "float", "low": 32, "high": 256},
            "selection.strategy": {"type": "categorical", "choices": ["graft", "grfat"]},
            "train": F,
            "search.trials": {"type": "int", "low": 1, "high": 5},
            "train.lr": F,  # fine
            "retrain.epochs": {"type": "int", "low": 1, "high": 5},  # read after the trials
        }
    )
    assert errors == [
        "search space s.yaml: params.selection.fraction.high: selection.fraction must be in "
        "(0, 1]; got 1.5",
        "params.train.batch_size.low: train.batch_size must be an integer; got 32.0",
        "params.train.batch_size.high: train.batch_size must be an integer; got 256.0",
        "params.selection.strategy.choices[1]: selection.strategy must be one of 'graft', "
        "'random', 'full', 'infobatch'; got 'grfat' (did you mean 'graft'?)",
        "params.train.low: train must be a mapping; got 0.1",
        "params.train.high: train must be a mapping; got 0.9",
        "params.search.trials must not be searched: search settings are fixed for the whole "
        "sweep (the driver reads them, no trial does)",
        "params.retrain.epochs must not be searched: retrain settings are fixed for the whole "
        "sweep (the driver reads them, no trial does)",
    ]


def test_free_form_options_accept_any_key() -> None:
    space = _space(
        {
            "model.options.anything": {"type": "categorical", "choices": ["a", 1, None]},
            "model.options.width": {"type": "int", "low": 8, "high": 64},
            "data.options.noise": F,
            "selection.rank": {"type": "categorical", "choices": [None, 4]},
        }
    )
    validate_space(space, load_pipeline("mnist"))


def test_a_searched_noise_filter_over_a_shared_ranking_warns_and_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The digits space searches the noise filter; with selection.scope=sweep the sweep ranks
    once with the pipeline's filter, so the drawn values change nothing: a warning says so,
    and the sweep is not refused (the alignment threshold, which would empty the subsets, is)."""
    pipeline = load_pipeline("digits", overrides=["selection.scope=sweep"])
    with caplog.at_level(logging.WARNING, logger="graft_hpo.sweep._prepare"):
        check_sweep(pipeline)
    assert "selection.noise_filter is searched" in caplog.text
    assert "pipeline's value, 'knn'" in caplog.text  # the filter the ranking uses
    assert "selection.dedup is searched" in caplog.text  # ... and its deduplication: None
    # every GRAFT knob the space draws that a prefix does not read, and nothing else
    warned = {r.getMessage().split()[1] for r in caplog.records}
    graft = {"features", "noise_filter", "dedup", "select_every"}  # the digits space's
    assert warned == {f"selection.{key}" for key in graft}, caplog.text
    assert "re-taken, the prefix is the same" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="graft_hpo.sweep._prepare"):
        check_sweep(load_pipeline("digits"))  # per-trial GRAFT: each trial's value is used
    assert not caplog.records, caplog.text


def test_a_set_key_the_space_searches_warns_that_the_draw_replaces_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``--set selection.warm_start_epochs=0`` on the digits space, which searches it: each
    graft or random trial's drawn 1 or 2 replaces the 0 (a user's recipe silently undone)."""
    overrides = ["selection.warm_start_epochs=0", "train.epochs=3"]
    with caplog.at_level(logging.WARNING, logger="graft_hpo.sweep._prepare"):
        check_sweep(load_pipeline("digits", overrides=overrides), overrides=overrides)
    assert "--set selection.warm_start_epochs:" in caplog.text
    assert "searches selection.warm_start_epochs" in caplog.text
    assert "train.epochs" not in caplog.text  # not searched: the --set holds
