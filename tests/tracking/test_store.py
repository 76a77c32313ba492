"""Tracking URIs, the default store's layout, experiments, and unreachable stores."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from graft_hpo.exceptions import ConfigError
from graft_hpo.tracking import check_store
from graft_hpo.tracking import default_artifact_root
from graft_hpo.tracking import ensure_experiment
from graft_hpo.tracking import resolve_tracking_uri


@pytest.fixture
def no_env_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.mark.usefixtures("no_env_uri")
@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (None, "sqlite:////work/mlruns/mlflow.db"),
        ("", "sqlite:////work/mlruns/mlflow.db"),
        ("sqlite:///runs/mlflow.db", "sqlite:////work/runs/mlflow.db"),
        ("sqlite:///./a/../runs/m.db?timeout=30", "sqlite:////work/runs/m.db?timeout=30"),
        ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
        ("sqlite://", "sqlite://"),
        ("mlruns", "sqlite:////work/mlruns/mlflow.db"),  # the folder holding the store
        ("./store/../mlruns", "sqlite:////work/mlruns/mlflow.db"),
        ("/abs/folder", "sqlite:////abs/folder/mlflow.db"),
        ("runs/mlflow.db", "sqlite:////work/runs/mlflow.db"),
        ("file:relative/store", "file:///work/relative/store"),
        ("file:///abs/store", "file:///abs/store"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("https://mlflow.example.com/", "https://mlflow.example.com/"),
        ("databricks", "databricks"),
        ("postgresql://u@db:5432/mlflow", "postgresql://u@db:5432/mlflow"),
    ],
)
def test_resolve_tracking_uri(uri: str | None, expected: str) -> None:
    assert resolve_tracking_uri(uri, cwd="/work") == expected


def test_resolve_prefers_explicit_then_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///env/mlflow.db")
    assert resolve_tracking_uri(None, cwd="/w") == "sqlite:////w/env/mlflow.db"
    assert resolve_tracking_uri("http://127.0.0.1:1", cwd="/w") == "http://127.0.0.1:1"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert resolve_tracking_uri(None, cwd="/w") == "sqlite:////w/mlruns/mlflow.db"


@pytest.mark.usefixtures("no_env_uri")
def test_resolve_uses_the_current_directory_and_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    monkeypatch.setenv("HOME", "/home/u")
    assert resolve_tracking_uri("~/runs/mlflow.db") == "sqlite:////home/u/runs/mlflow.db"


def test_default_artifact_root() -> None:
    assert default_artifact_root("sqlite:////w/mlruns/mlflow.db") == "file:///w/mlruns/artifacts"
    assert default_artifact_root("sqlite:////w/x.db?timeout=5") == "file:///w/artifacts"
    assert default_artifact_root("http://127.0.0.1:5000") is None
    assert default_artifact_root("sqlite://") is None


@pytest.mark.mlflow
def test_ensure_experiment_is_idempotent_and_uses_the_artifacts_folder(store_uri: str) -> None:
    from mlflow import MlflowClient

    first = ensure_experiment(store_uri, "idempotent")
    assert ensure_experiment(store_uri, "idempotent") == first
    assert ensure_experiment(store_uri, "other") != first
    experiment = MlflowClient(tracking_uri=store_uri).get_experiment(first)
    db = Path(store_uri[len("sqlite:///") :])
    assert db.name == "mlflow.db" and db.parent.name == "mlruns"
    assert experiment.artifact_location == (db.parent / "artifacts").as_uri()


@pytest.mark.mlflow
def test_experiments_are_marked_as_model_training(store_uri: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store_uri)

    def kind(experiment_id: str) -> str | None:
        return client.get_experiment(experiment_id).tags.get("mlflow.experimentKind")

    created = ensure_experiment(store_uri, "kind-new")
    assert kind(created) == "custom_model_development"
    # an experiment an older version made (no kind) is marked when a sweep next writes to it
    older = client.create_experiment("kind-older")
    assert kind(older) is None
    assert ensure_experiment(store_uri, "kind-older") == older
    assert kind(older) == "custom_model_development"
    # a kind someone chose is kept
    chosen = client.create_experiment("kind-chosen", tags={"mlflow.experimentKind": "automl"})
    ensure_experiment(store_uri, "kind-chosen")
    assert kind(chosen) == "automl"


@pytest.mark.mlflow
def test_deleted_experiment_and_empty_name_are_config_errors(store_uri: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=store_uri).delete_experiment(ensure_experiment(store_uri, "gone"))
    with pytest.raises(ConfigError, match=r"tracking\.experiment 'gone' was deleted"):
        ensure_experiment(store_uri, "gone")
    with pytest.raises(ConfigError, match=r"tracking\.experiment must be a non-empty string"):
        ensure_experiment(store_uri, " ")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unopenable(tmp_path: Path) -> dict[str, str]:
    """Stores that cannot be opened, and what their error says."""
    folder_db = tmp_path / "db_is_a_folder.db"
    folder_db.mkdir()
    return {
        f"sqlite:///{folder_db}": "is a folder, not a sqlite file",
        f"http://127.0.0.1:{_closed_port()}": "cannot connect to 127.0.0.1",
        f"file://{tmp_path}/filestore": "MLFLOW_ALLOW_FILE_STORE=true",
    }


def test_unopenable_stores_fail_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    cases = {
        f"sqlite:///{blocker}/mlruns/mlflow.db": "NotADirectoryError",
        **_unopenable(tmp_path),
    }
    for uri, reason in cases.items():
        t0 = time.perf_counter()
        with pytest.raises(ConfigError) as info:
            ensure_experiment(uri, "x")
        # MLflow itself would retry for minutes
        assert time.perf_counter() - t0 < 10
        message = str(info.value)
        assert message.startswith(f"tracking.uri '{uri}' cannot be opened: "), message
        assert reason in message


def test_check_store_refuses_what_a_run_would_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    fresh = tmp_path / "new" / "mlflow.db"
    check_store(f"sqlite:///{fresh}")  # a store the first run will create
    assert not (tmp_path / "new").exists()
    for uri, reason in _unopenable(tmp_path).items():
        with pytest.raises(ConfigError, match=reason):
            check_store(uri)
    assert not (tmp_path / "filestore").exists()
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's own opt-out is honoured
    check_store(f"file://{tmp_path}/filestore")


def test_another_programs_sqlite_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    # the sweep prints its optuna.db beside the MLflow store: an easy file to pass by mistake
    import sqlite3

    from graft_hpo.tracking import pareto_front

    foreign = tmp_path / "optuna.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE studies (study_id INTEGER)")
    before = foreign.read_bytes()
    uri = f"sqlite:///{foreign}"
    for act in (lambda: pareto_front(tracking_uri=uri), lambda: ensure_experiment(uri, "x")):
        with pytest.raises(
            ConfigError, match=r"is another program's sqlite file \(tables studies\)"
        ):
            act()
    with pytest.raises(ConfigError, match="another program's sqlite file"):
        check_store(uri)
    assert foreign.read_bytes() == before
    # an empty sqlite file: nothing to read, but a run may create its store in it
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(ConfigError, match=r"there is no MLflow store at .*empty\.db \(an empty"):
        pareto_front(tracking_uri=f"sqlite:///{empty}")
    assert empty.stat().st_size == 0
    check_store(f"sqlite:///{empty}")
    ensure_experiment(f"sqlite:///{empty}", "x")  # MLflow's tables created


def test_a_path_object_is_a_tracking_uri_as_its_string_is(tmp_path: Path) -> None:
    # every function taking tracking_uri failed with "'PosixPath' object has no attribute 'strip'"
    assert resolve_tracking_uri(Path("runs/m.db"), cwd="/w") == "sqlite:////w/runs/m.db"
    assert resolve_tracking_uri(tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
