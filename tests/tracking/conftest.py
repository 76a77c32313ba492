from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# MLflow's telemetry looks up a host name unless disabled (it is off under pytest as well);
# set before mlflow is first imported.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Every MLflow write is a sqlite commit with an fsync: on tmpfs they cost a third as much.
_FAST_TMP = "/dev/shm"


@pytest.fixture(scope="session")
def store_uri() -> Iterator[str]:
    """One real sqlite MLflow store for all tracking tests (creating one costs ~2.4 s).

    Tests use their own experiment and sweep names, so they do not see each other's runs.
    """
    from graft_hpo.tracking import ensure_experiment
    from graft_hpo.tracking import resolve_tracking_uri

    fast = os.path.isdir(_FAST_TMP) and os.access(_FAST_TMP, os.W_OK)
    root = Path(tempfile.mkdtemp(prefix="graft-hpo-mlflow-", dir=_FAST_TMP if fast else None))
    try:
        uri = resolve_tracking_uri("mlruns/mlflow.db", cwd=str(root))
        ensure_experiment(uri, "warm-up")  # creates the db and runs the migrations once
        yield uri
    finally:
        shutil.rmtree(root, ignore_errors=True)
