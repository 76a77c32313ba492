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

__all__ = ["check_resources", "init_ray", "start_ray"]


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
    (a benchmark, a pipeline step that sweeps more than once). A no-op if Ray is running.

    Args:
        quiet: keep what Ray's processes print at start-up (its token-authentication notice,
            ...) off the console; it is shown if the start fails.
        working_dir: joining a cluster, a local folder Ray ships to every node and puts on
            its workers' ``PYTHONPATH`` (``runtime_env={"working_dir": ...}``): the pipeline's
            plug-in folder. Ignored for a local Ray, whose workers read the folder in place.

    Raises:
        ConfigError: nothing answers at ``address``, or it is not a Ray cluster.
    """
    import ray

    if ray.is_initialized():
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
                runtime_env={"working_dir": working_dir} if working_dir else None,
                log_to_driver=False,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ConfigError(
                f"--address {address!r}: cannot join a Ray cluster there: {err}"
            ) from err


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
