"""A sweep on a cluster: what it sends with its job (``runtime_env``: the plug-ins' folder
without run stores, the driver's MLflow and codecarbon variables), and what a worker does when
the store does not open on its node."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from graft_hpo.sweep._ray import job_env


@pytest.fixture(autouse=True)
def _no_mlflow_or_codecarbon_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("MLFLOW_", "CODECARBON_")):
            monkeypatch.delenv(name)


def _package(env: dict, tmp_path: Path) -> set[str]:
    """The files Ray packs for ``env``'s working_dir (Ray's own packaging, excludes applied)."""
    from ray._private.runtime_env.packaging import create_package

    target = tmp_path / "package.zip"
    create_package(env["working_dir"], target, include_gitignore=True, excludes=env["excludes"])
    with zipfile.ZipFile(target) as archive:
        return {name for name in archive.namelist() if not name.endswith("/")}


def test_the_plugin_folder_travels_without_run_stores(tmp_path: Path) -> None:
    """The plug-ins sit beside the pipeline, the driver runs there, so ./mlruns (every earlier
    sweep's checkpoints) was shipped with them: past Ray's 512 MiB no sweep could start."""
    project = tmp_path / "project"
    (project / "mlruns" / "sweeps" / "s1").mkdir(parents=True)
    (project / "mlruns" / "sweeps" / "s1" / "trial.pt").write_bytes(b"0" * 1000)
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / ".venv" / "lib" / "site.py").write_text("")
    (project / "data").mkdir()
    (project / "data" / "weights.pt").write_bytes(b"1")  # the user's own: it travels
    (project / "mymodel.py").write_text("def mlp(shape, classes): ...\n")
    (project / "mypipe.yaml").write_text("model: {name: 'mymodel:mlp'}\n")
    env = job_env(str(project))
    assert env is not None and set(env) == {"working_dir", "excludes"}
    shipped = _package(env, tmp_path)
    assert {Path(name).name for name in shipped} == {"mymodel.py", "mypipe.yaml", "weights.pt"}
    assert job_env(None) is None  # nothing to send: Ray's default job


def test_the_drivers_mlflow_and_codecarbon_variables_reach_the_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cluster's workers run with the cluster's environment: MLFLOW_ALLOW_FILE_STORE, which
    the driver's store check honoured, failed every trial there (retried as a lost worker)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0k")  # an authenticated server's
    monkeypatch.setenv("CODECARBON_LOG_LEVEL", "error")
    monkeypatch.setenv("MLFLOW_RUN_ID", "abc")  # a run of the driver's: never a trial's
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")  # resolved, in the plan
    monkeypatch.setenv("UNRELATED", "1")
    env = job_env(None)
    assert env == {
        "env_vars": {
            "MLFLOW_ALLOW_FILE_STORE": "true",
            "MLFLOW_TRACKING_TOKEN": "t0k",
            "CODECARBON_LOG_LEVEL": "error",
        }
    }


def test_a_store_a_worker_cannot_open_fails_its_trial_instead_of_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a cluster node the store may not open as it did on the driver (a path that node
    lacks): raised, Ray took it for a lost worker and ran the trial three times."""
    from ray import tune

    from graft_hpo._names import FAILED_KEY
    from graft_hpo.exceptions import ConfigError
    from graft_hpo.sweep import _trainable

    def unopenable(plan: object, trial_id: str) -> None:
        raise ConfigError("tracking.uri 'sqlite:////nfs/x.db' cannot be opened: gone")

    reports: list[dict] = []
    monkeypatch.setattr(_trainable, "_earlier_run", unopenable)
    monkeypatch.setattr(tune, "report", reports.append)
    assert _trainable._look_back(object(), "t1") == (None, True)  # type: ignore[arg-type]
    assert reports == [
        {FAILED_KEY: "ConfigError: tracking.uri 'sqlite:////nfs/x.db' cannot be opened: gone"}
    ]


def test_an_address_other_than_the_ray_this_process_joined_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """run_sweep(address=X) after the process joined another Ray silently ran there, and the
    sweep's plan named X for its resume."""
    from types import SimpleNamespace

    import ray

    from graft_hpo.exceptions import ConfigError
    from graft_hpo.sweep._ray import init_ray

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    joined = SimpleNamespace(gcs_address="127.0.0.1:39871")
    monkeypatch.setattr(ray, "get_runtime_context", lambda: joined)
    with pytest.raises(ConfigError) as info:
        init_ray("127.0.0.1:6390")
    assert str(info.value) == (
        "--address '127.0.0.1:6390': this process is joined to the Ray at '127.0.0.1:39871' "
        "already (one Ray a process); call ray.shutdown() first, or leave the address out"
    )
    for same in (None, "auto", "127.0.0.1:39871", "localhost:39871"):
        init_ray(same)  # the Ray it joined: nothing to do
