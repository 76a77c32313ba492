"""What machine a benchmark ran on, and the scaffolding every benchmark report shares."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

Json = dict[str, Any]


def repo_relative(value: Any) -> Any:
    """``value`` with every absolute path inside the repository made relative to its root.

    Recurses into mappings, lists and tuples; in strings (paths, ``sqlite:////...`` URIs) the
    repository's own path prefix is dropped, so saved reports name no folder of the machine.
    """
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        return value.replace(f"{ROOT}/", "")
    if isinstance(value, dict):
        return {k: repo_relative(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [repo_relative(v) for v in value]
    return value


def say(line: str) -> None:
    """One progress line on stderr (stdout holds the report only)."""
    print(line, file=sys.stderr, flush=True)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_avg() -> float | None:
    """The 1-minute load average: another job on a shared machine shows here first."""
    with contextlib.suppress(OSError, AttributeError):
        return os.getloadavg()[0]
    return None


def machine_info() -> dict[str, Any]:
    """CPU, GPU, library versions and the load average now, for a benchmark's report."""
    import torch

    load = load_avg()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    cpu = cpu_model()
    cpus = os.cpu_count()
    return {
        "description": f"{cpu}, {cpus} logical CPUs" + (f", {gpu}" if gpu else ", no GPU"),
        "cpu": cpu,
        "logical_cpus": cpus,
        "gpu": gpu,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1min_at_start": load,
    }


def new_report(args: argparse.Namespace) -> dict[str, Any]:
    """A report's first keys: the machine, and the command-line arguments (paths as text)."""
    return {
        "machine": machine_info(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }


def run_report(
    args: argparse.Namespace, run_all: Callable[[argparse.Namespace], dict[str, Any]]
) -> dict[str, Any]:
    """:func:`new_report` updated with ``run_all(args)`` and its wall time ``wall_s``.

    Library warnings go to stderr, one line each, and whatever ``run_all`` prints is sent to
    stderr too: stdout holds the report (and the JSON line) only.
    """
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    report = new_report(args)
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        report.update(run_all(args))
    report["wall_s"] = time.perf_counter() - start
    return report


def json_safe(value: Any) -> Any:
    """NaN and inf become null: the JSON line must parse with any strict reader."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def json_line(report: Json) -> str:
    """The report as one line of strict JSON, naming no folder of the machine."""
    return json.dumps(repo_relative(json_safe(report)), separators=(",", ":"), default=str)


def write_json(path: Path, report: Json) -> None:
    """The report, indented, in ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))


def print_report(
    args: argparse.Namespace,
    report: Json,
    markdown: Callable[[Json], str],
    plot: Callable[[Json, Path], None] | None = None,
) -> int:
    """stdout: the Markdown report, then, with ``--json``, the report as its last line
    (:func:`json_line`); with ``--plot FILE``, ``plot`` draws the figure there. Returns 0."""
    print(markdown(report))
    if plot is not None and args.plot:
        plot(report, args.plot)
    if args.json:
        print(json_line(report))
    return 0


def interpreter() -> str:
    """The Python that runs, as a reader would type it: relative to the repository if inside."""
    exe = Path(sys.executable)
    return str(exe.relative_to(ROOT)) if exe.is_relative_to(ROOT) else exe.name


def provenance(report: Json, script: str) -> str:
    """A report's first sentence: the machine, its load at the start, the command that ran
    ``benchmarks/<script>`` (as this process was called) and the wall time."""
    machine = report["machine"]
    load = machine.get("load_avg_1min_at_start")
    load_text = f"{load:.1f}" if isinstance(load, (int, float)) and math.isfinite(load) else "-"
    command = " ".join([f"benchmarks/{script}", *sys.argv[1:]])
    return (
        f"Machine: {machine['description']}, load average {load_text} at the start. Command: "
        f"`{command}`; wall time {report['wall_s']:.0f} s."
    )


def saved_report(path: Path) -> Json:
    """The report a benchmark's ``--json`` run printed as its last line, read back from the
    Markdown file its stdout went to (``--render``: the tables again, nothing run)."""
    return json.loads(path.read_text().strip().splitlines()[-1])  # type: ignore[no-any-return]


def check_revision(parser: argparse.ArgumentParser, rev: str | None) -> None:
    """``--before REV`` names a commit of this repository, else one line and exit 2."""
    import subprocess

    if rev is None:
        return
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
    )
    if found.returncode != 0:
        parser.error(f"--before must name a commit of this repository; got {rev!r}")


def extract_package(rev: str, folder: Path) -> Path:
    """The package ``graft_hpo`` as it was at git revision ``rev``, with its bundled pipelines
    and search spaces, in ``folder`` (for a side-by-side run of the code before a change)."""
    import subprocess

    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", rev, "graft_hpo", "pipelines", "search_spaces"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def run_importing(code: Path, command: list[str], *, capture: bool = False) -> str:
    """Run ``command`` in a fresh process whose ``graft_hpo`` is imported from ``code`` (a tree
    from :func:`extract_package`, or ``ROOT``); ``benchmarks`` still comes from this checkout.
    Returns its stdout when ``capture``, else ""."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(ROOT)])}
    # the working folder is ``code``: with `python -m`, it comes first on the path
    done = subprocess.run(
        command, cwd=code, env=env, check=True, capture_output=capture, text=True
    )
    return done.stdout if capture else ""
