"""Loading pipelines: bundled files, overrides, dict round trips, flattening, file errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from graft_hpo.config import ObjectiveConfig
from graft_hpo.config import PipelineConfig
from graft_hpo.config import SchedulerConfig
from graft_hpo.config import apply_overrides
from graft_hpo.config import bundled_pipelines
from graft_hpo.config import config_from_dict
from graft_hpo.config import config_to_dict
from graft_hpo.config import flatten_config
from graft_hpo.config import load_pipeline
from graft_hpo.config import parse_overrides
from graft_hpo.exceptions import ConfigError

REPO = Path(__file__).resolve().parents[2]
WriteYaml = Callable[..., Path]  # the write_yaml fixture of conftest.py


def test_bundled_pipelines_are_the_files_in_pipelines() -> None:
    on_disk = sorted(path.stem for path in (REPO / "pipelines").glob("*.yaml"))
    assert bundled_pipelines() == on_disk
    assert {"mnist", "digits", "cifar10"} <= set(on_disk)


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "pipelines").glob("*.yaml")))
def test_every_bundled_pipeline_loads(name: str) -> None:
    cfg = load_pipeline(name)
    assert cfg.name == name
    assert cfg.search.space == name
    assert cfg == load_pipeline(REPO / "pipelines" / f"{name}.yaml")  # by path too


def test_mnist_matches_the_documented_demo() -> None:
    cfg = load_pipeline("mnist")
    assert (cfg.data.name, cfg.data.val_fraction, cfg.data.test_fraction) == ("mnist5k", 0.2, 0.2)
    assert cfg.model.name == "cnn"
    assert dataclasses.astuple(cfg.train) == (
        20,
        128,
        "sgd",
        0.05,
        0.9,
        5.0e-4,
        "cosine",
        0.0,
        0,
        "auto",
        5,
        0.25,  # data_on_device
        "auto",  # memory_format
        False,  # compile
        None,  # checkpoint_every: by their cost
    )
    sel = cfg.selection
    assert (sel.strategy, sel.fraction, sel.select_every, sel.warm_start_epochs) == (
        "graft",
        0.2,
        20,
        0,
    )
    assert (sel.scope, sel.proxy_epochs) == ("sweep", 2)  # one ranking per sweep
    assert (sel.alignment_threshold, sel.features, sel.stratify, sel.rank) == (
        1.0,
        "embedding",
        True,
        None,
    )
    assert (cfg.emissions.enabled, cfg.emissions.country_iso_code) == (True, "USA")
    assert (cfg.tracking.uri, cfg.tracking.experiment) == (None, None)
    assert cfg.search.objectives == [
        ObjectiveConfig("val_acc", "max"),
        ObjectiveConfig("co2_kg", "min"),
    ]
    assert (cfg.search.sampler, cfg.search.trials, cfg.search.seed) == ("tpe", 24, 0)
    assert cfg.search.max_concurrent == 2
    # multi-objective ASHA on the objectives (metric and mode are ASHA's, unused)
    assert cfg.search.scheduler == SchedulerConfig("moasha", "val_acc", "max", 2, 3.0)
    assert cfg.search.stopped_report == "projected"
    assert (cfg.resources.cpu, cfg.resources.gpu) == (1.0, 0.0)
    assert isinstance(cfg.resources.cpu, float)  # an int in YAML, a float in the config


def test_digits_and_cifar10_values() -> None:
    digits = load_pipeline("digits")
    assert (digits.data.name, digits.model.name) == ("digits", "cnn")
    assert (digits.train.epochs, digits.train.batch_size, digits.train.lr) == (20, 64, 0.05)
    assert digits.search.trials == 8
    cifar = load_pipeline("cifar10")
    assert (cifar.data.name, cifar.data.root, cifar.data.download) == ("cifar10", None, False)
    assert cifar.model.name == "resnet18"
    train = cifar.train
    assert (train.epochs, train.batch_size, train.lr, train.weight_decay) == (30, 128, 0.1, 5e-4)
    sel = cifar.selection
    assert (sel.fraction, sel.select_every, sel.warm_start_epochs) == (0.3, 5, 2)
    assert cifar.search.trials == 24
    assert (cifar.resources.cpu, cifar.resources.gpu) == (4.0, 1.0)


def test_string_overrides_are_read_as_yaml() -> None:
    cfg = load_pipeline(
        "mnist",
        overrides=[
            "train.epochs=3",
            "train.lr=1e-3",  # YAML 1.1 would give the string '1e-3'
            "model.options.width=64",
            "model.options.blocks=[1, 2]",
            "selection.rank=8",
            "selection.batch_size = 256",
            "train.device=cuda:1",
            "data.name=my_pkg.data:build",
        ],
    )
    assert cfg.train.epochs == 3 and type(cfg.train.epochs) is int
    assert cfg.train.lr == 1e-3 and type(cfg.train.lr) is float
    assert cfg.model.options == {"width": 64, "blocks": [1, 2]}
    assert (cfg.selection.rank, cfg.selection.batch_size) == (8, 256)
    assert cfg.train.device == "cuda:1"
    assert cfg.data.name == "my_pkg.data:build"
    unchanged = load_pipeline("mnist")
    assert cfg.train.batch_size == unchanged.train.batch_size
    assert cfg.selection.fraction == unchanged.selection.fraction


def test_null_override_and_whole_section_override() -> None:
    cfg = load_pipeline("mnist", overrides=["selection.rank=8"])
    cfg = apply_overrides(cfg, ["selection.rank=null", "tracking.uri=sqlite:////tmp/x/mlflow.db"])
    assert cfg.selection.rank is None
    assert cfg.tracking.uri == "sqlite:////tmp/x/mlflow.db"
    cfg = apply_overrides(cfg, ["search.objectives=[{metric: val_acc, mode: max}]"])
    assert cfg.search.objectives == [ObjectiveConfig("val_acc", "max")]


def test_override_inside_a_null_section_creates_it_with_defaults() -> None:
    assert load_pipeline("digits").search.scheduler is None
    cfg = load_pipeline("digits", overrides=["search.scheduler.grace_period=2"])
    assert cfg.search.scheduler == SchedulerConfig(grace_period=2)


def test_mapping_overrides_take_typed_values() -> None:
    base = load_pipeline("digits")
    cfg = apply_overrides(
        base, {"selection.fraction": 0.1, "train.optimizer": "adamw", "model.options.width": 32}
    )
    assert (cfg.selection.fraction, cfg.train.optimizer) == (0.1, "adamw")
    assert cfg.model.options == {"width": 32}
    assert base.selection.fraction == 0.3 and base.model.options == {}  # base unchanged
    # a mapping value is not parsed: the string "3" stays a string and is rejected
    with pytest.raises(ConfigError, match=r"train\.epochs must be an integer; got '3'"):
        apply_overrides(base, {"train.epochs": "3"})


def test_later_override_of_the_same_key_wins() -> None:
    assert parse_overrides(["train.epochs=2", "train.epochs=5"]) == {"train.epochs": 5}
    assert load_pipeline("mnist", ["train.epochs=2", "train.epochs=5"]).train.epochs == 5


def test_a_single_string_is_one_override() -> None:
    assert load_pipeline("mnist", "train.epochs=2").train.epochs == 2


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("train.epochs", "override must be 'dotted.key=value'; got 'train.epochs'"),
        ("train..epochs=2", "got 'train..epochs=2'"),
        ("=3", "got '=3'"),
        ("train.epochs=[1", "override 'train.epochs=[1': invalid YAML"),
        ("train.epochs.x=1", "override 'train.epochs.x' needs train.epochs to be a section"),
    ],
)
def test_malformed_overrides_are_named(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_pipeline("mnist", overrides=[override])
    assert fragment in str(info.value)


def test_override_errors_and_content_errors_come_together() -> None:
    with pytest.raises(ConfigError) as info:
        load_pipeline("mnist", overrides=["oops", "train.lr=0"])
    assert len(info.value.errors) == 2
    assert "train.lr must be > 0; got 0" in info.value.errors[0]
    assert "got 'oops'" in info.value.errors[1]


def test_dict_round_trip() -> None:
    cfg = load_pipeline(
        "cifar10",
        overrides=["model.options={width: 32, act: {name: relu}}", "search.scheduler.type=asha"],
    )
    data = config_to_dict(cfg)
    assert data["model"]["options"] == {"width": 32, "act": {"name": "relu"}}
    assert data["search"]["objectives"][1] == {"metric": "co2_kg", "mode": "min"}
    assert data["search"]["scheduler"]["reduction_factor"] == 3.0
    assert config_from_dict(data) == cfg
    data["model"]["options"]["act"]["name"] = "gelu"  # a deep copy: cfg is unaffected
    assert cfg.model.options["act"] == {"name": "relu"}


def test_defaults_fill_missing_sections() -> None:
    cfg = config_from_dict({"train": {"epochs": 2}})
    assert cfg == dataclasses.replace(
        PipelineConfig(), train=dataclasses.replace(PipelineConfig().train, epochs=2)
    )
    assert config_from_dict({"train": None, "data": {"options": None}}) == PipelineConfig()


def test_flatten_config_keys_and_values() -> None:
    cfg = load_pipeline(
        "mnist",
        overrides=["model.options={width: 64, head: {dropout: 0.1}}", "search.scheduler=null"],
    )
    flat = flatten_config(cfg)
    assert flat["name"] == "mnist"
    assert flat["selection.fraction"] == 0.2
    assert flat["model.options.width"] == 64
    assert flat["model.options.head.dropout"] == 0.1
    assert flat["search.objectives"] == "val_acc:max,co2_kg:min"
    assert flat["search.scheduler"] is None
    assert flat["selection.rank"] is None
    assert "model.options" not in flat and "data.options" not in flat  # dicts are not leaves
    # every schema leaf appears once under its dotted path
    expected = {
        f"{section.name}.{leaf.name}"
        for section in dataclasses.fields(PipelineConfig)
        if section.name not in ("name", "plugin_path") and getattr(cfg, section.name) is not None
        for leaf in dataclasses.fields(getattr(cfg, section.name))
        if leaf.name != "options"
    }
    expected |= {"name", "model.options.width", "model.options.head.dropout", "select", "retrain"}
    expected.add("plugin_path")
    assert flat["select"] is None and flat["retrain"] is None  # no final stage by default
    assert set(flat) == expected
    assert not any(isinstance(value, (dict, list)) for value in flat.values())

    with_asha = apply_overrides(cfg, ["search.scheduler.type=asha"])
    assert flatten_config(with_asha)["search.scheduler.grace_period"] == 1


def test_name_defaults_to_the_file_stem(write_yaml: WriteYaml) -> None:
    path = write_yaml("train: {epochs: 2}\n", name="my-exp.yaml")
    assert load_pipeline(path).name == "my-exp"
    assert load_pipeline(path, ["name=other"]).name == "other"


def test_relative_space_path_is_read_from_the_pipeline_folder(write_yaml: WriteYaml) -> None:
    space = write_yaml("{}\n", name="conf/spaces/s.yaml")
    pipe = write_yaml("search: {space: spaces/s.yaml}\n", name="conf/p.yaml")
    assert load_pipeline(pipe).search.space == str(space.resolve())
    other = write_yaml("search: {space: mnist}\n", name="conf/q.yaml")
    assert load_pipeline(other).search.space == "mnist"  # a bundled name is left alone


def test_a_relative_data_root_is_made_absolute_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray starts each trial in its own working directory: ``data.root: mdata`` read there
    found no files in any trial of a sweep that ``validate`` and ``train`` had accepted."""
    monkeypatch.chdir(tmp_path)
    assert load_pipeline("digits", ["data.root=mdata"]).data.root == str(tmp_path / "mdata")
    assert load_pipeline("digits", ["data.root=/srv/data"]).data.root == "/srv/data"
    home = load_pipeline("digits", ["data.root=~/data"]).data.root
    assert home == "~/data"  # absolute once expanded, in any process of this user
    assert load_pipeline("digits").data.root is None  # the default root, ~/.cache/...


def test_overrides_on_a_loaded_config_anchor_paths_as_loading_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_sweep(config, overrides=...) applies them to a loaded config: a relative data.root
    failed every Ray trial, and a plug-in named there was looked for in no folder."""
    monkeypatch.chdir(tmp_path)
    config = load_pipeline("digits")
    assert apply_overrides(config, ["data.root=mdata"]).data.root == str(tmp_path / "mdata")
    plugged = apply_overrides(config, ["data.name=mydata:load"])
    assert plugged.plugin_path == [str(tmp_path.resolve())]
    assert apply_overrides(config, ["train.epochs=3"]).plugin_path == []  # no plug-in: none


def test_corrupt_yaml_names_file_line_and_column(write_yaml: WriteYaml) -> None:
    path = write_yaml("name: x\ntrain:\n  epochs: [1, 2\n  lr: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert str(path) in message
    assert "invalid YAML at line 4, column" in message


def test_duplicate_keys_are_an_error(write_yaml: WriteYaml) -> None:
    path = write_yaml("train: {epochs: 2}\nselection: {}\ntrain: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'train'") as info:
        load_pipeline(path)
    assert "line 3, column 1" in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_pipeline(missing)
    assert str(missing) in str(info.value)


def test_unknown_bundled_name_lists_the_names() -> None:
    with pytest.raises(ConfigError) as info:
        load_pipeline("mnsit")
    message = str(info.value)
    assert "'mnsit'" in message and "did you mean 'mnist'?" in message
    for name in bundled_pipelines():
        assert name in message


@pytest.mark.parametrize(("text", "shown"), [("- 1\n- 2\n", "[1, 2]"), ("", "None"), ("3\n", "3")])
def test_top_level_must_be_a_mapping(write_yaml: WriteYaml, text: str, shown: str) -> None:
    path = write_yaml(text)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    message = str(info.value)
    assert message.startswith(f"{path}: the pipeline must be a mapping")
    assert message.endswith(f"got {shown}")


def test_file_name_appears_once(write_yaml: WriteYaml) -> None:
    path = write_yaml("train: {epochs: 0, lr: -1}\nselection: {fraction: 2}\n")
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert len(info.value.errors) == 3
    assert str(info.value).count(str(path)) == 1
