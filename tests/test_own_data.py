"""Plug-ins beside a pipeline file: importable from any working directory, in the CLI and on a
cluster (the folder travels with the job), and a sweep without a finished trial says so."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from graft_hpo import _registry
from graft_hpo.cli import main
from graft_hpo.exceptions import ConfigError

PLUGIN = """
import torch
from torch import nn
from torch.utils.data import TensorDataset


def blobs(n: int = 60):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = torch.randn(n, 4, generator=g) + 3 * nn.functional.one_hot(y, 4).float()
    return TensorDataset(x, y), TensorDataset(x, y)


def mlp(input_shape, num_classes, hidden: int = 8):
    layers = [nn.Linear(input_shape[0], hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path/proj`` holding a plug-in module and its pipeline; the cwd is elsewhere."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # plug-in folders are put on it
    monkeypatch.setattr(_registry, "_PLUGIN_FOLDERS", [])
    folder = tmp_path / "proj"
    folder.mkdir()
    module = f"owndata_{tmp_path.name.replace('-', '_')}"  # a fresh module name per test
    (folder / f"{module}.py").write_text(PLUGIN)
    (folder / "pipe.yaml").write_text(
        f"name: blobs\ndata: {{name: '{module}:blobs'}}\n"
        f"model: {{name: '{module}:mlp', options: {{hidden: 4}}}}\ntrain: {{epochs: 1}}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return folder


def test_plugins_beside_the_pipeline_import_from_another_working_directory(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(project / "pipe.yaml")]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"- {project}\n" in out and f"- {project.parent / 'elsewhere'}\n" in out


def test_an_unimportable_plugin_names_the_folders_searched_and_the_fix(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["validate", str(project / "pipe.yaml"), "--set", "data.name=nosuchmod:blobs"]
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "data.name 'nosuchmod:blobs' could not be imported: No module named 'nosuchmod'" in last
    assert f"searched {project}, {project.parent / 'elsewhere'}, then sys.path" in last
    assert "put nosuchmod.py beside the pipeline file" in last and "plugin_path" in last


def test_joining_a_cluster_ships_the_plugin_folder_as_rays_working_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray

    from graft_hpo.sweep import _ray

    calls: list[dict] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setattr(_ray, "_check_reachable", lambda address: None)
    for name in [n for n in os.environ if n.startswith(("MLFLOW_", "CODECARBON_"))]:
        monkeypatch.delenv(name)
    _ray.init_ray("auto", working_dir="/code/proj")
    assert calls[-1]["runtime_env"] == {
        "working_dir": "/code/proj",
        "excludes": ["mlruns/", ".venv/", "venv/", ".git/", "__pycache__/"],
    }
    _ray.init_ray("auto")
    assert calls[-1]["runtime_env"] is None

    # a folder Ray will not take (over its 512 MiB): one line naming plugin_path, not a trace
    def refuse(**kw: object) -> None:
        raise ray.exceptions.RuntimeEnvSetupError(
            "Failed to set up runtime environment.\nFailed to upload working_dir /code/proj to "
            "the Ray cluster: Package size (531.72MiB) exceeds the maximum size of 512.00MiB."
        )

    monkeypatch.setattr(ray, "init", refuse)
    with pytest.raises(ConfigError) as info:
        _ray.init_ray("auto", working_dir="/code/proj")
    assert str(info.value).startswith(
        "plugin_path '/code/proj' cannot be shipped to the cluster at 'auto': Failed to upload "
        "working_dir /code/proj to the Ray cluster: Package size (531.72MiB) exceeds"
    )


def test_a_sweep_without_a_finished_trial_is_one_error_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = {
        "sweep_id": "s-1",
        "trials": {"FINISHED": 0, "early_stopped": 0, "FAILED": 2, "KILLED": 0},
        "pareto": [],
        "objectives": [["val_acc", "max"], ["co2_kg", "min"]],
        "failed": [
            {"run_id": "r1", "error": "RuntimeError: boom"},
            {"run_id": "r2", "error": "x"},
        ],
    }
    fake = SimpleNamespace(to_dict=lambda: result)
    monkeypatch.setattr("graft_hpo.sweep.run_sweep", lambda *a, **k: fake)
    assert main(["sweep", "digits"]) == 1
    captured = capsys.readouterr()
    # what failed, and no empty front, no dashboard or resume hints
    assert captured.out.splitlines() == [
        "sweep s-1: 2 FAILED",
        "  failed r1: RuntimeError: boom",
        "  failed r2: x",
    ]
    assert captured.err.strip().splitlines() == [
        "graft-hpo sweep: error: sweep s-1 has no finished trial, so no front; "
        "first error: RuntimeError: boom"
    ]


def test_two_pipelines_whose_plugin_modules_share_a_name_are_not_mixed_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one process (a notebook, a pipeline step), a second pipeline's ``plug.py`` beside
    it must not silently resolve to the first pipeline's module of the same name."""
    from graft_hpo.config import load_pipeline
    from graft_hpo.exceptions import ConfigError

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(_registry, "_PLUGIN_FOLDERS", [])
    module = f"plug_{tmp_path.name.replace('-', '_')}"
    monkeypatch.delitem(sys.modules, module, raising=False)
    pipelines = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{module}.py").write_text(PLUGIN + f"\nWHICH = {name!r}\n")
        (folder / "pipe.yaml").write_text(
            f"name: {name}\ndata: {{name: '{module}:blobs'}}\nmodel: {{name: '{module}:mlp'}}\n"
        )
        pipelines.append(folder / "pipe.yaml")
    try:
        _registry.add_plugin_path(load_pipeline(pipelines[0]).plugin_path)
        assert _registry.load_plugin(f"{module}:blobs", section="data")().__class__.__name__
        assert sys.modules[module].WHICH == "a"
        _registry.add_plugin_path(load_pipeline(pipelines[1]).plugin_path)  # b's folder first
        with pytest.raises(ConfigError) as err:
            _registry.load_plugin(f"{module}:blobs", section="data")
    finally:
        sys.modules.pop(module, None)
    message = str(err.value)
    assert message.startswith(f"data.name '{module}:blobs': module {module!r} is already")
    assert str(tmp_path / "a" / f"{module}.py") in message
    assert str(tmp_path / "b" / f"{module}.py") in message and "distinct names" in message
