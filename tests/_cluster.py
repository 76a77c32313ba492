"""Processes a test starts itself (Ray nodes, an MLflow server), bound to 127.0.0.1.

Each daemon runs in a session of its own (``start_new_session=True``, session id = its pid).
Everything it spawns stays in that session (Ray's raylet gives each worker a process group of
its own, but not a new session), so :func:`stop` ends exactly the daemon and its descendants:
never ``ray stop``, which ends every Ray on the machine, other tests' included.

``python -m tests._cluster`` starts the two-node cluster and the MLflow server by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv's console scripts (ray, mlflow)
HOST = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 now (held open together, so never the same)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(n):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(sock.getsockname()[1])
    return ports


def loopback_env(home: Path) -> dict[str, str]:
    """This process's environment plus the settings that keep Ray and MLflow on loopback.

    ``home`` gets the ``ray_bootstrap_config.yaml`` that stops Ray's dashboard agent probing the
    cloud-metadata address (ENV_NOTES.md). ``RAY_ADDRESS`` is dropped: every command names the
    cluster it means.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "ray_bootstrap_config.yaml").write_text("provider:\n  type: local\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    env.update(
        HOME=str(home),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # every Ray process binds 127.0.0.1
        RAY_AUTH_MODE="disabled",
        MLFLOW_DISABLE_TELEMETRY="true",
        CODECARBON_LOG_LEVEL="error",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Daemon:
    """A started process group: the command's pid is the group's id."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""


def start(name: str, cmd: list[str], env: Mapping[str, str], log_dir: Path) -> Daemon:
    """Start ``cmd`` in a new session, stdout and stderr to ``log_dir/<name>.log``."""
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Daemon(name, proc, log)


def session_members(sid: int) -> list[int]:
    """Pids of the live processes in session ``sid`` (from /proc).

    Ray's raylet puts each worker in a process group of its own, but not in a new session: the
    session a daemon was started in holds everything it spawned.
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def stop(daemon: Daemon, *, grace_s: float = 10.0) -> None:
    """Stop the daemon and everything in its session; nothing else.

    SIGTERM to the daemon alone first: ``ray start --block`` and ``mlflow server`` then shut
    their children down in order (seconds). Whatever is left after ``grace_s`` gets SIGTERM,
    then SIGKILL.
    """
    sid = daemon.proc.pid
    steps = (
        (signal.SIGTERM, False, grace_s),
        (signal.SIGTERM, True, 3.0),
        (signal.SIGKILL, True, 5.0),
    )
    for sig, everyone, wait_s in steps:
        for pid in session_members(sid) if everyone else [sid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if daemon.proc.poll() is None:  # reaps the leader, or it lingers as a zombie
                with contextlib.suppress(subprocess.TimeoutExpired):
                    daemon.proc.wait(timeout=0.2)
            else:
                time.sleep(0.2)
            if not session_members(sid):
                return


def wait_until(
    ready: Callable[[], bool], *, timeout_s: float, what: str, daemons: list[Daemon]
) -> None:
    """Poll ``ready``; fail naming ``what`` (with logs) on timeout or when a daemon exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        for d in daemons:
            if d.proc.poll() is not None:
                raise RuntimeError(
                    f"{d.name} exited ({d.proc.returncode}) before {what}:\n{d.log_tail()}"
                )
        time.sleep(0.3)
    logs = "\n".join(f"--- {d.name}\n{d.log_tail()}" for d in daemons)
    raise TimeoutError(f"{what}: not ready after {timeout_s:.0f}s\n{logs}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Cluster:
    """A two-node Ray cluster and an MLflow server on loopback; see :func:`cluster`."""

    root: Path  # short: Ray's unix sockets live under it (paths are limited to ~107 chars)
    env: dict[str, str]
    ray_address: str = ""
    tracking_uri: str = ""
    daemons: list[Daemon] = field(default_factory=list)

    def add(self, daemon: Daemon) -> Daemon:
        self.daemons.append(daemon)
        return daemon

    def logs(self) -> str:
        return "\n".join(f"--- {d.name}\n{d.log_tail()}" for d in self.daemons)

    def ray_node_ids(self) -> dict[str, str]:
        """Daemon name -> the Ray node id of the raylet it runs (from the raylet's argv)."""
        ids = {}
        for daemon in self.daemons:
            for pid in session_members(daemon.proc.pid):
                with contextlib.suppress(OSError):
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    if argv and argv[0].endswith(b"/raylet"):
                        flag = [a for a in argv if a.startswith(b"--node_id=")]
                        ids[daemon.name] = flag[0].split(b"=", 1)[1].decode()
        return ids


# `ray start` for a worker node, loopback only. With RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (what
# keeps every Ray process on 127.0.0.1) the CLI refuses a worker node ("multi-node clusters are
# not supported on Windows and OSX"); with =1 it rewrites 127.0.0.1 to the host's routable IP
# and the raylet listens on every interface. So the CLI runs with its guard lifted and the
# rewrite off; the processes it starts still get =0 and --node-ip-address 127.0.0.1.
_RAY_START_LOOPBACK = """
import sys
from ray._private import ray_constants, services
ray_constants.ENABLE_RAY_CLUSTER = True
services.resolve_ip_for_localhost = lambda host: host
from ray.scripts.scripts import main
sys.argv[0] = "ray"
sys.exit(main())
"""


def _ray_start(head: bool) -> list[str]:
    if head:  # the head needs no worker-node guard lifted: the plain CLI
        return [str(BIN / "ray"), "start", "--head"]
    return [sys.executable, "-c", _RAY_START_LOOPBACK, "start"]


def _ray_node_cmd(
    head: bool, temp_dir: Path, ports: list[int], resources: dict[str, float], cpus: int = 1
) -> list[str]:
    agent_http, agent_grpc, runtime_env, metrics = ports
    return [
        *_ray_start(head),
        "--block",  # stays in the foreground: its session is ours to stop
        "--node-ip-address",
        HOST,
        "--num-cpus",
        str(cpus),
        "--num-gpus",
        "0",
        "--resources",
        json.dumps(resources),
        "--temp-dir",
        str(temp_dir),
        # two raylets on one host: every port with a fixed default gets a free one of its own,
        # workers bind random ones (0/0)
        "--dashboard-agent-listen-port",
        str(agent_http),
        "--dashboard-agent-grpc-port",
        str(agent_grpc),
        "--runtime-env-agent-port",
        str(runtime_env),
        "--metrics-export-port",
        str(metrics),
        "--min-worker-port",
        "0",
        "--max-worker-port",
        "0",
        "--object-store-memory",
        str(200 * 1024 * 1024),
        "--disable-usage-stats",
    ]


def ray_started(daemon: Daemon) -> bool:
    return "Ray runtime started" in daemon.log_tail(100_000)


def start_ray_head(c: Cluster, cpus: int = 1) -> Daemon:
    gcs, dashboard, *node_ports = free_ports(6)
    cmd = _ray_node_cmd(True, c.root / "rh", node_ports, {"head_node": 1}, cpus)
    cmd += ["--port", str(gcs), "--include-dashboard", "false", "--dashboard-port", str(dashboard)]
    c.ray_address = f"{HOST}:{gcs}"
    return c.add(start("ray-head", cmd, c.env, c.root))


def start_ray_worker(c: Cluster, name: str = "ray-worker") -> Daemon:
    cmd = _ray_node_cmd(False, c.root / name, free_ports(4), {"worker_node": 1})
    cmd += ["--address", c.ray_address]
    return c.add(start(name, cmd, c.env, c.root))


def kill(daemon: Daemon, *, timeout_s: float = 10.0) -> None:
    """SIGKILL to everything in the daemon's session at once: a node that dies (preempted,
    powered off), not one that shuts down."""
    sid = daemon.proc.pid
    for pid in session_members(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        daemon.proc.wait(timeout=timeout_s)
    wait_until(lambda: not session_members(sid), timeout_s=timeout_s, what="kill", daemons=[])


def start_mlflow_server(c: Cluster) -> Daemon:
    """``mlflow server`` on sqlite; clients upload artifacts over HTTP (``--serve-artifacts``)."""
    (port,) = free_ports(1)
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{c.root / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(c.root / "artifacts"),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    c.tracking_uri = f"http://{HOST}:{port}"
    return c.add(start("mlflow-server", cmd, c.env, c.root))


@contextlib.contextmanager
def cluster(*, timeout_s: float = 120.0, head_cpus: int = 1) -> Iterator[Cluster]:
    """Start an MLflow server, a Ray head and a Ray worker node; stop exactly those at exit.

    ``head_cpus=0`` keeps trials off the head: they all run on the worker node.

    Every log, socket and store lives under a short ``/tmp/gh-*`` folder (unix socket paths
    are limited to ~107 characters), removed at exit.
    """
    root = Path(tempfile.mkdtemp(prefix="gh-", dir="/tmp"))
    c = Cluster(root=root, env=loopback_env(root / "home"))
    try:
        server = start_mlflow_server(c)  # its start overlaps the head's: both take seconds
        head = start_ray_head(c, head_cpus)
        wait_until(lambda: ray_started(head), timeout_s=timeout_s, what="ray head", daemons=[head])
        worker = start_ray_worker(c)
        wait_until(
            lambda: ray_started(worker), timeout_s=timeout_s, what="ray worker", daemons=[worker]
        )
        health = f"{c.tracking_uri}/health"
        wait_until(lambda: http_ok(health), timeout_s=timeout_s, what="mlflow", daemons=[server])
        yield c
    finally:
        for daemon in reversed(c.daemons):  # the worker node before the head it reports to
            stop(daemon)
        shutil.rmtree(root, ignore_errors=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    """``python -m tests._cluster``: start the cluster, print how to sweep on it, wait for ^C."""
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops the daemons too
    with cluster() as c:
        env = (
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0 "
            "RAY_AUTH_MODE=disabled MLFLOW_DISABLE_TELEMETRY=true"
        )
        print(
            f"Ray head {c.ray_address} (+1 worker node), MLflow {c.tracking_uri}, files in "
            f"{c.root}\nsweep on it (another shell, repository root):\n"
            f"  {env} .venv/bin/graft-hpo sweep digits --address {c.ray_address} "
            f"--tracking-uri {c.tracking_uri} --sweep-dir {c.root / 'sweep'} "
            "--trials 4 --set train.epochs=2 "
            f"--set search.max_concurrent=2 --set resources.cpu=1 "
            f"--set search.storage=sqlite:///{c.root / 'optuna.db'}\n"
            "Ctrl-C stops every process started here.",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while all(d.proc.poll() is None for d in c.daemons):
                time.sleep(1)
        dead = [d for d in c.daemons if d.proc.poll() is not None]
        for d in dead:
            print(f"{d.name} exited ({d.proc.returncode}):\n{d.log_tail()}", file=sys.stderr)
    return 1 if dead else 0


if __name__ == "__main__":
    raise SystemExit(main())
