"""Validation: every constraint of the table, types, unknown keys, all errors at once."""

from __future__ import annotations

from typing import Any

import pytest

from graft_hpo.config import PipelineConfig
from graft_hpo.config import config_from_dict
from graft_hpo.config import config_to_dict
from graft_hpo.exceptions import ConfigError

# (dotted key, bad value, the constraint text that must appear)
BAD_VALUES: list[tuple[str, Any, str]] = [
    ("name", "", "must be a non-empty string of letters, digits"),
    ("name", "my pipeline", "must be a non-empty string of letters, digits"),
    ("name", 7, "must be a string"),
    ("data.name", " ", "must be a non-empty string"),
    ("data.val_fraction", 0.0, "must be in (0, 1)"),
    ("data.val_fraction", 1, "must be in (0, 1)"),
    ("data.test_fraction", -0.1, "must be in [0, 1)"),
    ("data.label_noise", 1.0, "must be in [0, 1)"),
    ("data.label_noise", -0.2, "must be in [0, 1)"),
    ("data.label_noise", "20%", "must be a number"),
    ("data.download", "yes", "must be true or false"),
    ("data.options", [1, 2], "must be a mapping"),
    ("data.options", {1: "a"}, "must be a mapping with string keys"),
    ("model.options", "width=3", "must be a mapping"),
    ("train.epochs", 0, "must be in [1, 100000]"),
    ("train.epochs", 1_000_000_000, "must be in [1, 100000]"),
    ("train.epochs", "3x", "must be an integer"),
    ("train.epochs", 2.0, "must be an integer"),
    ("train.epochs", True, "must be an integer"),  # bools are not ints
    ("train.batch_size", 0, "must be in [1, 1000000]"),
    ("train.lr", 0, "must be > 0"),
    ("train.lr", "fast", "must be a number"),
    ("train.lr", float("nan"), "must be a finite number"),
    ("train.lr", False, "must be a number"),
    ("train.momentum", 1.0, "must be in [0, 1)"),
    ("train.momentum", -0.5, "must be in [0, 1)"),
    ("train.weight_decay", -1e-4, "must be >= 0"),
    ("train.optimizer", "adam", "must be one of 'sgd', 'adamw'"),
    ("train.scheduler", "step", "must be one of 'cosine', 'none'"),
    ("train.scheduler", None, "must be a string"),
    ("train.grad_clip", -1, "must be >= 0"),
    ("train.seed", -3, "must be in [0, 4294967295]"),
    ("search.seed", 2**32, "must be in [0, 4294967295]"),
    ("train.device", "gpu", "must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ("train.device", "cuda:x", "must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ("selection.strategy", "craig", "must be one of 'graft', 'random', 'full', 'infobatch'"),
    ("selection.fraction", 0, "must be in (0, 1]"),
    ("selection.fraction", 1.5, "must be in (0, 1]"),
    ("selection.select_every", 0, "must be in [1, 100000]"),
    ("selection.warm_start_epochs", -1, "must be in [0, 100000]"),
    ("selection.alignment_threshold", 0.0, "must be in (0, 1]"),
    ("selection.alignment_threshold", 1.01, "must be in (0, 1]"),
    ("selection.features", "pixels", "must be one of 'embedding', 'raw'"),
    ("selection.rank", 0, "must be in [1, 1000000] or null"),
    ("selection.rank", "full", "must be an integer or null"),
    ("selection.batch_size", 1, "must be in [2, 1000000] or null"),
    ("selection.weighted", 1, "must be true or false"),
    ("selection.maxvol_tol", 0.99, "must be >= 1"),
    ("selection.scope", "global", "must be one of 'trial', 'sweep'"),
    ("selection.pool", 0.5, "must be >= 1 or null"),
    ("selection.prune_ratio", 1.0, "must be in [0, 1)"),
    ("selection.anneal", -0.5, "must be in [0, 1]"),
    ("selection.proxy_epochs", -1, "must be in [0, 100]"),
    ("selection.proxy_epochs", 1.5, "must be an integer"),
    ("selection.noise_filter", "loss", "must be one of 'chance', 'misfit', 'knn', 'none'"),
    ("selection.noise_filter", False, "must be a string"),  # unquoted off/no in YAML
    ("selection.dedup", 0, "must be in (0, 1] or null"),
    ("selection.dedup", 1.01, "must be in (0, 1] or null"),
    ("selection.dedup", "high", "must be a number or null"),
    ("emissions.enabled", "true", "must be true or false"),
    ("emissions.country_iso_code", "us", "must be an ISO 3166-1 alpha-3 code"),
    ("emissions.country_iso_code", "US", "must be an ISO 3166-1 alpha-3 code"),
    ("emissions.country_iso_code", False, "must be a string"),  # unquoted NO (Norway)
    ("emissions.measure_power_secs", 0, "must be > 0"),
    ("tracking.uri", "", "must be a non-empty string or null"),
    ("tracking.experiment", 3, "must be a string or null"),
    ("search.space", "", "must be a non-empty string or null"),
    ("search.objectives", [], "must be a non-empty list"),
    ("search.objectives", "val_acc", "must be a list"),
    ("search.sampler", "cmaes", "must be one of 'tpe', 'nsga2', 'gp', 'random'"),
    ("search.trials", 0, "must be in [1, 1000000]"),
    ("search.trials", 10**9, "must be in [1, 1000000]"),
    ("search.max_concurrent", 0, "must be in [1, 10000]"),
    ("search.startup_trials", -1, "must be in [0, 1000000] or null"),
    ("search.startup_trials", 10**7, "must be in [0, 1000000] or null"),
    ("search.startup_trials", 2.5, "must be an integer or null"),
    ("search.startup_trials", "30", "must be an integer or null"),
    ("search.scheduler", "asha", "must be a mapping or null"),
    ("resources.cpu", 0, "must be > 0"),
    ("resources.gpu", -1, "must be >= 0"),
    ("train", [1], "must be a mapping"),
]


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return data


@pytest.mark.parametrize(
    ("key", "value", "constraint"), BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES]
)
def test_bad_value_names_key_constraint_and_value(key: str, value: Any, constraint: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(_nested(key, value))
    assert info.value.errors == [info.value.errors[0]]  # exactly one problem
    message = info.value.errors[0]
    assert message.startswith(f"{key} must be ")
    assert constraint in message
    assert message.split("; got ", 1)[1].startswith(repr(value))


@pytest.mark.parametrize(
    ("scheduler", "key", "constraint"),
    [
        ({"type": "hyperband"}, "search.scheduler.type", "must be one of 'asha', 'moasha'"),
        ({"mode": "maximize"}, "search.scheduler.mode", "must be one of 'max', 'min'"),
        ({"grace_period": 0}, "search.scheduler.grace_period", "must be in [1, 100000]"),
        ({"reduction_factor": 1}, "search.scheduler.reduction_factor", "must be > 1"),
        ({"metric": ""}, "search.scheduler.metric", "must be a non-empty string"),
    ],
)
def test_bad_scheduler(scheduler: dict[str, Any], key: str, constraint: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"search": {"scheduler": scheduler}})
    ((message,),) = [info.value.errors]
    assert message.startswith(f"{key} {constraint}; got {next(iter(scheduler.values()))!r}")


def test_valid_scheduler_and_ints_for_floats() -> None:
    cfg = config_from_dict(
        {"search": {"scheduler": {"reduction_factor": 2}}, "train": {"lr": 1, "momentum": 0}}
    )
    assert cfg.search.scheduler is not None
    assert cfg.search.scheduler.reduction_factor == 2.0
    assert type(cfg.search.scheduler.reduction_factor) is float
    assert type(cfg.train.lr) is float and type(cfg.train.momentum) is float


@pytest.mark.parametrize(
    ("objectives", "fragment"),
    [
        ([{"metric": "val_acc", "mode": "up"}], "search.objectives[0].mode must be one of"),
        ([{"metric": "val_acc"}], "search.objectives[0].mode is required"),
        ([{"mode": "max"}], "search.objectives[0].metric is required"),
        (["val_acc"], "search.objectives[0] must be a mapping; got 'val_acc'"),
        (
            [{"metric": "val_acc", "mode": "max"}, {"metric": "val_acc", "mode": "min"}],
            "search.objectives must name distinct metrics; got ['val_acc', 'val_acc']",
        ),
        (
            [{"metric": "a", "mode": "max", "weight": 2}],
            "unknown key 'search.objectives[0].weight'",
        ),
    ],
)
def test_bad_objectives(objectives: list[Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"search": {"objectives": objectives}})
    assert fragment in str(info.value)


def test_fractions_must_leave_training_data() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"data": {"val_fraction": 0.5, "test_fraction": 0.5}})
    assert info.value.errors == [
        "data.test_fraction must be < 1 - data.val_fraction (0.5) so that data remains for "
        "training; got 0.5"
    ]
    cfg = config_from_dict({"data": {"val_fraction": 0.5, "test_fraction": 0.4}})
    assert cfg.data.test_fraction == 0.4


@pytest.mark.parametrize("sampler", ["nsga2", "random"])
def test_startup_trials_only_for_samplers_with_a_start_up(sampler: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"search": {"sampler": sampler, "startup_trials": 0}})
    assert info.value.errors == [
        f"search.startup_trials must be null with search.sampler {sampler!r} (only 'tpe' and "
        "'gp' have a random start-up); got 0"
    ]
    assert config_from_dict({"search": {"sampler": sampler}}).search.startup_trials is None


def test_startup_trials_bounds_are_accepted() -> None:
    for sampler, value in [("tpe", 0), ("gp", 1_000_000), ("tpe", None)]:
        cfg = config_from_dict({"search": {"sampler": sampler, "startup_trials": value}})
        assert cfg.search.startup_trials == value


def test_all_errors_are_reported_together() -> None:
    data = {
        "trian": {"epochs": 3},
        "train": {"epochs": "3x", "lr": -1},
        "selection": {"select_evry": 3, "fraction": 2},
        "search": {"objectives": [{"metric": "a", "mode": "max"}, {"metric": "a", "mode": "max"}]},
        "resources": {"gpu": -1},
    }
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, source="conf/p.yaml")
    errors = info.value.errors
    assert len(errors) == 7
    joined = str(info.value)
    for fragment in [
        "unknown key 'trian' (did you mean 'train'?)",
        "train.epochs must be an integer; got '3x'",
        "train.lr must be > 0; got -1",
        "unknown key 'selection.select_evry' (did you mean 'selection.select_every'?)",
        "selection.fraction must be in (0, 1]; got 2",
        "search.objectives must name distinct metrics",
        "resources.gpu must be >= 0; got -1",
    ]:
        assert fragment in joined
    assert errors[0].startswith("conf/p.yaml: ")
    assert joined.count("conf/p.yaml") == 1


def test_close_match_suggestions() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"selection": {"select_evry": 3}, "train": {"optimiser": "sgd"}})
    assert info.value.errors == [
        "unknown key 'train.optimiser' (did you mean 'train.optimizer'?)",
        "unknown key 'selection.select_evry' (did you mean 'selection.select_every'?)",
    ]
    with pytest.raises(ConfigError, match=r"got 'adam' \(did you mean 'adamw'\?\)"):
        config_from_dict({"train": {"optimizer": "adam"}})


def test_unknown_key_without_close_match_lists_valid_keys() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"resources": {"memory_gb": 4}, "zzz": 1})
    assert info.value.errors[0] == "unknown key 'zzz'; valid keys at the top level: " + ", ".join(
        config_to_dict(PipelineConfig())
    )
    assert (
        info.value.errors[1]
        == "unknown key 'resources.memory_gb'; valid keys under 'resources': cpu, gpu"
    )


def test_string_field_given_a_yaml_boolean_gets_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"got False \(quote it in YAML\)"):
        config_from_dict({"emissions": {"country_iso_code": False}})


def test_long_values_are_shortened() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({"train": {"device": "x" * 500}})
    assert len(str(info.value)) < 200
    assert str(info.value).endswith("...")


def test_numpy_like_numbers_are_accepted() -> None:
    np = pytest.importorskip("numpy")
    cfg = config_from_dict({"train": {"epochs": np.int64(4), "lr": np.float32(0.5)}})
    assert (cfg.train.epochs, cfg.train.lr) == (4, 0.5)
    assert type(cfg.train.epochs) is int and type(cfg.train.lr) is float


def test_rule_errors_checks_values_by_dotted_path() -> None:
    # the one range check, shared with the selectors built in Python
    from graft_hpo.config import rule_errors

    assert (
        rule_errors({"selection.fraction": 0.3, "train.epochs": 5, "selection.rank": None}) == []
    )
    assert rule_errors(
        {"selection.fraction": 1.5, "selection.features": "raws", "train.epochs": 0}
    ) == [
        "selection.fraction must be in (0, 1]; got 1.5",
        "selection.features must be one of 'embedding', 'raw'; got 'raws' (did you mean 'raw'?)",
        "train.epochs must be in [1, 100000]; got 0",
    ]
    assert rule_errors({"search.scheduler.grace_period": 0}) == [
        "search.scheduler.grace_period must be in [1, 100000]; got 0"
    ]


def test_the_cli_refuses_a_dedup_threshold_out_of_range_in_one_line(capsys) -> None:
    from graft_hpo.cli import main

    assert main(["validate", "digits", "--set", "selection.dedup=1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "selection.dedup must be in (0, 1] or null; got 1.5" in err[0]
