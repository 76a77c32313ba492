"""Ray for the sweep: start a local Ray on loopback or join a cluster; check it can host a trial.

Ray is imported inside the functions, so importing graft-hpo never starts or loads it.
"""

from __future__ import annotations

import os
import socket

from graft_hpo.config import PipelineConfig
from graft_hpo.exceptions import ConfigError
from graft_hpo.sweep._console import quiet_stderr
from graft_hpo.sweep._ray_compat import disable_cluster_mode

__all__ = ["check_resources", "init_ray", "job_env", "start_ray"]


def start_ray(config: PipelineConfig, address: str | None, *, quiet: bool = True) -> None:
    """Ray for a sweep of ``config`` (started once per sweep, or its resumption): start or join
    it (:func:`init_ray`) and check that a node can host a trial (:func:`check_resources`).

    Raises:
        ConfigError: nothing answers at ``address``, or no node can host a trial.
    """
    # on a cluster the plug-ins' folder travels with the job (Ray's runtime_env working_dir)
    code = config.plugin_path[0] if config.plugin_path and address is not None else None
    init_ray(address, quiet=quiet, working_dir=code)
    check_resources(config)


def init_ray(
    address: str | None,
    *,
    num_cpus: int | None = None,
    quiet: bool = True,
    working_dir: str | None = None,
) -> None:
    """Start a local Ray bound to loopback, or join the cluster at ``address``.

    :func:`run_sweep` calls it itself; call it first to share one Ray between several sweeps
    (a benchmark, a pipeline step that sweeps more than once). A no-op if Ray is running,
    unless ``address`` names another cluster than the one this process joined.

    Args:
        quiet: keep what Ray's processes print at start-up (its token-authentication notice,
            ...) off the console; it is shown if the start fails.
        working_dir: joining a cluster, a local folder Ray ships to every node and puts on
            its workers' ``PYTHONPATH`` (:func:`job_env`): the pipeline's plug-in folder.
            Ignored for a local Ray, whose workers read the folder in place.

    Raises:
        ConfigError: nothing answers at ``address``, it is not a Ray cluster, or
            ``working_dir`` cannot be shipped to it.
    """
    import ray
    import ray.exceptions

    if ray.is_initialized():
        _check_joined(address)
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is not None:
        _check_reachable(address)
    host = None if address is None else address.removeprefix("ray://").rpartition(":")[0]
    if address is None or host in ("127.0.0.1", "localhost"):
        _keep_on_loopback()  # else Ray rewrites the head's address to the host's public IP
    with quiet_stderr(enabled=quiet):
        if address is None:
            ray.init(
                include_dashboard=False,
                num_cpus=num_cpus,
                _node_ip_address="127.0.0.1",
                log_to_driver=False,
                configure_logging=False,
            )
            return
        try:
            ray.init(
                address=address,
                runtime_env=job_env(working_dir),
                log_to_driver=False,
                configure_logging=False,
            )
        except ray.exceptions.RuntimeEnvSetupError as err:  # e.g. over Ray's 512 MiB upload
            reason = next((line for line in str(err).splitlines() if "working_dir" in line), "")
            raise ConfigError(
                f"plugin_path {working_dir!r} cannot be shipped to the cluster at {address!r}: "
                f"{reason.strip() or type(err).__name__}"
            ) from err
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ConfigError(
                f"--address {address!r}: cannot join a Ray cluster there: {err}"
            ) from err


# never shipped with the plug-ins' folder: a run store and sweep folders beside the pipeline
# (./mlruns holds every earlier sweep's checkpoints), environments, version control
_NOT_SHIPPED = ["mlruns/", ".venv/", "venv/", ".git/", "__pycache__/"]
# the driver's variables a worker on another node must see as the driver did: MLflow's
# (credentials, MLFLOW_ALLOW_FILE_STORE, which the driver's store check honoured) and codecarbon's
_SHARED_ENV_PREFIXES = ("MLFLOW_", "CODECARBON_")
_NOT_SHARED_ENV = frozenset({"MLFLOW_RUN_ID", "MLFLOW_TRACKING_URI"})  # a run's, the driver's


def job_env(working_dir: str | None) -> dict[str, object] | None:
    """The ``runtime_env`` a sweep joins a cluster with: the plug-ins' folder without run
    stores and checkpoints (:data:`_NOT_SHIPPED`), and the driver's MLflow and codecarbon
    variables (the workers of a cluster run with the cluster's environment, not the
    driver's; the tracking URI is resolved by the driver and travels in the plan)."""
    env: dict[str, object] = {}
    if working_dir:
        env.update(working_dir=working_dir, excludes=list(_NOT_SHIPPED))
    shared = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(_SHARED_ENV_PREFIXES) and k not in _NOT_SHARED_ENV
    }
    if shared:
        env["env_vars"] = shared
    return env or None


def _check_joined(address: str | None) -> None:
    """Refuse ``address`` in a process already joined to another Ray (``ray.init`` runs once a
    process): the sweep would run there, and its plan would name ``address`` for resume."""
    import ray

    if address is None or address == "auto" or address.startswith("ray://"):
        return
    joined = ray.get_runtime_context().gcs_address
    if _endpoint(address) != _endpoint(joined):
        raise ConfigError(
            f"--address {address!r}: this process is joined to the Ray at {joined!r} already "
            "(one Ray a process); call ray.shutdown() first, or leave the address out"
        )


def _endpoint(address: str) -> tuple[str, str]:
    host, _, port = address.rpartition(":")
    try:
        return socket.gethostbyname(host), port
    except OSError:
        return host, port


def _keep_on_loopback() -> None:
    """Make Ray honour 127.0.0.1: unless clusters are disabled, it swaps loopback for the
    host's routable address and listens on every interface.

    The variable reaches the raylet and workers; Ray reads it into a constant at import, so
    a driver that imported ray already needs the constant set too.
    """
    variable = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    os.environ.setdefault(variable, "0")
    if os.environ[variable] == "0":
        disable_cluster_mode()


def _check_reachable(address: str) -> None:
    """Refuse in seconds an address nothing listens on (``ray.init`` retries for minutes)."""
    if address == "auto":
        return
    client = address.startswith("ray://")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host:
        host, port = port, ""
    try:
        port_number = int(port) if port else (10001 if client else 6379)
        socket.create_connection((host, port_number), timeout=5).close()
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"--address {address!r}: cannot join a Ray cluster there: cannot connect to "
            f"{host}:{port or '(default port)'} ({err}); expected HOST:PORT of a running Ray "
            "head, ray://HOST:10001, or auto"
        ) from err


def check_resources(config: PipelineConfig) -> None:
    """Refuse at once a trial that no node of the cluster can host (instead of a hang)."""
    import ray

    wanted = {"CPU": config.resources.cpu, "GPU": config.resources.gpu}
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    for node in nodes:
        have = node.get("Resources", {})
        if all(have.get(k, 0.0) >= v for k, v in wanted.items() if v > 0):
            return
    best = {
        k: max((n.get("Resources", {}).get(k, 0.0) for n in nodes), default=0.0) for k in wanted
    }
    raise ConfigError(
        "resources must fit on one node: a trial asks for "
        f"resources.cpu={config.resources.cpu:g}, resources.gpu={config.resources.gpu:g}; "
        f"the largest node has cpu={best['CPU']:g}, "
        f"gpu={best['GPU']:g}"
    )
