"""The adapter around MLflow's private global tracking URI: it fails loudly on an upgrade."""

from __future__ import annotations

import os

import pytest

from graft_hpo.tracking._global_uri import global_tracking_uri


def test_the_private_mlflow_name_still_exists() -> None:
    # If this fails, an MLflow upgrade moved or renamed the global tracking URI: adapt
    # graft_hpo/tracking/_global_uri.py (the only place that reads it), or drop it for a public
    # replacement if MLflow now offers one.
    import mlflow
    from mlflow.tracking._tracking_service import utils

    assert hasattr(utils, "_tracking_uri"), f"mlflow {mlflow.__version__} moved _tracking_uri"
    with global_tracking_uri("sqlite:////probe/mlflow.db"):
        assert utils._tracking_uri == "sqlite:////probe/mlflow.db"


@pytest.mark.parametrize("env", [None, "sqlite:////from/env.db"])
@pytest.mark.parametrize("before", [None, "sqlite:////set/before.db"])
def test_the_global_uri_and_env_are_put_back_exactly(
    env: str | None, before: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", before)
    if env is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
    with global_tracking_uri("sqlite:////inside/mlflow.db"):
        assert mlflow.get_tracking_uri() == "sqlite:////inside/mlflow.db"
        assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:////inside/mlflow.db"  # children
    assert utils._tracking_uri == before
    assert os.environ.get("MLFLOW_TRACKING_URI") == env


def test_a_moved_private_name_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking._tracking_service import utils

    monkeypatch.delattr(utils, "_tracking_uri")
    block = global_tracking_uri("sqlite:////x.db")
    with pytest.raises(RuntimeError, match=r"_tracking_uri; update graft_hpo/tracking/_global"):
        block.__enter__()
