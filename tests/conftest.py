"""Session-wide test settings: loopback only, no telemetry, quiet codecarbon, one Ray."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

# Set before any test imports mlflow, ray or codecarbon (ENV_NOTES.md: network hygiene).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
os.environ.pop("MLFLOW_TRACKING_URI", None)  # every test names its own store


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """One local Ray instance for the whole test session, bound to 127.0.0.1.

    Ray's dashboard agent probes the cloud-metadata address at start unless
    ``~/ray_bootstrap_config.yaml`` exists (ENV_NOTES.md), so HOME points at a folder holding a
    minimal one while Ray runs. Yields that folder.
    """
    import ray

    home = tmp_path_factory.mktemp("home")
    (home / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    yield home
    ray.shutdown()
    if old_home is not None:
        os.environ["HOME"] = old_home
