"""Session-wide test settings: loopback only, no telemetry, quiet codecarbon."""

from __future__ import annotations

import os

# Set before any test imports mlflow, ray or codecarbon (ENV_NOTES.md: network hygiene).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
os.environ.pop("MLFLOW_TRACKING_URI", None)  # every test names its own store
